// Package realnode runs a real Kubernetes node for the test cluster: the
// kubelet built from the e2e module, containerd and Debian's runc, with
// pods in real containers on a CNI bridge. It is the reference the node
// agent (package nodeagent) imitates.
//
// A real node runs in a process of its own (`testcluster node`, see Run),
// started in a new mount namespace. Everything containerd and the kubelet
// mount (overlay rootfs, network namespaces, volumes) lives in that
// namespace and is gone with its last process; its /run, /var/lib and
// /var/log are private, so that neither writes there on the host. What the
// node has on the host is named by its Slot and removed on stop: its
// processes (all in one cgroup tree), the tree, a bridge and an address.
package realnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/pki"
)

// Config configures one real node.
type Config struct {
	Name       string // the Node's name
	ClusterDir string // the test cluster's directory: pki/ holds the CA, logs/ the logs
	BinDir     string // kubelet, containerd, containerd-shim-runc-v2
	Server     string // the API server's URL
	Registry   string // host:port of the image registry (images.Registry)
	Labels     map[string]string
	// Taints are registered with the Node, e.g. key=value:NoSchedule.
	Taints []string
	Logf   func(format string, args ...any)
}

// StateDir is where a node keeps its files.
func StateDir(clusterDir, name string) string { return filepath.Join(clusterDir, "nodes", name) }

// KubeletDir is where the kubelet's root directory (/var/lib/kubelet in
// the node's mount namespace) is on the host: where tests look at what it
// keeps of a pod.
func KubeletDir(clusterDir, name string) string {
	return filepath.Join(StateDir(clusterDir, name), "kubelet")
}

// Info describes a running node.
type Info struct {
	NodeIP string
	Slot   int
}

// Run starts containerd and the kubelet, calls ready once both run, and
// blocks until ctx ends or one of them dies; it then stops them, kills
// every container and removes what the node had on the host. The calling
// process must be alone in a new mount namespace (testcluster starts it
// with CLONE_NEWNS).
func Run(ctx context.Context, cfg Config, ready func(Info)) (err error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if err := Prerequisites(cfg.BinDir); err != nil {
		return err
	}
	stateDir := StateDir(cfg.ClusterDir, cfg.Name)
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return err
	}
	if err := isolateMounts(stateDir); err != nil {
		return fmt.Errorf("private mounts: %w", err)
	}
	slot, err := ClaimSlot(cfg.Logf)
	if err != nil {
		return err
	}
	defer slot.Release()
	defer func() {
		cfg.Logf("slot %d: cleaning the host", slot.N)
		if cerr := slot.cleanHost(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up the host: %w", cerr))
		}
	}()
	cfg.Logf("slot %d: node IP %s, pods %s on bridge %s, cgroup %s", slot.N, slot.NodeIP(), slot.PodSubnet(), slot.Bridge(), slot.Cgroup())
	if err := createCgroupTree(slot.Cgroup()); err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	if err := slot.setUpHost(); err != nil {
		return fmt.Errorf("network: %w", err)
	}

	kubeletArgs, err := configure(cfg, stateDir, slot)
	if err != nil {
		return err
	}
	logDir := filepath.Join(cfg.ClusterDir, "logs")
	containerd, err := startDaemon(logDir, cfg.Name+"-containerd", slot, filepath.Join(cfg.BinDir, "containerd"),
		"--config", filepath.Join(stateDir, "containerd", "config.toml"))
	if err != nil {
		return err
	}
	if err := waitSocket(ctx, containerdSocket, containerd); err != nil {
		return err
	}
	kubelet, err := startDaemon(logDir, cfg.Name+"-kubelet", slot, filepath.Join(cfg.BinDir, "kubelet"), kubeletArgs...)
	if err != nil {
		return err
	}
	// The kubelet goes first, so that it does not see its containers die.
	defer kubelet.stop(10 * time.Second)

	ready(Info{NodeIP: slot.NodeIP(), Slot: slot.N})
	select {
	case <-ctx.Done():
		cfg.Logf("told to stop: stopping the kubelet")
		return nil
	case <-containerd.done:
		return fmt.Errorf("containerd exited: %v (see %s)", containerd.err, containerd.logFile)
	case <-kubelet.done:
		return fmt.Errorf("kubelet exited: %v (see %s)", kubelet.err, kubelet.logFile)
	}
}

// configure issues the kubelet's certificates and writes every
// configuration file; it returns the kubelet's arguments.
func configure(cfg Config, stateDir string, slot *Slot) ([]string, error) {
	ca, err := pki.LoadOrCreateCA(filepath.Join(cfg.ClusterDir, "pki"))
	if err != nil {
		return nil, err
	}
	pkiDir := filepath.Join(stateDir, "pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return nil, err
	}
	// The Node authorizer knows a kubelet by this name and group.
	client, err := ca.Issue(pkiDir, "kubelet-client", pki.Request{CommonName: "system:node:" + cfg.Name,
		Organizations: []string{"system:nodes"}, Client: true})
	if err != nil {
		return nil, err
	}
	// The API server reaches the kubelet at the node IP and checks this
	// certificate against the cluster CA.
	serving, err := ca.Issue(pkiDir, "kubelet-serving", pki.Request{CommonName: "system:node:" + cfg.Name,
		Hosts: []string{slot.NodeIP(), cfg.Name}, Server: true})
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(stateDir, "kubelet.kubeconfig")
	if err := pki.WriteKubeconfig(kubeconfig, cfg.Server, ca.CertFile, client, "system:node:"+cfg.Name, ""); err != nil {
		return nil, err
	}
	cniBin, _ := cniBinDir()
	if err := writeContainerdConfig(filepath.Join(stateDir, "containerd", "config.toml"), stateDir, cniBin, cfg.Registry); err != nil {
		return nil, err
	}
	if err := writeCNIConfig(stateDir, slot); err != nil {
		return nil, err
	}
	var taints []map[string]string
	for _, t := range cfg.Taints {
		kv, effect, _ := strings.Cut(t, ":")
		k, v, _ := strings.Cut(kv, "=")
		taints = append(taints, map[string]string{"key": k, "value": v, "effect": effect})
	}
	kubeletConfig := filepath.Join(stateDir, "kubelet.json")
	if err := writeKubeletConfig(kubeletConfig, kubeletOptions{
		stateDir: stateDir, nodeIP: slot.NodeIP(), clientCAFile: ca.CertFile,
		serving: [2]string{serving.CertFile, serving.KeyFile}, cgroupRoot: "/" + slot.Cgroup(), taints: taints,
	}); err != nil {
		return nil, err
	}
	return []string{
		"--config=" + kubeletConfig,
		"--kubeconfig=" + kubeconfig,
		"--root-dir=" + kubeletRootDir,
		"--cert-dir=" + pkiDir,
		"--hostname-override=" + cfg.Name,
		"--node-ip=" + slot.NodeIP(),
		"--node-labels=" + labelList(cfg.Labels),
	}, nil
}

// isolateMounts makes the mount namespace this process was started in its
// own: nothing mounted here reaches the host, and the paths where the
// kubelet, containerd and the CNI plugins keep state by default (/run,
// /var/lib, /var/log: shim sockets, /var/lib/cni, /var/log/containers)
// are fresh tmpfs.
func isolateMounts(stateDir string) error {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return err
	}
	if host, err := os.Readlink("/proc/1/ns/mnt"); err == nil && host == self {
		return errors.New("a real node must run in a mount namespace of its own (testcluster starts it so)")
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make / a slave mount: %w", err)
	}
	for _, dir := range []string{"/run", "/var/lib", "/var/log"} {
		if rel, err := filepath.Rel(dir, stateDir); err == nil && !strings.HasPrefix(rel, "..") {
			return fmt.Errorf("the cluster directory %s is under %s, which a real node hides: use another --dir", stateDir, dir)
		}
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
			return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
		}
	}
	// The kubelet's sockets (pod-resources, device plugins) live in its
	// root directory and a Unix socket path has at most 107 bytes: the
	// node's kubelet directory is seen at the kubelet's usual short path.
	kubeletDir := filepath.Join(stateDir, "kubelet") // KubeletDir
	for _, d := range []string{kubeletDir, kubeletRootDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return err
		}
	}
	if err := unix.Mount(kubeletDir, kubeletRootDir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", kubeletDir, kubeletRootDir, err)
	}
	return maskKernelTunables(filepath.Join(stateDir, "sysctl"))
}

// kubeletRootDir is the kubelet's root directory as it sees it: the node's
// kubelet directory, bound there in the node's mount namespace.
const kubeletRootDir = "/var/lib/kubelet"

// kernelTunables are the sysctls the kubelet sets at start, with the values
// it wants (pkg/kubelet/cm setupKernelTunables). It would change them for
// the whole machine (panic_on_oops=1 among them), so this node shows it
// files that already hold those values instead.
var kernelTunables = map[string]string{
	"vm/overcommit_memory":      "1",
	"vm/panic_on_oom":           "0",
	"kernel/panic":              "10",
	"kernel/panic_on_oops":      "1",
	"kernel/keys/root_maxkeys":  "1000000",
	"kernel/keys/root_maxbytes": "25000000",
}

func maskKernelTunables(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, value := range kernelTunables {
		file := filepath.Join(dir, strings.ReplaceAll(name, "/", "."))
		if err := os.WriteFile(file, []byte(value+"\n"), 0o644); err != nil {
			return err
		}
		if err := unix.Mount(file, filepath.Join("/proc/sys", name), "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("mask /proc/sys/%s: %w", name, err)
		}
	}
	return nil
}

// daemon is containerd or the kubelet, logging to a file.
type daemon struct {
	name, logFile string
	cmd           *exec.Cmd
	done          chan struct{}
	err           error
}

// startDaemon starts bin in the slot's runtime cgroup. It dies with this
// process (Pdeathsig); what it leaves is in the cgroup tree, for cleanHost.
func startDaemon(logDir, name string, slot *Slot, bin string, args ...string) (*daemon, error) {
	logFile := filepath.Join(logDir, name+".log")
	log, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d := &daemon{name: name, logFile: logFile, cmd: cmd, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		log.Close()
		close(d.done)
	}()
	// containerd forks nothing and the kubelet starts no process before it
	// has read its configuration: moving them right after the start puts
	// everything they ever start in the tree.
	if err := placeInCgroup(slot.Cgroup(), cmd.Process.Pid); err != nil {
		d.stop(0)
		return nil, err
	}
	return d, nil
}

func (d *daemon) stop(grace time.Duration) {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(grace):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// waitSocket waits until a unix socket accepts connections.
func waitSocket(ctx context.Context, path string, d *daemon) error {
	for {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.done:
			return fmt.Errorf("%s exited: %v; the end of %s:\n%s", d.name, d.err, d.logFile, tail(d.logFile, 2000))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(file string, n int) string {
	data, _ := os.ReadFile(file)
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}

// StoppedClean is what `testcluster node` logs when Run returned without an
// error: the node stopped and the host is clean. The lifecycle tests look
// for it, since once a node's slot is free another node may claim it and
// set up the same names on the host.
const StoppedClean = "stopped; the host is clean"

// ReadyLine is what `testcluster node` prints when its node runs.
func ReadyLine(i Info) string { return fmt.Sprintf("ready %s %d", i.NodeIP, i.Slot) }

// ParseReadyLine reads ReadyLine's output.
func ParseReadyLine(line string) (Info, bool) {
	var i Info
	_, err := fmt.Sscanf(line, "ready %s %d", &i.NodeIP, &i.Slot)
	return i, err == nil
}
