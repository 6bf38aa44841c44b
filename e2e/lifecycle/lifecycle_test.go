// Package lifecycle checks that `testcluster up` cleans up after itself:
// after SIGTERM no process it started, no mount, and on real nodes no
// address, bridge, veth, cgroup, namespace, iptables rule or sysctl change is
// left; after a crash (SIGKILL) the real node cleans up by itself, and what a
// node killed outright leaves is removed by the next one. It starts its own
// clusters, since stopping the shared one is not an option.
package lifecycle

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/cluster"
)

func TestStopLeavesNothingBehind(t *testing.T) {
	real := realNodes(t)
	before := readMachineWide(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Options{Dir: dir, Nodes: 2, RealNodes: real})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = c.Stop()
		}
	}()

	// A running pod with an emptyDir gives the agent processes and mounts to clean up.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "busy", Namespace: "default"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "main", Image: "busybox", Command: []string{"sleep", "3600"},
				VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}},
			}},
			Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
	if _, err := c.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, c, "default", "busy")
	var traces []*realNodeTrace
	if real > 0 {
		realPod(t, c, "kube-public")
		traces = append(traces, traceRealNode(t, c, "real-1", "kube-public", "busy"))
	}
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) != 3+real {
		t.Fatalf("nodes: %v, %d of %d (1 agent, %d real, 2 synthetic)", err, len(nodes.Items), 3+real, real)
	}
	if len(processesUnder(t, dir)) == 0 || len(mountsUnder(t, dir)) == 0 {
		t.Fatal("the running cluster shows no process or mount under its directory: this test would prove nothing")
	}

	stopped = true
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if procs := processesUnder(t, dir); len(procs) > 0 {
		t.Errorf("processes left after SIGTERM: %v", procs)
	}
	if mounts := mountsUnder(t, dir); len(mounts) > 0 {
		t.Errorf("mounts left after SIGTERM: %v", mounts)
	}
	for _, tr := range traces {
		// Stop returned after testcluster exited, which waits for its nodes.
		tr.waitGone(t, 20*time.Second)
	}
	if d := before.diff(readMachineWide(t)); len(d) > 0 {
		t.Errorf("the host changed:\n%s", strings.Join(d, "\n"))
	}
}

// TestKilledRealNodeIsCleanedUp crashes a cluster with a running real node:
// killed with SIGKILL, testcluster takes nobody down cleanly, but its real
// node (told by Pdeathsig) cleans up the host by itself. A node killed too
// leaves its containers, bridge, address and cgroups: the next real node
// on the machine removes them when it starts.
func TestKilledRealNodeIsCleanedUp(t *testing.T) {
	if realNodes(t) == 0 {
		t.Skip("no real node")
	}
	before := readMachineWide(t)
	start := func(t *testing.T) (*cluster.Cluster, *realNodeTrace) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		c, err := cluster.Start(ctx, cluster.Options{Dir: t.TempDir(), RealNodes: 1})
		if err != nil {
			t.Fatal(err)
		}
		realPod(t, c, "default")
		return c, traceRealNode(t, c, "real-1", "default", "busy")
	}

	t.Run("testcluster killed", func(t *testing.T) {
		c, tr := start(t)
		c.Kill()
		// The node stops its kubelet and containerd (10 s of grace each, and
		// a kubelet whose API server died may need it) before it cleans the
		// host; a machine loaded by the other test binary took over a minute.
		tr.waitGone(t, 3*time.Minute)
	})

	t.Run("node killed too", func(t *testing.T) {
		c, tr := start(t)
		// The node process first, so that it cannot clean up when testcluster dies.
		if err := syscall.Kill(tr.pids[0], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		c.Kill()
		time.Sleep(time.Second)
		left := tr.leftProcesses(t)
		if !strings.Contains(strings.Join(left, "\n"), "sleep 3600") {
			t.Fatalf("a node killed outright left no container behind: this test would prove nothing; left: %v", left)
		}
		// The next node on the machine claims the lowest free slot, which
		// cleans every free slot that holds leftovers.
		next, _ := start(t)
		defer func() {
			if err := next.Stop(); err != nil {
				t.Error(err)
			}
		}()
		// The next node may have taken the same slot: its own address,
		// bridge and cgroup are not leftovers; processes of the killed node
		// are.
		for _, l := range tr.leftProcesses(t) {
			t.Errorf("left by the killed node after the next one started: %s", l)
		}
	})

	if d := before.diff(readMachineWide(t)); len(d) > 0 {
		t.Errorf("the host changed:\n%s", strings.Join(d, "\n"))
	}
}

// processesUnder lists processes whose command line, root or working
// directory names something under dir.
func processesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join("/proc", e.Name())
		cmdline, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil {
			continue
		}
		root, _ := os.Readlink(filepath.Join(p, "root"))
		cwd, _ := os.Readlink(filepath.Join(p, "cwd"))
		if strings.Contains(string(cmdline), dir) || strings.HasPrefix(root, dir) || strings.HasPrefix(cwd, dir) {
			found = append(found, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return found
}

// mountsUnder lists mount points under dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var found []string
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir) {
			found = append(found, fields[4])
		}
	}
	return found
}
