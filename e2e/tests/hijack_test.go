package tests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// step describes a pod that runs a Concourse step per docs/labels.md.
type step struct {
	name                       string // pod name
	pipeline, job, build, step string
	image, workingDir          string
	command                    []string // default: sleep until deleted
}

// stepPod builds the pod, encoding names and annotating the originals as
// the contract says. hijackLabelValue is the test's own reading of the
// spec, independent of the plugin's code.
func stepPod(ns string, s step) *corev1.Pod {
	var grace int64 = 1
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: ns,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "concourse"}, Annotations: map[string]string{}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			RestartPolicy:                 corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "main", Image: s.image, WorkingDir: s.workingDir,
				Command: s.command}},
		},
	}
	if pod.Spec.Containers[0].Image == "" {
		pod.Spec.Containers[0].Image = "busybox"
	}
	if s.command == nil && pod.Spec.Containers[0].Image != "distroless" {
		pod.Spec.Containers[0].Command = []string{"sleep", "3600"}
	}
	for key, name := range map[string]string{"team": "main", "pipeline": s.pipeline, "job": s.job, "build-name": s.build,
		"step-name": s.step, "step-type": "task", "attempt": "1"} {
		if name == "" {
			continue
		}
		v := hijackLabelValue(name)
		pod.Labels["concourse-ci.org/"+key] = v
		if v != name {
			pod.Annotations["concourse-ci.org/"+key] = name
		}
	}
	return pod
}

// hijackLabelValue is the contract's encoding, written from docs/labels.md.
func hijackLabelValue(name string) string {
	if len(validation.IsValidLabelValue(name)) == 0 {
		return name
	}
	var b strings.Builder
	for _, r := range name {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := b.String()
	if len(s) > 52 {
		s = s[:52]
	}
	s = strings.Trim(s, "._-")
	sum := sha256.Sum256([]byte(name))
	if s == "" {
		return hex.EncodeToString(sum[:])[:10]
	}
	return s + "-" + hex.EncodeToString(sum[:])[:10]
}

// hijack runs `kubectl concourse hijack -n ns args...`.
func hijack(t *testing.T, ns, stdin string, args ...string) result {
	t.Helper()
	return run(t, stdin, "kubectl", append([]string{"concourse", "hijack", "-n", ns}, args...)...)
}

func TestHijackWorkingDirAndExitStatus(t *testing.T) {
	onEachNodeKind(t, testHijackWorkingDirAndExitStatus)
}

func testHijackWorkingDirAndExitStatus(t *testing.T, ns string) {
	createPod(t, stepPod(ns, step{name: "unit", pipeline: "main", job: "test", build: "1", step: "unit",
		workingDir: "/tmp/build/b1dda4c3"}), running)

	r := hijack(t, ns, "", "-j", "main/test", "-b", "1", "-s", "unit", "--", "sh", "-c", "pwd; exit 7")
	if r.exitCode != 7 || r.stdout != "/tmp/build/b1dda4c3\n" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 7 and the working directory", r.exitCode, r.stdout, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("a remote exit status printed %q; fly prints nothing", r.stderr)
	}

	// -w with a name no shell quoting survives naively.
	dir := `/tmp/it's a "dir" $(x) ;`
	if r := hijack(t, ns, "", "-j", "main/test", "-s", "unit", "--", "mkdir", "-p", dir); r.exitCode != 0 {
		t.Fatalf("mkdir: exit %d, %s", r.exitCode, r.stderr)
	}
	r = hijack(t, ns, "", "-j", "main/test", "-s", "unit", "-w", dir, "--", "pwd")
	if r.exitCode != 0 || r.stdout != dir+"\n" {
		t.Errorf("-w: exit %d, stdout %q, stderr %q", r.exitCode, r.stdout, r.stderr)
	}

	// Piped stdin reaches the shell and is closed at EOF.
	r = hijack(t, ns, "echo piped $((2+3))\nexit 4\n", "-j", "main/test", "-s", "unit", "--", "sh")
	if r.exitCode != 4 || r.stdout != "piped 5\n" {
		t.Errorf("stdin: exit %d, stdout %q, stderr %q", r.exitCode, r.stdout, r.stderr)
	}

	// URL form and alias.
	r = run(t, "", "kubectl", "concourse", "i", "-n", ns, "-u", "https://ci.example.com/teams/main/pipelines/main/jobs/test/builds/1", "-s", "unit", "--", "true")
	if r.exitCode != 0 {
		t.Errorf("-u: exit %d, stderr %q", r.exitCode, r.stderr)
	}
}

func TestHijackFallsBackToSh(t *testing.T) {
	onEachNodeKind(t, testHijackFallsBackToSh)
}

func testHijackFallsBackToSh(t *testing.T, ns string) {
	createPod(t, stepPod(ns, step{name: "bb", pipeline: "main", job: "test", build: "1", step: "unit"}), running)

	r := hijack(t, ns, "echo in-sh\n", "-j", "main/test", "-s", "unit")
	if r.exitCode != 0 || r.stdout != "in-sh\n" || !strings.Contains(r.stderr, `Couldn't find "bash" on container, retrying with "sh"`) {
		t.Errorf("exit %d, stdout %q, stderr %q", r.exitCode, r.stdout, r.stderr)
	}
}

func TestHijackTTYResize(t *testing.T) {
	onEachNodeKind(t, testHijackTTYResize)
}

func testHijackTTYResize(t *testing.T, ns string) {
	createPod(t, stepPod(ns, step{name: "tty", pipeline: "main", job: "test", build: "1", step: "unit",
		image: "bash", workingDir: "/tmp/build/tty"}), running)

	cmd := testCluster.Command(context.Background(), "kubectl", "concourse", "hijack", "-n", ns, "-j", "main/test", "-s", "unit")
	term, screen := startOnPTY(t, cmd)
	fmt.Fprint(term, "echo \"$PWD:$BASH_VERSION\"\n")
	// A runtime applies the first size just after the shell starts.
	resizeTo(t, term, screen, 24, 80)
	if !screen.contains("/tmp/build/tty:") || screen.contains("/tmp/build/tty:\r") {
		t.Errorf("not bash in the working directory:\n%s", screen.text())
	}
	resizeTo(t, term, screen, 40, 132)
	fmt.Fprint(term, "exit 3\n")
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 3 {
		t.Errorf("exit status = %v, want 3; screen:\n%s", err, screen.text())
	}
}

func TestHijackAmbiguousWithoutTTY(t *testing.T) {
	ns := testCluster.Namespace(t)
	for _, b := range []string{"1", "2"} {
		createPod(t, stepPod(ns, step{name: "unit-" + b, pipeline: "main", job: "test", build: b, step: "unit"}), running)
	}
	r := hijack(t, ns, "", "-j", "main/test", "-s", "unit", "--", "true")
	for _, want := range []string{"2 containers match", "build #1, step: unit, type: task, attempt: 1", "-j main/test -b 1 -s unit", "-j main/test -b 2 -s unit"} {
		if r.exitCode != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("exit %d, stderr %q; want 1 and %q", r.exitCode, r.stderr, want)
		}
	}
}

func TestHijackTektonStep(t *testing.T) {
	onEachNodeKind(t, testHijackTektonStep)
}

func testHijackTektonStep(t *testing.T, ns string) {
	pod := stepPod(ns, step{name: "tr-pod", pipeline: "main", job: "tk", build: "1"})
	delete(pod.Labels, "concourse-ci.org/step-name")
	pod.Labels["tekton.dev/taskRun"] = "tr"
	pod.Spec.Containers = []corev1.Container{
		{Name: "step-clone", Image: "busybox", Command: []string{"sleep", "3600"}, WorkingDir: "/workspace"},
		{Name: "step-unit", Image: "busybox", Command: []string{"sleep", "3600"}, WorkingDir: "/workspace/src"},
	}
	createPod(t, pod, running)
	r := hijack(t, ns, "", "-j", "main/tk", "-s", "unit", "--", "pwd")
	if r.exitCode != 0 || r.stdout != "/workspace/src\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", r.exitCode, r.stdout, r.stderr)
	}
}

func TestHijackLongNonASCIIPipeline(t *testing.T) {
	ns := testCluster.Namespace(t)
	long := strings.Repeat("パイプライン", 12) + " / ünïcode"
	short := strings.Repeat("パ", 3)
	createPod(t, stepPod(ns, step{name: "long", pipeline: long, job: "tëst", build: "1", step: "ünit"}), running)
	// Another pipeline whose encoded label differs only by hash; must not match.
	createPod(t, stepPod(ns, step{name: "short", pipeline: short, job: "tëst", build: "1", step: "ünit"}), running)

	r := hijack(t, ns, "", "-j", strings.ReplaceAll(long, "/", "-")+"/tëst", "-s", "ünit", "--", "true")
	if r.exitCode != 1 || !strings.Contains(r.stderr, "no container matched") {
		t.Errorf("a similar name matched: exit %d, stderr %q", r.exitCode, r.stderr)
	}
	// '/' cannot be given in -j (fly splits on it); a URL carries it escaped.
	webURL := "https://ci/teams/main/pipelines/" + url.PathEscape(long) + "/jobs/" + url.PathEscape("tëst") + "/builds/1"
	r = hijack(t, ns, "", "-u", webURL, "-s", "ünit", "--", "echo", "ok")
	if r.exitCode != 0 || r.stdout != "ok\n" {
		t.Errorf("-u: exit %d, stdout %q, stderr %q", r.exitCode, r.stdout, r.stderr)
	}
	r = hijack(t, ns, "", "-j", short+"/tëst", "-s", "ünit", "--", "true")
	if r.exitCode != 0 {
		t.Errorf("short name: exit %d, stderr %q", r.exitCode, r.stderr)
	}
}

func TestHijackDebugFinishedPod(t *testing.T) {
	onEachNodeKind(t, testHijackDebugFinishedPod)
}

func testHijackDebugFinishedPod(t *testing.T, ns string) {
	createClaim(t, ns, "cache")
	pod := stepPod(ns, step{name: "done", pipeline: "main", job: "test", build: "1", step: "unit",
		workingDir: "/tmp/build/work", command: []string{"sh", "-c", "echo from-the-step > /tmp/build/work/out.txt"}})
	pod.Spec.Volumes = []corev1.Volume{{Name: "work", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "cache"}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "work", MountPath: "/tmp/build/work"}}
	createPod(t, pod, finished)

	r := hijack(t, ns, "", "-j", "main/test", "-s", "unit", "--", "cat", "out.txt")
	if r.exitCode != 1 || !strings.Contains(r.stderr, "--debug") {
		t.Errorf("without --debug: exit %d, stderr %q", r.exitCode, r.stderr)
	}
	r = hijack(t, ns, "", "-j", "main/test", "-s", "unit", "--debug", "--", "sh", "-c", "pwd; cat out.txt; exit 5")
	if r.exitCode != 5 || r.stdout != "/tmp/build/work\nfrom-the-step\n" {
		t.Errorf("--debug: exit %d, stdout %q, stderr %q", r.exitCode, r.stdout, r.stderr)
	}
	waitNoDebugPods(t, ns)
}

func TestHijackDebugShellLessPod(t *testing.T) {
	onEachNodeKind(t, testHijackDebugShellLessPod)
}

func testHijackDebugShellLessPod(t *testing.T, ns string) {
	createPod(t, stepPod(ns, step{name: "dl", pipeline: "main", job: "test", build: "1", step: "unit", image: "distroless"}), running)

	r := hijack(t, ns, "", "-j", "main/test", "-s", "unit")
	if r.exitCode != 1 || !strings.Contains(r.stderr, "has no shell") || !strings.Contains(r.stderr, "--debug") {
		t.Errorf("without --debug: exit %d, stderr %q", r.exitCode, r.stderr)
	}
	r = hijack(t, ns, "", "-j", "main/test", "-s", "unit", "--debug", "--", "sh", "-c", "echo in-debug; exit 6")
	if r.exitCode != 6 || r.stdout != "in-debug\n" {
		t.Errorf("--debug: exit %d, stdout %q, stderr %q", r.exitCode, r.stdout, r.stderr)
	}
	// The ephemeral container cannot be removed; its keeper must have ended.
	waitPod(t, ns, "dl", func(p *corev1.Pod) bool {
		for _, s := range p.Status.EphemeralContainerStatuses {
			if s.State.Terminated == nil {
				return false
			}
		}
		return len(p.Status.EphemeralContainerStatuses) == 1
	})
}

func TestHijackRBACDenied(t *testing.T) {
	ns := testCluster.Namespace(t)
	createPod(t, stepPod(ns, step{name: "unit", pipeline: "main", job: "test", build: "1", step: "unit"}), running)
	kubeconfig := userWithRole(t, ns, "hijack-denied",
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}})
	ctx := context.Background()

	userRun := func(args ...string) result {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		cmd := testCluster.Command(cctx, "kubectl", append([]string{"concourse", "hijack", "-n", ns}, args...)...)
		cmd.Env = append(cmd.Env, "KUBECONFIG="+kubeconfig) // the last one wins
		return runCmd(t, cmd, "")
	}
	// RBAC bindings take effect asynchronously; wait until the LIST is allowed.
	deadline := time.Now().Add(20 * time.Second)
	r := userRun("-j", "main/test", "-s", "unit", "--", "true")
	for strings.Contains(r.stderr, `"list" on "pods"`) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		r = userRun("-j", "main/test", "-s", "unit", "--", "true")
	}
	want := fmt.Sprintf(`permission denied: you need "create" on "pods/exec" in namespace %s`, ns)
	if r.exitCode != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("exit %d, stderr %q; want 1 and %q", r.exitCode, r.stderr, want)
	}
	r = userRun("-A", "-j", "main/test", "--", "true")
	if r.exitCode != 1 || !strings.Contains(r.stderr, `you need "list" on "pods" in every namespace`) {
		t.Errorf("-A: exit %d, stderr %q", r.exitCode, r.stderr)
	}
}

// waitNoDebugPods waits until no copy pod of hijack --debug is left.
func waitNoDebugPods(t *testing.T, ns string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pods, err := testCluster.Client.CoreV1().Pods(ns).List(context.Background(),
			metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=kubectl-concourse"})
		if err == nil && len(pods.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("debug pods left behind: %v %v", err, pods)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestHijackDebugInterruptedLeavesNothing(t *testing.T) {
	onEachNodeKind(t, testHijackDebugInterruptedLeavesNothing)
}

func testHijackDebugInterruptedLeavesNothing(t *testing.T, ns string) {
	createPod(t, stepPod(ns, step{name: "done", pipeline: "main", job: "test", build: "1", step: "unit",
		command: []string{"true"}}), finished)

	cmd := startUntil(t, "started\n", "kubectl", "concourse", "hijack", "-n", ns,
		"-j", "main/test", "-s", "unit", "--debug", "--", "sh", "-c", "echo started; sleep 60")
	interrupt(t, cmd)
	waitNoDebugPods(t, ns)
}

func TestHijackChooserOnTTY(t *testing.T) {
	ns := testCluster.Namespace(t)
	for _, b := range []string{"1", "2"} {
		createPod(t, stepPod(ns, step{name: "unit-" + b, pipeline: "main", job: "test", build: b, step: "unit",
			image: "bash", workingDir: "/tmp/build/b" + b}), running)
	}
	cmd := testCluster.Command(context.Background(), "kubectl", "concourse", "hijack", "-n", ns, "-j", "main/test", "-s", "unit")
	term, screen := startOnPTY(t, cmd)
	screen.waitFor(t, "2. build #2, step: unit, type: task, attempt: 1")
	screen.waitFor(t, "choose a container: ")
	fmt.Fprint(term, "2\n")
	fmt.Fprint(term, "pwd; exit 9\n")
	screen.waitFor(t, "/tmp/build/b2")
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 9 {
		t.Errorf("exit status = %v, want 9; screen:\n%s", err, screen.text())
	}
}

// TestHijackRestoresTerminal checks the local terminal after a TTY session
// ends normally and after SIGTERM: raw mode during, cooked mode after.
func TestHijackRestoresTerminal(t *testing.T) {
	ns := testCluster.Namespace(t)
	createPod(t, stepPod(ns, step{name: "tty", pipeline: "main", job: "test", build: "1", step: "unit", image: "bash"}), running)

	for _, end := range []string{"exit", "SIGTERM"} {
		t.Run(end, func(t *testing.T) {
			ptmx, tty, err := pty.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer ptmx.Close()
			defer tty.Close()
			if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 80}); err != nil {
				t.Fatal(err)
			}
			cmd := testCluster.Command(context.Background(), "kubectl", "concourse", "hijack", "-n", ns, "-j", "main/test", "-s", "unit")
			cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			screen := newScreen(ptmx)
			fmt.Fprint(ptmx, "echo ready-$((6*7))\n")
			screen.waitFor(t, "ready-42")
			if cooked(t, tty) {
				t.Fatal("the local terminal is not in raw mode during the session")
			}
			if end == "exit" {
				fmt.Fprint(ptmx, "exit 0\n")
			} else if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			waitExit(t, cmd, func() string { return "hijack did not end; screen:\n" + screen.text() })
			if !cooked(t, tty) {
				t.Error("the local terminal was left in raw mode")
			}
		})
	}
}

// cooked says whether the terminal echoes and edits lines, as a shell leaves it.
func cooked(t *testing.T, tty *os.File) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ECHO != 0 && tio.Lflag&unix.ICANON != 0
}

// TestHelperEndsWhenThePluginIsKilled: a SIGKILLed plugin cannot clean up;
// its debug container's keeper, no longer tied to it, ends by itself within
// the grace (a minute), so nothing stays running with the step's volumes.
func TestHelperEndsWhenThePluginIsKilled(t *testing.T) {
	onEachNodeKindWhileWaiting(t, testHelperEndsWhenThePluginIsKilled) // it mostly waits out the grace
}

func testHelperEndsWhenThePluginIsKilled(t *testing.T, ns string) {
	createPod(t, stepPod(ns, step{name: "dl", pipeline: "main", job: "test", build: "1", step: "unit", image: "distroless"}), running)
	cmd := startUntil(t, "started\n", "kubectl", "concourse", "hijack", "-n", ns,
		"-j", "main/test", "-s", "unit", "--debug", "--", "sh", "-c", "echo started; sleep 600")
	killed := time.Now()
	if err := cmd.Process.Kill(); err != nil { // kubectl execs the plugin in place
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := killed.Add(2 * time.Minute)
	for {
		pod, err := testCluster.Client.CoreV1().Pods(ns).Get(context.Background(), "dl", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s := pod.Status.EphemeralContainerStatuses; len(s) == 1 && s[0].State.Terminated != nil {
			t.Logf("the debug container ended %s after the plugin was killed", time.Since(killed).Round(time.Second))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the debug container still runs 2 minutes after the plugin was killed: %+v", pod.Status.EphemeralContainerStatuses)
		}
		time.Sleep(time.Second)
	}
}

// A command whose connection drops as a success (client-go hears an empty
// error stream so) never exits 0: one line says the connection was lost.
// Its own stderr still reaches the user byte for byte, without the exit
// report that tells the two apart.
func TestHijackSilentCutIsNotSuccess(t *testing.T) {
	ns := testCluster.Namespace(t) // the fault is the node agent's
	pod := stepPod(ns, step{name: "cut", pipeline: "main", job: "test", build: "1", step: "unit"})
	pod.Annotations[annotationCutAfter] = "64"
	pod.Annotations[annotationCutSilently] = "true"
	createPod(t, pod, running)

	r := hijack(t, ns, "", "-j", "main/test", "-s", "unit", "--", "sh", "-c", "echo to stderr >&2; yes line | head -n 100")
	if r.exitCode == 0 {
		t.Fatalf("a silently cut session exited 0; stdout %q, stderr %q", r.stdout, r.stderr)
	}
	if lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n"); r.exitCode != 1 || len(lines) != 2 ||
		lines[0] != "to stderr" || !strings.HasPrefix(lines[1], "error: ") || !strings.Contains(lines[1], "connection was lost") {
		t.Errorf("exit %d, stderr %q; want 1, the command's stderr, then one line saying the connection was lost", r.exitCode, r.stderr)
	}
	if len(r.stdout) > 64 || !strings.HasPrefix(strings.Repeat("line\n", 100), r.stdout) {
		t.Errorf("stdout %q: want at most the 64 bytes before the cut", r.stdout)
	}

	// Under the cut, a session that ends first keeps its status and its
	// stderr exactly, with no newline added.
	r = hijack(t, ns, "", "-j", "main/test", "-s", "unit", "--", "sh", "-c", "echo out; printf 'no newline' >&2; exit 3")
	if r.exitCode != 3 || r.stdout != "out\n" || r.stderr != "no newline" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 3, %q, %q", r.exitCode, r.stdout, r.stderr, "out\n", "no newline")
	}
}
