package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// writeTask writes a task file into a fresh directory and returns its path.
func writeTask(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "task.yml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// execute runs `kubectl concourse execute -n ns ARGS...`.
func execute(t *testing.T, ns string, args ...string) result {
	t.Helper()
	return run(t, "", "kubectl", append([]string{"concourse", "execute", "-n", ns}, args...)...)
}

// waitNothingLeft waits until the namespace holds no pod or Secret that
// execute created.
func waitNothingLeft(t *testing.T, ns string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	sel := metav1.ListOptions{LabelSelector: "kubectl-concourse.dev/created-by=execute"}
	for {
		pods, err1 := testCluster.Client.CoreV1().Pods(ns).List(context.Background(), sel)
		secrets, err2 := testCluster.Client.CoreV1().Secrets(ns).List(context.Background(), sel)
		if err1 == nil && err2 == nil && len(pods.Items) == 0 && len(secrets.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("left behind: %d pods, %d secrets (%v %v)", len(pods.Items), len(secrets.Items), err1, err2)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// gitRepo makes a work tree with a tracked file, an untracked one and an
// ignored one.
func gitRepo(t *testing.T) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "repo")
	mustWrite(t, filepath.Join(repo, ".gitignore"), []byte("*.log\n"), 0o644)
	mustWrite(t, filepath.Join(repo, "main.go"), []byte("package main\n"), 0o644)
	mustWrite(t, filepath.Join(repo, "new.txt"), []byte("untracked\n"), 0o644)
	mustWrite(t, filepath.Join(repo, "debug.log"), []byte("ignored\n"), 0o644)
	for _, args := range [][]string{{"init", "-q"}, {"add", ".gitignore", "main.go"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	return repo
}

const secretValue = "hunter2-is-not-a-password"

// secretHash is the first 16 hex digits of secretValue's sha256: the task
// compares its param with it, so that the value itself is nowhere but in the
// task file's params.
var secretHash = func() string { s := sha256.Sum256([]byte(secretValue)); return hex.EncodeToString(s[:])[:16] }()

func TestExecuteTaskLikeFly(t *testing.T) {
	onEachNodeKind(t, testExecuteTaskLikeFly)
}

func testExecuteTaskLikeFly(t *testing.T, ns string) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	repo := gitRepo(t)
	extra := filepath.Join(t.TempDir(), "extra")
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	mustWrite(t, filepath.Join(extra, "data.bin"), payload, 0o644)
	task := writeTask(t, `platform: linux
image_resource: {type: registry-image, source: {repository: busybox}}
params:
  TOKEN: `+secretValue+`
inputs:
- name: repo
- name: extra
  path: deps/extra
outputs:
- name: out
run:
  path: sh
  args:
  - -c
  - |
    echo early
    sleep 4
    ls -A repo >out/listing
    cp deps/extra/data.bin out/
    [ "$(printf %s "$TOKEN" | sha256sum | cut -c1-16)" = "`+secretHash+`" ] && echo params-reached-the-task
    exit 5
`)
	out := filepath.Join(t.TempDir(), "got")
	cmd := testCluster.Command(context.Background(), "kubectl", "concourse", "execute", "-n", ns, "-c", task,
		"-i", "repo="+repo, "-i", "extra="+extra, "-o", "out="+out)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	var log []string
	var earlyAt time.Time
	for lines.Scan() {
		log = append(log, lines.Text())
		if lines.Text() == "early" {
			earlyAt = time.Now()
			// While it runs: hijack with no target flags enters it (the
			// most recent one-off build), in its working directory.
			r := run(t, "", "kubectl", "concourse", "hijack", "-n", ns, "--", "sh", "-c", "pwd; ls")
			if r.exitCode != 0 || !strings.HasPrefix(r.stdout, "/tmp/build/b1dda4c3\n") {
				t.Errorf("hijack into the running one-off build: exit %d, stdout %q, stderr %q", r.exitCode, r.stdout, r.stderr)
			}
			// The params' values are in no pod spec and no event.
			objs := kubectl(t, "get", "pod,events", "-n", ns, "-o", "yaml")
			if strings.Contains(objs, secretValue) {
				t.Errorf("a param's value shows in kubectl get pod,events -o yaml")
			}
		}
	}
	err = cmd.Wait()
	ended := time.Now()
	if earlyAt.IsZero() || ended.Sub(earlyAt) < 2*time.Second {
		t.Errorf("the log was not live: 'early' arrived %s before the end (log %q)", ended.Sub(earlyAt), log)
	}
	if code := cmd.ProcessState.ExitCode(); code != 5 {
		t.Errorf("exit %d (%v), want the task's 5; stderr:\n%s", code, err, stderr.String())
	}
	joined := strings.Join(log, "\n")
	for _, want := range []string{"executing build ", "initializing", "running sh -c", "params-reached-the-task", "failed"} {
		if !strings.Contains(joined, want) {
			t.Errorf("output lacks %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined+stderr.String(), secretValue) {
		t.Errorf("a param's value shows in the plugin's output")
	}
	listing, _ := os.ReadFile(filepath.Join(out, "listing"))
	if got := strings.Fields(string(listing)); strings.Join(got, " ") != ".gitignore main.go new.txt" {
		t.Errorf("the task saw %v in its git input, want fly's selection (no ignored files, no .git)", got)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "data.bin")); !bytes.Equal(got, payload) {
		t.Errorf("the output does not hold the bytes the task wrote (%d bytes)", len(got))
	}
	waitNothingLeft(t, ns)
}

func TestExecuteShellLessImage(t *testing.T) {
	onEachNodeKind(t, testExecuteShellLessImage)
}

func testExecuteShellLessImage(t *testing.T, ns string) {
	in := filepath.Join(t.TempDir(), "in")
	mustWrite(t, filepath.Join(in, "f"), []byte("through a distroless task\n"), 0o644)
	task := writeTask(t, `platform: linux
inputs: [{name: in}]
outputs: [{name: out}]
run: {path: /pause, args: [echo, hello-from-pause, cp, in/f, out/f, exit, "3"]}
`)
	out := filepath.Join(t.TempDir(), "out")
	r := execute(t, ns, "-c", task, "--image", "distroless", "-i", "in="+in, "-o", "out="+out)
	if r.exitCode != 3 || !strings.Contains(r.stdout, "hello-from-pause") {
		t.Errorf("exit %d, stdout %q, stderr %q", r.exitCode, r.stdout, r.stderr)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "f")); string(got) != "through a distroless task\n" {
		t.Errorf("output %q", got)
	}
	waitNothingLeft(t, ns)
}

func TestExecuteMistakesCreateNothing(t *testing.T) {
	ns := testCluster.Namespace(t)
	dir := t.TempDir()
	good := writeTask(t, "platform: linux\nimage_resource: {type: registry-image, source: {repository: busybox}}\ninputs: [{name: src}]\noutputs: [{name: out}]\nrun: {path: 'true'}\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown keys", []string{"-c", writeTask(t, "platform: linux\nouputs: []\nrun: {path: 'true'}\n"), "--image", "busybox"}, "unknown fields: ouputs"},
		{"missing required input", []string{"-c", good}, "missing required input `src`"},
		{"unknown -o", []string{"-c", good, "-i", "src=" + dir, "-o", "nope=./x"}, "unknown output 'nope'"},
		{"bad -i", []string{"-c", good, "-i", "src=" + filepath.Join(dir, "missing")}, "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := execute(t, ns, tt.args...)
			if r.exitCode != 1 || !strings.Contains(r.stderr, tt.want) || strings.Count(r.stderr, "error: ") != 1 {
				t.Errorf("exit %d, stderr:\n%s\nwant one error with %q", r.exitCode, r.stderr, tt.want)
			}
		})
	}
	pods, _ := testCluster.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if len(pods.Items) != 0 {
		t.Errorf("mistakes created %d pods", len(pods.Items))
	}
}

func TestExecuteUnschedulableSaysWhy(t *testing.T) {
	ns := testCluster.Namespace(t)
	tests := []struct {
		name, platform string
		args           []string
		want           string
	}{
		{"platform", "plan9", nil, "no node runs platform plan9"},
		{"tag", "linux", []string{"--tag", "gpu"}, "no node has tag gpu"},
		{"image", "linux", []string{"--image", "no-such-image:1"}, "no-such-image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := writeTask(t, "platform: "+tt.platform+"\nrun: {path: 'true'}\n")
			args := append([]string{"-c", task, "--image", "busybox", "--pending-timeout", "5s"}, tt.args...)
			r := execute(t, ns, args...)
			if r.exitCode != 2 || !strings.Contains(r.stderr, tt.want) || !strings.Contains(r.stdout, "errored") {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant 2 (errored) and %q", r.exitCode, r.stdout, r.stderr, tt.want)
			}
			waitNothingLeft(t, ns)
		})
	}
}

func TestExecuteTimeoutIsKept(t *testing.T) {
	onEachNodeKind(t, func(t *testing.T, ns string) {
		task := writeTask(t, "platform: linux\nrun: {path: sh, args: [-c, 'echo started; sleep 120']}\n")
		start := time.Now()
		r := execute(t, ns, "-c", task, "--image", "busybox", "--timeout", "8s")
		if r.exitCode != 1 || !strings.Contains(r.stderr, "the task ran out of time (--timeout 8s)") || !strings.Contains(r.stdout, "failed") {
			t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant 1 (failed) and the timeout", r.exitCode, r.stdout, r.stderr)
		}
		if took := time.Since(start); took > 60*time.Second {
			t.Errorf("a task with --timeout 8s ended after %s", took)
		}
		waitNothingLeft(t, ns)
	})
}

func TestExecuteStartErrorIsSaidAsItself(t *testing.T) {
	onEachNodeKind(t, func(t *testing.T, ns string) {
		task := writeTask(t, "platform: linux\nrun: {path: ./nope.sh}\n")
		r := execute(t, ns, "-c", task, "--image", "busybox", "--pending-timeout", "60s")
		if r.exitCode != 2 || !strings.Contains(r.stderr, "the task could not start") || !strings.Contains(r.stderr, "nope.sh") || !strings.Contains(r.stdout, "errored") {
			t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant 2 (errored) and the start error", r.exitCode, r.stdout, r.stderr)
		}
		waitNothingLeft(t, ns)
	})
}

// An image the registry does not have ends the build at the pull's first
// answer, in one line, not after --pending-timeout.
func TestExecuteMissingImageFailsFast(t *testing.T) {
	onEachNodeKind(t, func(t *testing.T, ns string) {
		task := writeTask(t, "platform: linux\nrun: {path: \"true\"}\n")
		start := time.Now()
		r := execute(t, ns, "-c", task, "--image", "no-such-image:1", "--pending-timeout", "5m")
		if r.exitCode != 2 || !strings.Contains(r.stderr, "ErrImagePull") || !strings.Contains(r.stdout, "errored") {
			t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant 2 (errored) and the pull's failure", r.exitCode, r.stdout, r.stderr)
		}
		if lines := strings.Count(strings.TrimSpace(r.stderr), "\n") + 1; lines != 1 {
			t.Errorf("stderr has %d lines, want one:\n%s", lines, r.stderr)
		}
		if took := time.Since(start); took > 60*time.Second {
			t.Errorf("a missing image ended the build after %s", took)
		}
		waitNothingLeft(t, ns)
	})
}

func TestExecuteOutputsKeepSymlinksAndFollowTheUmask(t *testing.T) {
	onEachNodeKind(t, func(t *testing.T, ns string) {
		// Through the agent and through the scripts.
		for _, agent := range []string{"on", "off"} {
			t.Run("agent "+agent, func(t *testing.T) {
				forceAgent(t, agent)
				testExecuteOutputsKeepSymlinksAndFollowTheUmask(t, ns)
			})
		}
	})
}

func testExecuteOutputsKeepSymlinksAndFollowTheUmask(t *testing.T, ns string) {
	task := writeTask(t, "platform: linux\noutputs: [{name: out}]\nrun: {path: sh, args: [-c, 'echo hi >out/f; ln -s /etc/passwd out/abs; ln -s ../../x out/up']}\n")
	out := filepath.Join(t.TempDir(), "out")
	r := execute(t, ns, "-c", task, "--image", "busybox", "-o", "out="+out)
	if r.exitCode != 0 {
		t.Fatalf("exit %d: %s %s", r.exitCode, r.stdout, r.stderr)
	}
	for link, want := range map[string]string{"abs": "/etc/passwd", "up": "../../x"} {
		if got, err := os.Readlink(filepath.Join(out, link)); err != nil || got != want {
			t.Errorf("out/%s -> %q (%v), want a symlink to %q", link, got, err, want)
		}
	}
	umask := syscall.Umask(0)
	syscall.Umask(umask)
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != fs.FileMode(0o777&^umask) {
		t.Errorf("the output's directory: %v %v, want mode %v (the umask's)", fi.Mode(), err, fs.FileMode(0o777&^umask))
	}
	waitNothingLeft(t, ns)
}

func TestExecuteCtrlCAtEachPhaseLeavesNothing(t *testing.T) {
	onEachNodeKind(t, testExecuteCtrlCAtEachPhaseLeavesNothing)
}

func testExecuteCtrlCAtEachPhaseLeavesNothing(t *testing.T, ns string) {
	big := bigInput(t, 64)
	phases := []struct {
		name  string
		task  string
		args  []string
		until string // the stdout line after which to interrupt
		delay time.Duration
	}{
		{"pending", "platform: linux\ncontainer_limits: {memory: 1000000GB}\nrun: {path: 'true'}\n", nil, "executing build", time.Second},
		{"uploading", "platform: linux\ninputs: [{name: big}]\nrun: {path: 'true'}\n", []string{"-i", "big=" + big}, "executing build", 300 * time.Millisecond},
		{"running", "platform: linux\nrun: {path: sh, args: [-c, 'echo started; sleep 60']}\n", nil, "started", 0},
		{"downloading", "platform: linux\noutputs: [{name: out}]\nrun: {path: sh, args: [-c, 'head -c 64000000 /dev/urandom >out/blob; echo written']}\n",
			[]string{"-o", "out=" + filepath.Join(t.TempDir(), "out")}, "written", 200 * time.Millisecond},
	}
	for _, ph := range phases {
		t.Run(ph.name, func(t *testing.T) {
			args := append([]string{"concourse", "execute", "-n", ns, "-c", writeTask(t, ph.task), "--image", "busybox"}, ph.args...)
			cmd := testCluster.Command(context.Background(), "kubectl", args...)
			stdout, _ := cmd.StdoutPipe()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(stdout)
			for lines.Scan() && !strings.HasPrefix(lines.Text(), ph.until) {
			}
			time.Sleep(ph.delay)
			_ = cmd.Process.Signal(os.Interrupt)
			go io.Copy(io.Discard, stdout)
			_ = cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != 3 || !strings.Contains(stderr.String(), "aborting...") {
				t.Errorf("exit %d, stderr:\n%s\nwant 3 after aborting...", code, stderr.String())
			}
			// The plugin waited until they were gone: nothing is left now.
			sel := metav1.ListOptions{LabelSelector: "kubectl-concourse.dev/created-by=execute"}
			pods, _ := testCluster.Client.CoreV1().Pods(ns).List(context.Background(), sel)
			secrets, _ := testCluster.Client.CoreV1().Secrets(ns).List(context.Background(), sel)
			if len(pods.Items)+len(secrets.Items) != 0 {
				t.Errorf("left after Ctrl-C: %d pods, %d secrets", len(pods.Items), len(secrets.Items))
			}
		})
	}
}

// bigInput makes an input directory holding one random file of mib MiB.
func bigInput(t *testing.T, mib int) string {
	t.Helper()
	big := filepath.Join(t.TempDir(), "big")
	data := make([]byte, mib<<20)
	rand.Read(data)
	mustWrite(t, filepath.Join(big, "blob"), data, 0o644)
	return big
}

// startUntilPrefix starts cmd and returns once its stdout has printed a line
// that begins with prefix; the rest of stdout is discarded.
func startUntilPrefix(t *testing.T, cmd *exec.Cmd, prefix string) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	for lines.Scan() && !strings.HasPrefix(lines.Text(), prefix) {
	}
	go io.Copy(io.Discard, stdout)
}

func TestExecuteNeverRunsAHalfUploadedTask(t *testing.T) {
	onEachNodeKind(t, testExecuteNeverRunsAHalfUploadedTask)
}

// Two Ctrl-C a millisecond apart while an input uploads: the plugin exits at
// once, and the pod it may leave can only fail: its task never starts.
func testExecuteNeverRunsAHalfUploadedTask(t *testing.T, ns string) {
	big := bigInput(t, 128)
	task := writeTask(t, "platform: linux\ninputs: [{name: big}]\nrun: {path: 'true'}\n")
	for _, delay := range []time.Duration{200 * time.Millisecond, 500 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			// Every state the build's pods go through, from before the plugin starts.
			sel := metav1.ListOptions{LabelSelector: "kubectl-concourse.dev/created-by=execute"}
			w, err := testCluster.Client.CoreV1().Pods(ns).Watch(ctx, sel)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			cmd := testCluster.Command(ctx, "kubectl", "concourse", "execute", "-n", ns, "-c", task, "--image", "busybox", "-i", "big="+big)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			startUntilPrefix(t, cmd, "executing build")
			time.Sleep(delay)
			_ = cmd.Process.Signal(os.Interrupt)
			time.Sleep(time.Millisecond)
			_ = cmd.Process.Signal(os.Interrupt)
			_ = cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != 2 && code != 3 {
				t.Errorf("exit %d after two Ctrl-C, want 2 (or 3 had the abort ended first); stderr:\n%s", code, stderr.String())
			}
			// Follow the pod until it is gone or has ended: its task must never start.
			for {
				select {
				case ev, ok := <-w.ResultChan():
					if !ok {
						t.Fatal("the watch ended before the pod did")
					}
					pod, ok := ev.Object.(*corev1.Pod)
					if !ok {
						continue
					}
					for _, c := range pod.Status.ContainerStatuses {
						if c.Name == "task" && (c.State.Running != nil || c.State.Terminated != nil) {
							t.Fatalf("the task ran on a partial input: %+v (plugin stderr:\n%s)", c.State, stderr.String())
						}
					}
					if ev.Type == watch.Deleted || pod.Status.Phase == corev1.PodFailed {
						if pod.Status.Phase == corev1.PodSucceeded {
							t.Fatalf("the pod succeeded")
						}
						waitNothingLeftAfterGC(t, ns)
						return
					}
				case <-ctx.Done():
					t.Fatal("the pod neither ended nor went within 3 minutes")
				}
			}
		})
	}
}

// waitNothingLeftAfterGC runs gc with its default age, which removes a
// build whose plugin is gone at once, and waits until nothing is left.
func waitNothingLeftAfterGC(t *testing.T, ns string) {
	t.Helper()
	if r := run(t, "", "kubectl", "concourse", "gc", "-n", ns); r.exitCode != 0 {
		t.Fatalf("gc: exit %d: %s", r.exitCode, r.stderr)
	}
	waitNothingLeft(t, ns)
}

func TestExecuteKilledPluginsPodEndsAndGCRemovesIt(t *testing.T) {
	onEachNodeKindWhileWaiting(t, testExecuteKilledPluginsPodEndsAndGCRemovesIt)
}

// A plugin killed while it uploads: the inputs keeper gives up, the pod
// fails without running the task, and gc recognises it as an orphan at
// once, not after --older-than.
func testExecuteKilledPluginsPodEndsAndGCRemovesIt(t *testing.T, ns string) {
	big := bigInput(t, 64)
	task := writeTask(t, "platform: linux\ninputs: [{name: big}]\nrun: {path: 'true'}\n")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := testCluster.Command(ctx, "kubectl", "concourse", "execute", "-n", ns, "-c", task, "--image", "busybox", "-i", "big="+big)
	startUntilPrefix(t, cmd, "executing build")
	time.Sleep(300 * time.Millisecond)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	sel := metav1.ListOptions{LabelSelector: "kubectl-concourse.dev/created-by=execute"}
	for {
		pods, err := testCluster.Client.CoreV1().Pods(ns).List(ctx, sel)
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 1 {
			t.Fatalf("%d pods, want the killed plugin's one", len(pods.Items))
		}
		if phase := pods.Items[0].Status.Phase; phase == corev1.PodSucceeded {
			t.Fatal("the pod of a killed upload succeeded")
		} else if phase == corev1.PodFailed {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the pod of a killed plugin did not end by itself")
		case <-time.After(time.Second):
		}
	}
	waitNothingLeftAfterGC(t, ns)
}

func TestGCRemovesAbandonedOneOffBuilds(t *testing.T) {
	ns := testCluster.Namespace(t)
	task := writeTask(t, "platform: linux\nparams: {A: b}\nrun: {path: sh, args: [-c, 'sleep 30']}\n")
	if r := execute(t, ns, "-c", task, "--image", "busybox", "-b"); r.exitCode != 0 || !strings.Contains(r.stdout, "kubectl concourse watch") {
		t.Fatalf("execute -b: exit %d: %s %s", r.exitCode, r.stdout, r.stderr)
	}
	r := run(t, "", "kubectl", "concourse", "gc", "-n", ns, "--older-than", "0", "--dry-run")
	if r.exitCode != 0 || !strings.Contains(r.stdout, "pod/one-off-") || !strings.Contains(r.stdout, "secret/one-off-") {
		t.Fatalf("gc --dry-run: exit %d: %s %s", r.exitCode, r.stdout, r.stderr)
	}
	if r := run(t, "", "kubectl", "concourse", "gc", "-n", ns); r.exitCode != 0 || strings.Contains(r.stdout, "deleted") {
		t.Errorf("gc removed a build younger than its --older-than: %s", r.stdout)
	}
	if r := run(t, "", "kubectl", "concourse", "gc", "-n", ns, "--older-than", "0"); r.exitCode != 0 {
		t.Fatalf("gc: exit %d: %s", r.exitCode, r.stderr)
	}
	waitNothingLeft(t, ns)
}

// executeOnlyRules are the least a user needs to execute a task without
// inputs' caches or params: its pod, exec into it, its log.
var executeOnlyRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create", "get", "delete"}},
	{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create", "get"}},
	{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
}

func TestExecuteWithoutSecretsRightsLeavesNothing(t *testing.T) {
	ns := testCluster.Namespace(t)
	kubeconfig := userWithRole(t, ns, "execute-no-secrets", executeOnlyRules...)
	ctx := context.Background()
	task := writeTask(t, "platform: linux\nparams: {A: b}\nrun: {path: 'true'}\n")
	var r result
	deadline := time.Now().Add(20 * time.Second) // bindings take effect asynchronously
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		cmd := testCluster.Command(cctx, "kubectl", "concourse", "execute", "-n", ns, "-c", task, "--image", "busybox")
		cmd.Env = append(cmd.Env, "KUBECONFIG="+kubeconfig)
		r = runCmd(t, cmd, "")
		cancel()
		if !strings.Contains(r.stderr, `"create" on "pods"`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	want := `permission denied: you need "create" on "secrets" in namespace ` + ns
	if r.exitCode != 1 || !strings.Contains(r.stderr, want) || strings.Count(r.stderr, "error: ") != 1 {
		t.Errorf("exit %d, stderr:\n%s\nwant 1 and %q", r.exitCode, r.stderr, want)
	}
	waitNothingLeft(t, ns)
}
