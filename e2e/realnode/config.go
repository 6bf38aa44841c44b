package realnode

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SandboxImage is the pod sandbox ("pause") image, served by the cluster's
// registry like every other image.
const SandboxImage = "testcluster.local/pause:1"

// containerdSocket is where containerd serves CRI, inside the node's own
// /run (see isolateMounts).
const containerdSocket = "/run/containerd/containerd.sock"

// writeContainerdConfig writes containerd's configuration: images and
// snapshots under the node's directory, runtime state in the node's private
// /run, pulls from the cluster's registry only, CNI from cniDir/net.d, and
// nothing of the host's own containerd setup read or touched.
func writeContainerdConfig(path, stateDir, cniBinDir, registry string) error {
	certsDir := filepath.Join(stateDir, "containerd", "certs.d")
	// Every registry host resolves to the test cluster's registry, so that
	// a pull of an unknown image fails at once as a 404 (ErrImagePull)
	// instead of trying the internet.
	hosts := fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n",
		"http://"+registry, "http://"+registry)
	if err := writeFile(filepath.Join(certsDir, "_default", "hosts.toml"), hosts); err != nil {
		return err
	}
	config := fmt.Sprintf(`version = 3
root = %q
state = "/run/containerd"
imports = []
# Plugins that would create files outside the node's directory (/opt/containerd,
# the NRI socket) or that this node has no use for.
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.nri.v1.nri",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = %q

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = %q
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = %q

[plugins."io.containerd.cri.v1.runtime"]
  # root here has no CAP_SYS_RESOURCE: without this the sandbox fails with
  # "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  cdi_spec_dirs = []
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [%q]
    conf_dir = %q
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`, filepath.Join(stateDir, "containerd", "root"), containerdSocket, SandboxImage, certsDir,
		cniBinDir, filepath.Join(stateDir, "cni", "net.d"))
	return writeFile(path, config)
}

// writeCNIConfig gives pods addresses of the slot's subnet on its bridge.
// The bridge and its gateway address exist already (setUpHost): with
// isGateway off the plugin neither enables IP forwarding on the host nor
// adds NAT rules, and the pods still route through the gateway.
func writeCNIConfig(stateDir string, s *Slot) error {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "testcluster",
		"plugins": []map[string]any{{
			"type":      "bridge",
			"bridge":    s.Bridge(),
			"isGateway": false,
			"ipMasq":    false,
			"ipam": map[string]any{
				"type":    "host-local",
				"dataDir": filepath.Join(stateDir, "cni", "ipam"),
				"ranges":  [][]map[string]string{{{"subnet": s.PodSubnet(), "gateway": s.Gateway()}}},
				"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
			},
		}},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(stateDir, "cni", "net.d", "10-testcluster.conflist"), string(b))
}

// kubeletOptions are the node-specific inputs of the kubelet's configuration.
type kubeletOptions struct {
	stateDir, nodeIP, clientCAFile string
	serving                        [2]string // certificate and key files
	cgroupRoot                     string
	taints                         []map[string]string
}

// writeKubeletConfig writes the KubeletConfiguration. Everything that
// would reach outside the node's directory and cgroup is turned off: no
// iptables chains, no kernel tunables (see maskKernelTunables), no
// read-only or healthz port on the host's loopback.
func writeKubeletConfig(path string, o kubeletOptions) error {
	resolv := filepath.Join(o.stateDir, "resolv.conf")
	if err := writeFile(resolv, "nameserver 127.0.0.1\n"); err != nil {
		return err
	}
	cfg := map[string]any{
		"apiVersion":        "kubelet.config.k8s.io/v1beta1",
		"kind":              "KubeletConfiguration",
		"address":           o.nodeIP,
		"port":              10250,
		"readOnlyPort":      0,
		"healthzPort":       0,
		"tlsCertFile":       o.serving[0],
		"tlsPrivateKeyFile": o.serving[1],
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": false},
			"x509":      map[string]any{"clientCAFile": o.clientCAFile},
		},
		// Only the API server holds a client certificate of the cluster CA
		// that reaches the kubelet; what it may do, RBAC decided already.
		"authorization":            map[string]any{"mode": "AlwaysAllow"},
		"containerRuntimeEndpoint": "unix://" + containerdSocket,
		"cgroupDriver":             "cgroupfs",
		"cgroupRoot":               o.cgroupRoot,
		"cgroupsPerQOS":            true,
		"failCgroupV1":             false,
		"makeIPTablesUtilChains":   false,
		"protectKernelDefaults":    false,
		"podLogsDir":               filepath.Join(o.stateDir, "pod-logs"),
		"volumePluginDir":          kubeletRootDir + "/volume-plugins",
		"resolvConf":               resolv,
		"clusterDomain":            "cluster.local",
		"clusterDNS":               []string{"10.96.0.10"},
		"failSwapOn":               false,
		"serializeImagePulls":      false,
		"registerWithTaints":       o.taints,
		// The machine is shared and its disk fills up with other work:
		// neither evict pods nor delete images because of it.
		"imageGCHighThresholdPercent":  100,
		"evictionHard":                 map[string]string{"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
		"mergeDefaultEvictionSettings": false,
		"nodeStatusReportFrequency":    "10s",
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(path, string(b))
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

// labelList formats labels for --node-labels.
func labelList(labels map[string]string) string {
	var kv []string
	for k, v := range labels {
		kv = append(kv, k+"="+v)
	}
	return strings.Join(kv, ",")
}
