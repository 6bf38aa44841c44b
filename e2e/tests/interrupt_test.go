package tests

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Ctrl-C is how a user ends a command that follows or a session: the
// command stops and exits 130, as a shell reports SIGINT, with no error
// line (kubectl says nothing either).

// lockedBuffer is a bytes.Buffer that a process writes while a test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// interruptAfter starts `kubectl concourse args...`, waits until a line of
// its stdout contains want, interrupts it and returns its exit status,
// what its stderr held when it was interrupted, and what it held at the end.
func interruptAfter(t *testing.T, want string, args ...string) (code int, before, after string) {
	t.Helper()
	cmd := testCluster.Command(context.Background(), "kubectl", append([]string{"concourse"}, args...)...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	seen := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		found := false
		for sc.Scan() {
			if !found && strings.Contains(sc.Text(), want) {
				found = true
				seen <- true
			}
		}
		if !found {
			seen <- false
		}
	}()
	select {
	case ok := <-seen:
		if !ok {
			t.Fatalf("%s ended without printing %q; stderr %q", cmd, want, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not print %q within 60s; stderr %q", cmd, want, stderr.String())
	}
	time.Sleep(500 * time.Millisecond) // what it printed before the line has arrived
	before = stderr.String()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	code = waitExit(t, cmd, func() string { return cmd.String() + " did not end on SIGINT; stderr " + stderr.String() })
	return code, before, stderr.String()
}

func TestInterruptIsNotAnError(t *testing.T) {
	ns := testCluster.Namespace(t)
	createPod(t, stepPod(ns, step{name: "long", pipeline: "main", job: "test", build: "1", step: "unit",
		command: []string{"sh", "-c", "echo started; exec sleep 3600"}}), running)
	createPod(t, stepPod(ns, step{name: "done", pipeline: "main", job: "done", build: "1", step: "unit",
		command: []string{"true"}}), finished)

	for _, tt := range []struct {
		name string
		want string // a line of stdout to interrupt after
		args []string
	}{
		{"logs -f", "started", []string{"logs", "-n", ns, "-j", "main/test", "-f"}},
		{"watch", "started", []string{"watch", "-n", ns, "-j", "main/test"}},
		{"hijack --debug", "in the copy", []string{"hijack", "-n", ns, "-j", "main/done", "-s", "unit", "--debug",
			"--", "sh", "-c", "echo in the copy; sleep 60"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, before, after := interruptAfter(t, tt.want, tt.args...)
			if code != 130 || after != before {
				t.Errorf("exit %d, stderr after the interrupt %q; want 130 and nothing more than %q", code, strings.TrimPrefix(after, before), before)
			}
		})
	}
	waitNoDebugPods(t, ns)
}
