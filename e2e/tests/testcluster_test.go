package tests

// The test cluster's own promises (issue 2): pods run with their working
// directory and volumes, exec works over WebSocket and SPDY with exit codes
// and TTYs, logs stream, images are checked, PVC data outlives pods, deletion
// kills processes, and RBAC is enforced.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// volumePod runs in /work/dir with an emptyDir at /cache and a PVC at /data.
func volumePod(t *testing.T, ns, name, claim string) *corev1.Pod {
	t.Helper()
	pod := sleeper(ns, name)
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}},
	}
	c := &pod.Spec.Containers[0]
	c.WorkingDir = "/work/dir"
	c.VolumeMounts = []corev1.VolumeMount{{Name: "cache", MountPath: "/cache"}, {Name: "data", MountPath: "/data"}}
	return pod
}

func createClaim(t *testing.T, ns, name string) {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if _, err := testCluster.Client.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), pvc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create claim: %v", err)
	}
}

func TestExecInWorkingDirWithVolumes(t *testing.T) {
	onEachNodeKind(t, testExecInWorkingDirWithVolumes)
}

func testExecInWorkingDirWithVolumes(t *testing.T, ns string) {
	createClaim(t, ns, "data")
	createPod(t, volumePod(t, ns, "vols", "data"), running)

	for _, transport := range []struct{ name, websockets string }{{"websocket", "true"}, {"spdy", "false"}} {
		t.Run(transport.name, func(t *testing.T) {
			t.Setenv("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", transport.websockets)
			out := kubectl(t, "-n", ns, "exec", "vols", "--", "sh", "-c",
				"pwd; echo x >/cache/f && cat /cache/f; echo y >/data/f && cat /data/f")
			if want := "/work/dir\nx\ny\n"; out != want {
				t.Errorf("exec output = %q, want %q", out, want)
			}
			r := run(t, "", "kubectl", "-n", ns, "exec", "vols", "--", "sh", "-c", "exit 7")
			if r.exitCode != 7 {
				t.Errorf("exit 7 came back as %d (stderr %q)", r.exitCode, r.stderr)
			}
			r = run(t, "hello from stdin\n", "kubectl", "-n", ns, "exec", "-i", "vols", "--", "cat")
			if r.stdout != "hello from stdin\n" {
				t.Errorf("stdin round trip = %q", r.stdout)
			}
		})
	}
}

func TestExecTTYFollowsResize(t *testing.T) {
	onEachNodeKind(t, testExecTTYFollowsResize)
}

func testExecTTYFollowsResize(t *testing.T, ns string) {
	createPod(t, sleeper(ns, "tty"), running)

	cmd := testCluster.Command(context.Background(), "kubectl", "-n", ns, "exec", "-it", "tty", "--", "sh")
	term, screen := startOnPTY(t, cmd)
	resizeTo(t, term, screen, 24, 80) // applied just after the shell starts
	resizeTo(t, term, screen, 40, 132)
	fmt.Fprint(term, "exit 3\n")
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 3 {
		t.Errorf("exit status = %v, want 3", err)
	}
}

func TestLogsFollow(t *testing.T) {
	onEachNodeKind(t, testLogsFollow)
}

func testLogsFollow(t *testing.T, ns string) {
	pod := sleeper(ns, "ticker")
	pod.Spec.Containers[0].Command = []string{"sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"}
	createPod(t, pod, running)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := testCluster.Command(ctx, "kubectl", "-n", ns, "logs", "-f", "ticker")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	lines := bufio.NewScanner(out)
	// Lines written after kubectl started prove it follows, not just reads.
	for want := 0; want < 15; want++ {
		if !lines.Scan() {
			t.Fatalf("log stream ended after %d lines: %v", want, lines.Err())
		}
		if got := lines.Text(); got != fmt.Sprintf("tick %d", want) {
			t.Fatalf("line %d = %q", want, got)
		}
	}
}

func TestUnknownImageBacksOff(t *testing.T) {
	onEachNodeKind(t, testUnknownImageBacksOff)
}

func testUnknownImageBacksOff(t *testing.T, ns string) {
	pod := sleeper(ns, "noimage")
	pod.Spec.Containers[0].Image = "registry.example/does-not-exist:1.0"
	createPod(t, pod, func(p *corev1.Pod) bool {
		s := p.Status.ContainerStatuses
		return p.Status.Phase == corev1.PodPending && len(s) == 1 && s[0].State.Waiting != nil &&
			s[0].State.Waiting.Reason == "ImagePullBackOff"
	})
}

func TestClaimOutlivesPod(t *testing.T) {
	onEachNodeKind(t, testClaimOutlivesPod)
}

func testClaimOutlivesPod(t *testing.T, ns string) {
	createClaim(t, ns, "keep")
	createPod(t, volumePod(t, ns, "writer", "keep"), running)
	kubectl(t, "-n", ns, "exec", "writer", "--", "sh", "-c", "echo kept >/data/proof")
	kubectl(t, "-n", ns, "delete", "pod", "writer", "--wait=true")
	createPod(t, volumePod(t, ns, "reader", "keep"), running)
	if out := kubectl(t, "-n", ns, "exec", "reader", "--", "cat", "/data/proof"); out != "kept\n" {
		t.Errorf("data after a new pod = %q, want %q", out, "kept\n")
	}
}

func TestDeletingPodKillsProcesses(t *testing.T) {
	onEachNodeKind(t, testDeletingPodKillsProcesses)
}

func testDeletingPodKillsProcesses(t *testing.T, ns string) {
	pod := sleeper(ns, "victim")
	marker := fmt.Sprintf("%d", 4000000+time.Now().UnixNano()%1000000) // a sleep nobody else runs
	pod.Spec.Containers[0].Command = []string{"sleep", marker}
	createPod(t, pod, running)
	if pids := processesWithArg(marker); len(pids) == 0 {
		t.Fatalf("no process runs `sleep %s`", marker)
	}
	// An exec'd process must die with its pod too.
	go func() { _ = run(t, "", "kubectl", "-n", ns, "exec", "victim", "--", "sleep", marker+"1") }()
	deadline := time.Now().Add(20 * time.Second)
	for len(processesWithArg(marker+"1")) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	kubectl(t, "-n", ns, "delete", "pod", "victim", "--wait=true")
	deadline = time.Now().Add(10 * time.Second)
	for {
		left := append(processesWithArg(marker), processesWithArg(marker+"1")...)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v outlived their deleted pod", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestRestrictedUserCannotExec(t *testing.T) {
	ns := testCluster.Namespace(t)
	createPod(t, sleeper(ns, "guarded"), running)
	kubeconfig := userWithRole(t, ns, "reader",
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}})
	if r := run(t, "", "kubectl", "--kubeconfig", kubeconfig, "-n", ns, "get", "pod", "guarded"); r.exitCode != 0 {
		t.Fatalf("reader cannot get the pod: %s", r.stderr)
	}
	r := run(t, "", "kubectl", "--kubeconfig", kubeconfig, "-n", ns, "exec", "guarded", "--", "true")
	if r.exitCode == 0 || !strings.Contains(r.stderr, "Forbidden") && !strings.Contains(r.stderr, "forbidden") {
		t.Errorf("exec as reader: exit %d, stderr %q; want Forbidden", r.exitCode, r.stderr)
	}
}

// processesWithArg lists the pids whose command line has arg as an argument.
func processesWithArg(arg string) []string {
	var pids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(cmdline), "\x00") {
			if a == arg {
				pids = append(pids, e.Name())
			}
		}
	}
	return pids
}
