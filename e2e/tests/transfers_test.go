package tests

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Transfers that never lie: the destination is always a whole tree, the old
// or the new one, whatever runs at the same time or is interrupted.

const annotationThrottle = "testcluster.kubectl-concourse.dev/exec-bytes-per-second"

// treeOf writes files name -> content under dir.
func treeOf(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		mustWrite(t, filepath.Join(dir, name), []byte(content), 0o644)
	}
}

// remoteFiles lists the regular files under dir in the container, with
// their content, following a landed upload's symlink.
func remoteFiles(t *testing.T, ns, pod, dir string) map[string]string {
	t.Helper()
	out := kubectl(t, "exec", "-n", ns, pod, "--", "sh", "-c",
		`cd "$1"/ 2>/dev/null || exit 0; find . -type f | while IFS= read -r f; do printf '%s=%s\n' "${f#./}" "$(cat "$f")"; done`, "sh", dir)
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestTransfersConcurrentUploadsNeverNestOrMix(t *testing.T) {
	ns := testCluster.Namespace(t)
	createPod(t, artifactsPod(ns, "conc", "busybox", nil), running)
	a, b := map[string]string{}, map[string]string{}
	for i := 0; i < 20; i++ {
		a[fmt.Sprintf("a%02d", i)] = "from a"
		b[fmt.Sprintf("b%02d", i)] = "from b"
	}
	srcA, srcB := filepath.Join(t.TempDir(), "t"), filepath.Join(t.TempDir(), "t")
	treeOf(t, srcA, a)
	treeOf(t, srcB, b)
	for round := 0; round < 20; round++ {
		var wg sync.WaitGroup
		results := make([]result, 2)
		for i, src := range []string{srcA, srcB} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = concourse(t, "upload", ns, "conc", src, "/data")
			}()
		}
		wg.Wait()
		for i, r := range results {
			if r.exitCode != 0 {
				t.Fatalf("round %d: upload %d: exit %d: %s", round, i, r.exitCode, r.stderr)
			}
		}
		got := remoteFiles(t, ns, "conc", "/data/t")
		if !reflect.DeepEqual(got, a) && !reflect.DeepEqual(got, b) {
			t.Fatalf("round %d: /data/t is neither upload's tree: %v", round, got)
		}
	}
	if left := leftovers(t, ns, "conc", "/data"); len(left) > 0 {
		t.Errorf("left in the container: %q", left)
	}
}

func TestTransfersDestinationNeverMissing(t *testing.T) {
	ns := testCluster.Namespace(t)
	createPod(t, artifactsPod(ns, "reader", "busybox", nil), running)
	src := filepath.Join(t.TempDir(), "t")
	treeOf(t, src, map[string]string{"f": "x", "d/g": "y"})
	if r := concourse(t, "upload", ns, "reader", src, "/data"); r.exitCode != 0 {
		t.Fatalf("first upload: %s", r.stderr)
	}
	// A reader that looks for the destination as fast as it can until
	// told to stop, and reports every time it was missing.
	ctx, cancel := context.WithCancel(context.Background())
	reader := testCluster.Command(ctx, "kubectl", "exec", "-n", ns, "reader", "--", "sh", "-c",
		`n=0; m=0; while [ ! -e /data/stop ]; do n=$((n+1)); [ -e /data/t/f ] || m=$((m+1)); done; echo "$n $m"`)
	var out bytes.Buffer
	reader.Stdout = &out
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	defer cancel()
	for i := 0; i < 20; i++ {
		treeOf(t, src, map[string]string{"f": fmt.Sprint(i)})
		if r := concourse(t, "upload", ns, "reader", src, "/data"); r.exitCode != 0 {
			t.Fatalf("upload %d: %s", i, r.stderr)
		}
	}
	kubectl(t, "exec", "-n", ns, "reader", "--", "touch", "/data/stop")
	if err := reader.Wait(); err != nil {
		t.Fatalf("reader: %v", err)
	}
	var looks, missing int
	fmt.Sscan(out.String(), &looks, &missing)
	if looks == 0 || missing != 0 {
		t.Errorf("the reader looked %d times and found /data/t/f missing %d times", looks, missing)
	}
	if got := remoteFiles(t, ns, "reader", "/data/t"); got["f"] != "19" {
		t.Errorf("last upload did not land: %v", got)
	}
}

func TestTransfersSourceReplacedMidDownloadNeverLandsMixed(t *testing.T) {
	ns := testCluster.Namespace(t)
	// 3 MB through a 1 MB/s exec: the replacement happens mid-stream.
	createPod(t, artifactsPod(ns, "changing", "busybox", map[string]string{annotationThrottle: "1000000"}), running)
	gen := func(prefix string) string {
		return fmt.Sprintf(`mkdir -p /data/new && i=1; while [ $i -le 30 ]; do head -c 100000 /dev/zero | tr '\0' %s >/data/new/%s$i; i=$((i+1)); done`, prefix, prefix)
	}
	kubectl(t, "exec", "-n", ns, "changing", "--", "sh", "-c", gen("x")+" && mv /data/new /data/out")
	dest := t.TempDir()
	treeOf(t, filepath.Join(dest, "out"), map[string]string{"old": "old"})
	before := localTree(t, dest)

	replace := testCluster.Command(context.Background(), "kubectl", "exec", "-n", ns, "changing", "--", "sh", "-c",
		"sleep 1 && "+gen("y")+" && rm -f /data/out/x* && mv /data/new/* /data/out/")
	if err := replace.Start(); err != nil {
		t.Fatal(err)
	}
	r := concourse(t, "download", ns, "changing", "--compress", "none", "out", dest)
	if err := replace.Wait(); err != nil {
		t.Fatalf("replace: %v", err)
	}
	if r.exitCode != 0 {
		// Allowed: it says so, and the old destination stays.
		if !strings.Contains(r.stderr, "the source changed during the download") {
			t.Errorf("download failed without saying the source changed: %s", r.stderr)
		}
		if got := localTree(t, dest); !reflect.DeepEqual(got, before) {
			t.Errorf("a failed download changed the destination: %v", got)
		}
		return
	}
	names, _ := filepath.Glob(filepath.Join(dest, "out", "*"))
	var xs, ys int
	for _, n := range names {
		switch filepath.Base(n)[0] {
		case 'x':
			xs++
		case 'y':
			ys++
		default:
			t.Errorf("unexpected %s", n)
		}
	}
	if !(xs == 30 && ys == 0) && !(xs == 0 && ys == 30) {
		t.Errorf("landed %d x and %d y files: a tree that never existed (stderr: %s)", xs, ys, r.stderr)
	}
}

func TestTransfersInterruptsLeaveNothing(t *testing.T) {
	ns := testCluster.Namespace(t)
	createPod(t, artifactsPod(ns, "intr", "busybox", map[string]string{annotationThrottle: "2000000"}), running)
	kubectl(t, "exec", "-n", ns, "intr", "--", "sh", "-c", "mkdir -p /data/down && head -c 4000000 /dev/urandom >/data/down/big")
	src := filepath.Join(t.TempDir(), "up")
	big := make([]byte, 4_000_000)
	for i := range big {
		big[i] = byte(rand.IntN(256))
	}
	mustWrite(t, filepath.Join(src, "big"), big, 0o644)
	for i := 0; i < 10; i++ {
		local := t.TempDir()
		args := []string{"concourse", "upload", "-n", ns, "--pod", "intr", "-q", src, "/data"}
		if i%2 == 1 {
			args = []string{"concourse", "download", "-n", ns, "--pod", "intr", "-q", "/data/down", local}
		}
		cmd := testCluster.Command(context.Background(), "kubectl", args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(200+rand.IntN(1800)) * time.Millisecond)
		_ = cmd.Process.Signal(os.Interrupt) // kubectl execs the plugin in place
		err := cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); err != nil && code != 130 {
			t.Errorf("round %d (%s): exit %d after SIGINT, want 130 (or 0 when it had finished): %s", i, args[1], code, stderr.String())
		}
		if strings.Contains(stderr.String(), "context canceled") {
			t.Errorf("round %d: Ctrl-C reported as an error: %s", i, stderr.String())
		}
		if left := leftovers(t, ns, "intr", "/data"); len(left) > 0 {
			t.Errorf("round %d (%s): left in the container: %q", i, args[1], left)
		}
		entries, _ := os.ReadDir(local)
		for _, e := range entries {
			if e.Name() != "down" {
				t.Errorf("round %d: left locally: %s", i, e.Name())
			}
		}
	}
}

func TestTransfersKilledRunsAreCleanedByTheNext(t *testing.T) {
	// The faults are placed in the scripts' stream (the fallback's); the
	// agent's cuts are its own tests'.
	forceAgent(t, "off")
	ns := testCluster.Namespace(t)
	createPod(t, artifactsPod(ns, "killed", "busybox", map[string]string{annotationThrottle: "1000000"}), running)
	src := filepath.Join(t.TempDir(), "up")
	mustWrite(t, filepath.Join(src, "big"), bytes.Repeat([]byte("k"), 3_000_000), 0o644)
	cmd := testCluster.Command(context.Background(), "kubectl", "concourse", "upload", "-n", ns, "--pod", "killed", "-q", src, "/data")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if left := leftovers(t, ns, "killed", "/data"); len(left) == 0 {
		t.Fatal("a SIGKILLed upload left no staging: the test did not kill it mid-stream")
	}
	// The killed run's receiver ends once the stream it read is gone (the
	// throttled link drains what the API server had buffered first), but
	// its staging is fresh: it goes once nothing touched it for ten
	// minutes. Wait for the one, age the other.
	kubectl(t, "exec", "-n", ns, "killed", "--", "sh", "-c", `i=0
for f in /data/.kubectl-concourse/*/staging.*.pids; do
  [ -f "$f" ] || continue
  for p in $(cat "$f"); do while kill -0 "$p" 2>/dev/null && [ "$i" -lt 300 ]; do sleep 0.1; i=$((i+1)); done; done
done
find /data/.kubectl-concourse -mindepth 2 -exec touch -d '@0' {} +`)
	small := filepath.Join(t.TempDir(), "up")
	mustWrite(t, filepath.Join(small, "f"), []byte("small"), 0o644)
	if r := concourse(t, "upload", ns, "killed", small, "/data"); r.exitCode != 0 {
		t.Fatalf("next upload: %s", r.stderr)
	}
	if left := leftovers(t, ns, "killed", "/data"); len(left) > 0 {
		t.Errorf("the next upload left the killed run's staging: %q", left)
	}
}

func TestTransfersPermanentFailuresAreNotRetried(t *testing.T) {
	ns := testCluster.Namespace(t)
	createPod(t, artifactsPod(ns, "perm", "busybox", nil), running)
	src := filepath.Join(t.TempDir(), "src")
	mustWrite(t, filepath.Join(src, "f"), []byte("x"), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := testCluster.Command(ctx, "kubectl", "concourse", "upload", "-n", ns, "--pod", "perm", "-q", "--retries", "-1", src, "/proc")
	r := runCmd(t, cmd, "")
	if ctx.Err() != nil {
		t.Fatal("upload into /proc with --retries -1 was still retrying after a minute")
	}
	if r.exitCode != 1 || !strings.Contains(r.stderr, "/proc") || strings.Contains(r.stderr, "resuming") {
		t.Errorf("exit %d, stderr:\n%s\nwant one failure naming /proc, no retry", r.exitCode, r.stderr)
	}
}

func TestTransfersOddNamesPassVerification(t *testing.T) {
	ns := testCluster.Namespace(t)
	createPod(t, artifactsPod(ns, "odd", "busybox", nil), running)
	src := filepath.Join(t.TempDir(), "odd")
	treeOf(t, src, map[string]string{"new\nline": "1", "tab\there": "2", "back\\slash": "3", "d/-dash": "4", "sp ace": "5"})
	want := localTree(t, src)
	if r := concourse(t, "upload", ns, "odd", src, "/data"); r.exitCode != 0 || strings.Contains(r.stderr, "warning") {
		t.Fatalf("upload: exit %d: %s", r.exitCode, r.stderr)
	}
	back := t.TempDir()
	if r := concourse(t, "download", ns, "odd", "/data/odd", back); r.exitCode != 0 || strings.Contains(r.stderr, "warning") {
		t.Fatalf("download: exit %d: %s", r.exitCode, r.stderr)
	}
	if got := localTree(t, filepath.Join(back, "odd")); !reflect.DeepEqual(got, want) {
		t.Errorf("round trip: got %v, want %v", got, want)
	}
}

func TestTransfersSmallerPoints(t *testing.T) {
	ns := testCluster.Namespace(t)
	createPod(t, artifactsPod(ns, "small", "busybox", map[string]string{
		"testcluster.kubectl-concourse.dev/exec-cut-after-bytes": "300000",
		"testcluster.kubectl-concourse.dev/exec-cut-times":       "1",
	}), running)
	kubectl(t, "exec", "-n", ns, "small", "--", "sh", "-c",
		"mkdir -p /data/real/out /data/cut && ln -s real /data/link && head -c 1000000 /dev/urandom >/data/cut/f")

	t.Run("a cut says why, once, without client-go's log lines", func(t *testing.T) {
		r := concourse(t, "download", ns, "small", "--compress", "none", "/data/cut", t.TempDir())
		if r.exitCode != 0 || !strings.Contains(r.stderr, "(retry 1)") {
			t.Fatalf("exit %d: %s", r.exitCode, r.stderr)
		}
		for _, noise := range []string{"UnhandledError", "Unhandled Error", "<nil>", "Internal error occurred: Internal error occurred"} {
			if strings.Contains(r.stderr, noise) {
				t.Errorf("stderr has %q:\n%s", noise, r.stderr)
			}
		}
	})
	t.Run("upload into a symlink to a directory", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "through")
		mustWrite(t, filepath.Join(src, "f"), []byte("via link"), 0o644)
		if r := concourse(t, "upload", ns, "small", src, "/data/link"); r.exitCode != 0 {
			t.Fatalf("exit %d: %s", r.exitCode, r.stderr)
		}
		if got := remoteFiles(t, ns, "small", "/data/real/through"); got["f"] != "via link" {
			t.Errorf("landed %v", got)
		}
	})
	t.Run("a finished step's files come from its volumes, and nothing goes in", func(t *testing.T) {
		done := artifactsPod(ns, "done", "busybox", map[string]string{annotationKeepVolumes: "true"})
		done.Spec.Containers[0].Command = []string{"sh", "-c", "echo kept >/data/out"}
		done.Spec.RestartPolicy = corev1.RestartPolicyNever
		done = createPod(t, done, finished)
		dest := t.TempDir()
		_, flags := kubeletRoot(t, done)
		if r := concourse(t, "download", ns, "done", append(flags, "out", dest)...); r.exitCode != 0 {
			t.Fatalf("download: exit %d, stderr:\n%s", r.exitCode, r.stderr)
		}
		if b, err := os.ReadFile(filepath.Join(dest, "out")); err != nil || string(b) != "kept\n" {
			t.Errorf("downloaded %q, %v", b, err)
		}
		r := concourse(t, "upload", ns, "done", filepath.Join(dest, "out"), "/data")
		if r.exitCode != 1 || strings.Count(r.stderr, "error: ") != 1 || !strings.Contains(r.stderr, "nothing can be put into it") {
			t.Errorf("upload: exit %d, stderr:\n%s", r.exitCode, r.stderr)
		}
	})
}
