package nodeagent

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilexec "k8s.io/utils/exec"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/images"
)

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

// execFixture is a pod with one running container "main" whose rootfs is a
// copy of the busybox image; it needs root (chroot) and busybox-static.
func execFixture(t *testing.T, annotations map[string]string) *execSession {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("exec needs root for chroot")
	}
	if _, err := os.Stat(images.BusyboxBinary); err != nil {
		t.Skip("busybox-static not installed")
	}
	store := t.TempDir()
	pause := filepath.Join(t.TempDir(), "pause")
	if err := os.WriteFile(pause, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := images.Ensure(store, pause); err != nil {
		t.Fatal(err)
	}
	img, err := images.Lookup(store, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u", Annotations: annotations}}
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	if err := makeRootfs(img.Rootfs, rootfs, pod); err != nil {
		t.Fatal(err)
	}
	p := newPodRuntime(&Agent{cfg: Config{StateDir: t.TempDir()}}, pod)
	p.containers["main"] = &container{
		name: "main",
		proc: procSpec{rootfs: rootfs, env: []string{"PATH=/bin:/usr/bin", "GREETING=hi"}, dir: "/work"},
		run:  &containerRun{done: make(chan struct{})},
	}
	return &execSession{pod: p, podObj: pod}
}

func TestExecInContainer(t *testing.T) {
	s := execFixture(t, nil)
	tests := []struct {
		name     string
		argv     []string
		stdin    string
		wantOut  string
		wantErr  string
		wantCode int
		// wantFailure is part of the error of an exec that could not start.
		wantFailure string
	}{
		{name: "env and working dir", argv: []string{"sh", "-c", "echo $GREETING; pwd"}, wantOut: "hi\n/work\n"},
		{name: "stdin to EOF", argv: []string{"wc", "-c"}, stdin: "12345", wantOut: "5\n"},
		{name: "exit code", argv: []string{"sh", "-c", "echo err >&2; exit 3"}, wantErr: "err\n", wantCode: 3},
		// As with the real runtime: an error of the call, not exit 127.
		{name: "command not found", argv: []string{"nope"}, wantFailure: `unable to start container process: exec: "nope": executable file not found in $PATH`},
		{name: "path not found", argv: []string{"/no/such"}, wantFailure: `exec: "/no/such": no such file or directory`},
		{name: "killed by signal", argv: []string{"sh", "-c", "kill -9 $$"}, wantCode: 137},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := s.ExecInContainer(context.Background(), "", "", "main", tt.argv, strings.NewReader(tt.stdin),
				nopCloser{&out}, nopCloser{&errOut}, false, nil, 0)
			code := 0
			var exitErr utilexec.CodeExitError
			switch {
			case tt.wantFailure != "":
				if err == nil || errors.As(err, &exitErr) || !strings.Contains(err.Error(), tt.wantFailure) {
					t.Errorf("ExecInContainer: %v, want a failure with %q", err, tt.wantFailure)
				}
			case errors.As(err, &exitErr):
				code = exitErr.Code
			case err != nil:
				t.Fatalf("ExecInContainer: %v", err)
			}
			if code != tt.wantCode || out.String() != tt.wantOut || errOut.String() != tt.wantErr {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out.String(), errOut.String(), tt.wantCode, tt.wantOut, tt.wantErr)
			}
		})
	}
}

func TestExecCutAfterBytes(t *testing.T) {
	s := execFixture(t, map[string]string{AnnotationExecCutAfterBytes: "1000", AnnotationExecCutTimes: "1"})
	run := func() (int, error) {
		var out bytes.Buffer
		err := s.ExecInContainer(context.Background(), "", "", "main", []string{"head", "-c", "100000", "/dev/zero"}, nil,
			nopCloser{&out}, nil, false, nil, 0)
		return out.Len(), err
	}
	n, err := run()
	var exitErr utilexec.CodeExitError
	if n != 1000 || err == nil || errors.As(err, &exitErr) {
		t.Errorf("first session: %d bytes, error %v; want 1000 bytes and a transport error", n, err)
	}
	// exec-cut-times=1: the next session is spared.
	if n, err := run(); n != 100000 || err != nil {
		t.Errorf("second session: %d bytes, error %v; want 100000 and no error", n, err)
	}
}

func TestExecNeedsRunningContainer(t *testing.T) {
	s := execFixture(t, nil)
	close(s.pod.containers["main"].run.done)
	var out bytes.Buffer
	err := s.ExecInContainer(context.Background(), "", "", "main", []string{"true"}, nil, nopCloser{&out}, nil, false, nil, 0)
	if err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("exec in a stopped container: %v, want a not running error", err)
	}
}

func TestExecCutSilently(t *testing.T) {
	s := execFixture(t, map[string]string{AnnotationExecCutAfterBytes: "1000", AnnotationExecCutSilently: "true"})
	var out bytes.Buffer
	err := s.ExecInContainer(context.Background(), "", "", "main", []string{"head", "-c", "100000", "/dev/zero"}, nil,
		nopCloser{&out}, nil, false, nil, 0)
	if out.Len() != 1000 || err != nil {
		t.Errorf("silent stdout cut: %d bytes, error %v; want 1000 bytes and success", out.Len(), err)
	}

	s = execFixture(t, map[string]string{AnnotationExecCutStdinAfterBytes: "1000", AnnotationExecCutSilently: "true", AnnotationExecCutTimes: "1"})
	run := func() (string, error) {
		var out bytes.Buffer
		err := s.ExecInContainer(context.Background(), "", "", "main", []string{"wc", "-c"}, bytes.NewReader(make([]byte, 5000)),
			nopCloser{&out}, nil, false, nil, 0)
		return strings.TrimSpace(out.String()), err
	}
	if got, err := run(); got != "1000" || err != nil {
		t.Errorf("silent stdin cut: the process read %s bytes, error %v; want 1000 and success", got, err)
	}
	if got, err := run(); got != "5000" || err != nil {
		t.Errorf("second session: the process read %s bytes, error %v; want 5000 (exec-cut-times=1)", got, err)
	}
}

// goneWriter is a client that has gone away: every write fails.
type goneWriter struct{}

func (goneWriter) Write([]byte) (int, error) { return 0, errors.New("connection reset by peer") }
func (goneWriter) Close() error              { return nil }

// TestExecOutlivesItsClient: as with containerd, a process whose client
// went away runs to its end; only its output is lost.
func TestExecOutlivesItsClient(t *testing.T) {
	s := execFixture(t, nil)
	argv := []string{"sh", "-c", "echo lost; sleep 0.3; echo finished >/tmp/marker"}
	err := s.ExecInContainer(context.Background(), "", "", "main", argv, nil, goneWriter{}, goneWriter{}, false, nil, 0)
	if err != nil {
		t.Fatalf("ExecInContainer: %v", err)
	}
	marker, err := os.ReadFile(filepath.Join(s.pod.containers["main"].proc.rootfs, "tmp", "marker"))
	if err != nil || string(marker) != "finished\n" {
		t.Errorf("the process did not run to its end after its client went away: %q, %v", marker, err)
	}
}
