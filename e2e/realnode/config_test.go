package realnode

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

// TestKubeletConfigIsValid decodes the configuration strictly into the
// kubelet's own type: a misspelt field would otherwise be ignored.
func TestKubeletConfigIsValid(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kubelet.json")
	err := writeKubeletConfig(path, kubeletOptions{stateDir: dir, nodeIP: "198.18.0.7", clientCAFile: "/ca.crt",
		serving: [2]string{"/s.crt", "/s.key"}, cgroupRoot: "/testcluster-real7",
		taints: []map[string]string{{"key": "k", "value": "v", "effect": "NoSchedule"}}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cfg kubeletconfig.KubeletConfiguration
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("kubelet configuration: %v\n%s", err, data)
	}
	if cfg.CgroupRoot != "/testcluster-real7" || cfg.Address != "198.18.0.7" || *cfg.MakeIPTablesUtilChains ||
		cfg.ReadOnlyPort != 0 || *cfg.HealthzPort != 0 || len(cfg.RegisterWithTaints) != 1 || *cfg.FailCgroupV1 {
		t.Errorf("kubelet configuration lost a setting: %+v", cfg)
	}
}

// TestContainerdConfigTakesEffect has containerd itself read the
// configuration: a key in the wrong table is silently ignored.
func TestContainerdConfigTakesEffect(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	containerd := filepath.Join(filepath.Dir(file), "..", "..", "bin", "containerd")
	if _, err := os.Stat(containerd); err != nil {
		t.Skip("bin/containerd not built (make cluster)")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	if err := writeContainerdConfig(path, dir, "/usr/lib/cni", "127.0.0.1:5000"); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(containerd, "--config", path, "config", "dump").CombinedOutput()
	if err != nil {
		t.Fatalf("containerd config dump: %v\n%s", err, out)
	}
	dump := string(out)
	for _, want := range []string{
		"restrict_oom_score_adj = true",
		"netns_mounts_under_state_dir = true",
		"sandbox = 'testcluster.local/pause:1'",
		"config_path = '" + filepath.Join(dir, "containerd", "certs.d") + "'",
		"bin_dirs = ['/usr/lib/cni']",
		"conf_dir = '" + filepath.Join(dir, "cni", "net.d") + "'",
		"root = '" + filepath.Join(dir, "containerd", "root") + "'",
		"'io.containerd.nri.v1.nri'",
		"cdi_spec_dirs = []",
		"address = '" + containerdSocket + "'",
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("containerd's effective configuration lacks %q:\n%s", want, dump)
		}
	}
	hosts, err := os.ReadFile(filepath.Join(dir, "containerd", "certs.d", "_default", "hosts.toml"))
	if err != nil || !strings.Contains(string(hosts), `server = "http://127.0.0.1:5000"`) {
		t.Errorf("registry hosts.toml: %v\n%s", err, hosts)
	}
}

func TestCNIConfig(t *testing.T) {
	dir := t.TempDir()
	if err := writeCNIConfig(dir, &Slot{N: 12}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "cni", "net.d", "10-testcluster.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Plugins []struct {
			Type, Bridge      string
			IsGateway, IPMasq bool
			IPAM              struct {
				Ranges [][]struct{ Subnet, Gateway string }
			}
		}
	}
	if err := json.Unmarshal(data, &conf); err != nil || len(conf.Plugins) != 1 {
		t.Fatalf("%v\n%s", err, data)
	}
	p := conf.Plugins[0]
	if p.Type != "bridge" || p.Bridge != "tc-real12" || p.IsGateway || p.IPMasq ||
		p.IPAM.Ranges[0][0].Subnet != "198.19.12.0/24" || p.IPAM.Ranges[0][0].Gateway != "198.19.12.1" {
		t.Errorf("CNI configuration: %s", data)
	}
}

func TestReadyLine(t *testing.T) {
	in := Info{NodeIP: "198.18.0.3", Slot: 3}
	if got, ok := ParseReadyLine(ReadyLine(in)); !ok || got != in {
		t.Errorf("ParseReadyLine(ReadyLine(%v)) = %v, %v", in, got, ok)
	}
	if _, ok := ParseReadyLine("slot 3: cleaning"); ok {
		t.Error("a log line parsed as ready")
	}
}

// TestClaimSlotIsExclusive claims two slots: they differ, and releasing
// one frees it (another node on the machine may take it first).
func TestClaimSlotIsExclusive(t *testing.T) {
	logf := func(string, ...any) {}
	a, err := ClaimSlot(logf)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ClaimSlot(logf)
	if err != nil {
		t.Fatal(err)
	}
	if a.N == b.N {
		t.Fatalf("two claims got slot %d", a.N)
	}
	a.Release()
	c, err := ClaimSlot(logf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	defer b.Release()
	if c.N == b.N {
		t.Errorf("slot %d, still held, was claimed again", b.N)
	}
	if a.NodeIP() == b.NodeIP() || a.Bridge() == b.Bridge() || a.PodSubnet() == b.PodSubnet() || a.Cgroup() == b.Cgroup() {
		t.Errorf("slots %d and %d share a name", a.N, b.N)
	}
}
