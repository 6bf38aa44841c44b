package lifecycle

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/cluster"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/nodekind"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/realnode"
)

// machineWide is what of the host a real node could change for everyone:
// sysctls the kubelet and the CNI bridge plugin set by default, the
// directories the kubelet, containerd and CNI use by default, and the
// iptables rules. It must read the same before and after a cluster; other
// test clusters on the machine run the same code, so they change none of it
// either.
type machineWide struct {
	sysctls  map[string]string
	paths    map[string]bool
	iptables string
}

var (
	watchedSysctls = []string{"net/ipv4/ip_forward", "vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic",
		"kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"}
	watchedPaths = []string{"/var/lib/kubelet", "/var/lib/containerd", "/var/lib/cni", "/var/log/pods",
		"/var/log/containers", "/run/containerd", "/run/netns", "/opt/containerd", "/opt/cni", "/etc/cni",
		"/etc/containerd", "/etc/kubernetes", "/var/run/nri", "/usr/libexec/kubernetes"}
)

func readMachineWide(t *testing.T) machineWide {
	t.Helper()
	m := machineWide{sysctls: map[string]string{}, paths: map[string]bool{}}
	for _, s := range watchedSysctls {
		v, err := os.ReadFile(filepath.Join("/proc/sys", s))
		if err != nil {
			t.Fatal(err)
		}
		m.sysctls[s] = strings.TrimSpace(string(v))
	}
	for _, p := range watchedPaths {
		_, err := os.Lstat(p)
		m.paths[p] = err == nil
	}
	if _, err := exec.LookPath("iptables-save"); err == nil {
		out, err := exec.Command("iptables-save").Output()
		if err != nil {
			t.Fatalf("iptables-save: %v", err)
		}
		// Comments carry the time of the dump.
		var rules []string
		for _, line := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(line, "#") {
				rules = append(rules, line)
			}
		}
		m.iptables = strings.Join(rules, "\n")
	}
	return m
}

func (m machineWide) diff(after machineWide) []string {
	var d []string
	for k, v := range m.sysctls {
		if after.sysctls[k] != v {
			d = append(d, fmt.Sprintf("sysctl %s: %s, was %s", k, after.sysctls[k], v))
		}
	}
	for k, v := range m.paths {
		if after.paths[k] != v {
			d = append(d, fmt.Sprintf("%s exists: %v, was %v", k, after.paths[k], v))
		}
	}
	if m.iptables != after.iptables {
		d = append(d, fmt.Sprintf("iptables rules changed:\n%s\nwere:\n%s", after.iptables, m.iptables))
	}
	return d
}

// realNodeTrace is what one running real node has on the host, read while it
// runs: after it stops, none of it may be left.
type realNodeTrace struct {
	slot                   int
	nodeIP, bridge, cgroup string
	vethPorts              []string
	pids                   []int // the node process, containerd, the kubelet, shims, containers
	mountNS                string
	podNetNS               string
	// logFile is the node process's own log: what it says of its stop
	// tells a slow cleanup from one that never ran.
	logFile         string
	slotTakenLogged bool
	// held keeps both namespaces open, so that their inode numbers cannot
	// be reused by a namespace made later while the test looks for their
	// members; released by releaseNamespaces, before the links are checked
	// (a held network namespace keeps its veth).
	held []*os.File
}

// traceRealNode reads the trace of node name of the cluster in dir, whose
// pod podName runs on it.
func traceRealNode(t *testing.T, c *cluster.Cluster, name, ns, podName string) *realNodeTrace {
	t.Helper()
	node, err := c.Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tr := &realNodeTrace{logFile: filepath.Join(c.Dir, "logs", name+".log")}
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			tr.nodeIP = a.Address
		}
	}
	slot := tr.nodeIP[strings.LastIndex(tr.nodeIP, ".")+1:]
	tr.slot = atoi(slot)
	tr.bridge, tr.cgroup = "tc-real"+slot, "testcluster-real"+slot
	ports, _ := filepath.Glob(filepath.Join("/sys/class/net", tr.bridge, "brif", "*"))
	for _, p := range ports {
		tr.vethPorts = append(tr.vethPorts, filepath.Base(p))
	}
	supervisor := processesWith(t, "node --dir "+c.Dir+" --name "+name)
	if len(supervisor) != 1 {
		t.Fatalf("node process of %s: %v", name, supervisor)
	}
	tr.pids = append(supervisor, cgroupPIDs(t, tr.cgroup)...)
	tr.mountNS, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", supervisor[0]))
	tr.hold(t, fmt.Sprintf("/proc/%d/ns/mnt", supervisor[0]))

	pod, err := c.Client.CoreV1().Pods(ns).Get(context.Background(), podName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimPrefix(pod.Status.ContainerStatuses[0].ContainerID, "containerd://")
	for _, pid := range tr.pids {
		if strings.Contains(cmdline(pid), "-id ") || !strings.Contains(readCgroup(pid), id) {
			continue
		}
		tr.podNetNS, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		tr.hold(t, fmt.Sprintf("/proc/%d/ns/net", pid))
	}
	switch {
	case tr.nodeIP == "" || len(tr.vethPorts) == 0 || tr.mountNS == "" || tr.podNetNS == "":
		t.Fatalf("the running real node shows no address, veth, mount or network namespace: this test would prove nothing: %+v", tr)
	case len(tr.pids) < 5:
		t.Fatalf("the running real node has only processes %v: this test would prove nothing", tr.pids)
	}
	return tr
}

func (tr *realNodeTrace) hold(t *testing.T, ns string) {
	t.Helper()
	f, err := os.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	tr.held = append(tr.held, f)
	t.Cleanup(func() { f.Close() })
}

func (tr *realNodeTrace) releaseNamespaces() {
	for _, f := range tr.held {
		f.Close()
	}
	tr.held = nil
}

// leftProcesses lists the node's processes still alive and any process in
// its mount namespace or its pod's network namespace.
func (tr *realNodeTrace) leftProcesses(t *testing.T) []string {
	t.Helper()
	var found []string
	for _, pid := range tr.pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			found = append(found, fmt.Sprintf("process %d: %s", pid, cmdline(pid)))
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		for _, ns := range []struct{ kind, want string }{{"mnt", tr.mountNS}, {"net", tr.podNetNS}} {
			if got, _ := os.Readlink(filepath.Join("/proc", e.Name(), "ns", ns.kind)); got == ns.want {
				found = append(found, fmt.Sprintf("process %s in the node's %s namespace %s: %s", e.Name(), ns.kind, ns.want, cmdline(atoi(e.Name()))))
			}
		}
	}
	return found
}

// leftOnHost lists the node's address, links and cgroups still there. The
// address, bridge and cgroup are named by the node's slot: while another
// node holds the slot (a cluster of another test binary started one after
// this node had cleaned up and let the slot go), they are that node's, and
// only the veths, named at random, are this one's. The slot is held while
// it is looked at, so that no node claims it halfway.
func (tr *realNodeTrace) leftOnHost(t *testing.T) []string {
	t.Helper()
	var found []string
	links := tr.vethPorts
	if slot, free := realnode.TakeSlot(tr.slot); free {
		defer slot.Release()
		out, _ := exec.Command("ip", "-o", "-4", "addr", "show", "dev", "lo").Output()
		if strings.Contains(string(out), " "+tr.nodeIP+"/") {
			found = append(found, "address "+tr.nodeIP+" on lo")
		}
		links = append([]string{tr.bridge}, links...)
		v1, _ := filepath.Glob("/sys/fs/cgroup/*/" + tr.cgroup)
		v2, _ := filepath.Glob("/sys/fs/cgroup/" + tr.cgroup)
		if dirs := append(v1, v2...); len(dirs) > 0 {
			found = append(found, fmt.Sprintf("cgroups %v", dirs))
		}
	} else if !tr.slotTakenLogged {
		tr.slotTakenLogged = true
		t.Logf("slot %d is held by another node now: its address, bridge and cgroup are that node's", tr.slot)
	}
	for _, link := range links {
		if _, err := os.Stat(filepath.Join("/sys/class/net", link)); err == nil {
			found = append(found, "link "+link)
		}
	}
	return found
}

// waitGone polls until nothing of the trace is left: first its processes,
// then, the namespaces released, what it had on the host (a network
// namespace is freed asynchronously after its last process, and its veth
// with it). The node must have said that it cleaned the host itself: a
// node that died without cleaning leaves its slot to the next node, which
// cleans it before it sets up its own.
func (tr *realNodeTrace) waitGone(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for i, check := range []func(*testing.T) []string{tr.leftProcesses, tr.leftOnHost} {
		for {
			left := check(t)
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("left on the host after %s:\n%s\n%s", within, strings.Join(left, "\n"), tr.logTail())
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		if i == 0 {
			if log, _ := os.ReadFile(tr.logFile); !strings.Contains(string(log), realnode.StoppedClean) {
				t.Errorf("the node ended without saying %q:\n%s", realnode.StoppedClean, tr.logTail())
			}
		}
		tr.releaseNamespaces()
	}
}

// logTail is the end of the node process's log, for a failure's message.
func (tr *realNodeTrace) logTail() string {
	log, _ := os.ReadFile(tr.logFile)
	if len(log) > 3000 {
		log = log[len(log)-3000:]
	}
	return fmt.Sprintf("the end of %s:\n%s", tr.logFile, log)
}

// realNodes is how many real nodes the lifecycle tests start: one, unless
// the machine cannot (then the tests say so and check the agent only).
func realNodes(t *testing.T) int {
	t.Helper()
	n, whyNone, err := cluster.RealNodesFromEnv("")
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Logf("no real node: %s", whyNone)
	}
	return min(n, 1)
}

// realPod is a running pod on real-1 with an emptyDir and a projected token
// (a tmpfs the kubelet mounts), for the node to clean up.
func realPod(t *testing.T, c *cluster.Cluster, ns string) {
	t.Helper()
	var grace int64 = 1
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "busy", Namespace: ns},
		Spec: corev1.PodSpec{
			NodeSelector:                  map[string]string{nodekind.Label: string(nodekind.Kubelet)},
			Tolerations:                   []corev1.Toleration{{Key: nodekind.Label, Operator: corev1.TolerationOpExists}},
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "main", Image: "busybox", Command: []string{"sleep", "3600"},
				VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}},
			}},
			Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
	ctx := context.Background()
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, c, ns, pod.Name)
}

func waitRunning(t *testing.T, c *cluster.Cluster, ns, name string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p, err := c.Client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s/%s never ran: %v %+v\n%s", ns, name, err, p, c.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func processesWith(t *testing.T, sub string) []int {
	t.Helper()
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if pid := atoi(e.Name()); pid > 0 && strings.Contains(cmdline(pid), sub) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func cgroupPIDs(t *testing.T, cgroup string) []int {
	t.Helper()
	var pids []int
	root := filepath.Join("/sys/fs/cgroup/pids", cgroup) // v1
	if _, err := os.Stat(root); err != nil {
		root = filepath.Join("/sys/fs/cgroup", cgroup) // v2
	}
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		data, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(data)) {
			if pid := atoi(f); pid > 0 && !slices.Contains(pids, pid) {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

func readCgroup(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	return string(b)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}
