package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// result is what a command did.
type result struct {
	stdout, stderr string
	exitCode       int
}

// run runs bin/name (through the cluster's environment) with stdin, failing
// the test only when the command could not be started at all.
func run(t *testing.T, stdin string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := testCluster.Command(ctx, name, args...)
	return runCmd(t, cmd, stdin)
}

func runCmd(t *testing.T, cmd *exec.Cmd, stdin string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if stdin != "" {
		cmd.Stdin = bytes.NewBufferString(stdin)
	}
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.exitCode = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", cmd, err)
	}
	return r
}

// startUntil starts bin/name and returns once its stdout printed the line
// want, for tests that interrupt a command at a known point.
func startUntil(t *testing.T, want string, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd, next := startLines(t, name, args...)
	if got := next(); got+"\n" != want {
		t.Fatalf("%s printed %q first, want %q", cmd, got, want)
	}
	return cmd
}

// interrupt sends SIGINT to cmd (kubectl execs the plugin in place: the
// signal reaches the plugin) and returns its exit status, failing the test
// when it does not end within 30 seconds.
func interrupt(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	return waitExit(t, cmd, func() string { return fmt.Sprintf("%s did not end on SIGINT", cmd) })
}

// waitExit waits for cmd and returns its exit status; after 30 seconds it
// kills cmd and fails the test with what stuck says.
func waitExit(t *testing.T, cmd *exec.Cmd, stuck func() string) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal(stuck())
	}
	return cmd.ProcessState.ExitCode()
}

// startLines starts bin/name and returns a function that gives its next
// line of stdout, failing the test after 30 seconds without one.
func startLines(t *testing.T, name string, args ...string) (*exec.Cmd, func() string) {
	t.Helper()
	cmd := testCluster.Command(context.Background(), name, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return cmd, func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s: stdout ended", cmd)
			}
			return l
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no line within 30s", cmd)
			return ""
		}
	}
}

// kubectl runs bin/kubectl and fails the test unless it exits 0.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	r := run(t, "", "kubectl", args...)
	if r.exitCode != 0 {
		t.Fatalf("kubectl %v: exit %d\nstdout: %s\nstderr: %s", args, r.exitCode, r.stdout, r.stderr)
	}
	return r.stdout
}

// createPod creates pod and waits until cond holds for it.
func createPod(t *testing.T, pod *corev1.Pod, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	created, err := testCluster.Client.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s: %v", pod.Name, err)
	}
	return waitPod(t, created.Namespace, created.Name, cond)
}

// waitPod polls the pod until cond holds, for at most a minute.
func waitPod(t *testing.T, namespace, name string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		pod, err := testCluster.Client.CoreV1().Pods(namespace).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && cond(pod) {
			return pod
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s/%s: condition not met within a minute; last: %v %+v", namespace, name, err, podStatus(pod))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitLog polls the container's log until it holds want, for at most a
// minute. A real node may report a container that printed and exited at
// once as terminated before its runtime has written the last lines to the
// log file (a cold CI run's watch once read an empty log of
// "echo broken; exit 3" on the kubelet): a test of what a command shows of
// a finished step waits for the node to have it first.
func waitLog(t *testing.T, namespace, pod, container, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		b, err := testCluster.Client.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{Container: container}).DoRaw(context.Background())
		if err == nil && strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log of %s/%s %s: no %q within a minute; last: %v %q", namespace, pod, container, want, err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func podStatus(pod *corev1.Pod) any {
	if pod == nil {
		return nil
	}
	return pod.Status
}

// running holds once every container of the pod runs.
func running(pod *corev1.Pod) bool {
	if pod.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, s := range pod.Status.ContainerStatuses {
		if s.State.Running == nil {
			return false
		}
	}
	return true
}

// finished holds once the pod has Succeeded or Failed.
func finished(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// sleeper is a busybox pod whose one container sleeps until deleted.
func sleeper(namespace, name string) *corev1.Pod {
	var grace int64 = 1
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "main", Image: "busybox", Command: []string{"sleep", "3600"},
			}},
		},
	}
}

// screen accumulates what a pty shows.
type screen struct {
	mu  sync.Mutex
	buf strings.Builder
}

func newScreen(r io.Reader) *screen {
	s := &screen{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := r.Read(b)
			s.mu.Lock()
			s.buf.Write(b[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return s
}

func (s *screen) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *screen) contains(sub string) bool { return strings.Contains(s.text(), sub) }

func (s *screen) waitFor(t *testing.T, sub string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !s.contains(sub) {
		if time.Now().After(deadline) {
			t.Fatalf("screen never showed %q:\n%s", sub, s.text())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startOnPTY starts cmd on a new 24x80 pty, closed when the test ends, and
// records what the pty shows.
func startOnPTY(t *testing.T, cmd *exec.Cmd) (*os.File, *screen) {
	t.Helper()
	term, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Close() })
	return term, newScreen(term)
}

// resizeTo resizes the pty and waits until `stty size`, typed into the remote
// shell, reports the new size: the resize travels kubectl (or the plugin) →
// API server → node agent asynchronously.
func resizeTo(t *testing.T, term *os.File, s *screen, rows, cols uint16) {
	t.Helper()
	if err := pty.Setsize(term, &pty.Winsize{Rows: rows, Cols: cols}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d %d", rows, cols)
	deadline := time.Now().Add(20 * time.Second)
	for !s.contains(want) {
		if time.Now().After(deadline) {
			t.Fatalf("terminal size never became %s; screen:\n%s", want, s.text())
		}
		fmt.Fprint(term, "stty size\n")
		time.Sleep(300 * time.Millisecond)
	}
}

// userWithRole makes a user whose only rights are rules in ns (a Role and
// its binding) and returns its kubeconfig, once the first rule's first
// verb on its first resource is granted: RBAC takes effect asynchronously.
func userWithRole(t *testing.T, ns, user string, rules ...rbacv1.PolicyRule) string {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: ns}, Rules: rules}
	if _, err := testCluster.Client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: user},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}}}
	if _, err := testCluster.Client.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := testCluster.UserKubeconfig(user)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := run(t, "", "kubectl", "--kubeconfig", kubeconfig, "-n", ns, "auth", "can-i", rules[0].Verbs[0], rules[0].Resources[0])
		if r.exitCode == 0 {
			return kubeconfig
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Role of %s never took effect: %s", user, r.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
