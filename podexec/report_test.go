package podexec

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
)

// chunkedExecutor writes stderr in the pieces given, as a stream delivers
// it, and returns err.
type chunkedExecutor struct {
	stderr []string
	err    error
}

func (e chunkedExecutor) Exec(_ context.Context, _ Request, s Streams, _ remotecommand.TerminalSizeQueue) error {
	for _, p := range e.stderr {
		_, _ = io.WriteString(s.ErrOut, p)
	}
	return e.err
}

// The command's own stderr reaches the user byte for byte, however the
// stream cuts it, without the report; the report decides the outcome only
// when the stream itself says success.
func TestExecReported(t *testing.T) {
	exit := func(n int) error { return utilexec.CodeExitError{Err: errors.New("command terminated"), Code: n} }
	tests := []struct {
		name       string
		stderr     []string
		err        error
		wantStderr string
		wantCode   int   // the exit status in the error, when it is one
		wantErr    error // errors.Is
	}{
		{"success", []string{"warn\n" + ExitReport(0)}, nil, "warn\n", 0, nil},
		{"no trailing newline is kept so", []string{"warn" + ExitReport(0)}, nil, "warn", 0, nil},
		{"nothing said", []string{ExitReport(0)}, nil, "", 0, nil},
		// The report is one write in the container, never cut after its
		// first byte (lineEndQuiet), but frames may cut it after that.
		{"report cut into frames", []string{"a\n", "\n", "\nkubectl-con", "course-exit", " 0", "\n"}, nil, "a\n\n", 0, nil},
		{"the stream's own status wins", []string{"boom\n" + ExitReport(7)}, exit(7), "boom\n", 7, nil},
		{"a reported failure whose status was lost", []string{"boom" + ExitReport(3)}, nil, "boom", 3, nil},
		{"cut silently", []string{"half a li"}, nil, "half a li", 0, ErrExitLost},
		{"cut inside the report", []string{"out\n", "\nkubectl-concourse-ex"}, nil, "out\n\nkubectl-concourse-ex", 0, ErrExitLost},
		{"a report mid-stream is output", []string{ExitReport(0) + "more\n"}, nil, ExitReport(0) + "more\n", 0, ErrExitLost},
		{"a look-alike is output", []string{"\nkubectl-concourse-exit 1234\n", ExitReport(0)}, nil, "\nkubectl-concourse-exit 1234\n", 0, nil},
		{"a broken stream keeps its error", []string{"x"}, errors.New("connection reset"), "x", -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errOut bytes.Buffer
			err := ExecReported(context.Background(), chunkedExecutor{stderr: tt.stderr, err: tt.err},
				Request{Command: ReportingCommand("sh", ":")}, Streams{ErrOut: &errOut}, nil)
			if errOut.String() != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", errOut.String(), tt.wantStderr)
			}
			var st utilexec.ExitError
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("ExecReported() = %v, want %v", err, tt.wantErr)
			case tt.wantCode > 0 && (!errors.As(err, &st) || st.ExitStatus() != tt.wantCode):
				t.Errorf("ExecReported() = %v, want exit status %d", err, tt.wantCode)
			case tt.wantCode == 0 && tt.wantErr == nil && err != nil:
				t.Errorf("ExecReported() = %v, want success", err)
			case tt.wantCode < 0 && (err == nil || errors.As(err, &st) || errors.Is(err, ErrExitLost)):
				t.Errorf("ExecReported() = %v, want the stream's error", err)
			}
		})
	}
	if err := ExecReported(context.Background(), chunkedExecutor{}, Request{TTY: true}, Streams{}, nil); err == nil {
		t.Error("ExecReported() with a TTY: want an error, the report cannot be told from output")
	}
}

// pausingExecutor writes a line to stderr, waits until told, then ends
// with the report, as a command that prints and works on does.
type pausingExecutor struct{ resume chan struct{} }

func (e pausingExecutor) Exec(_ context.Context, _ Request, s Streams, _ remotecommand.TerminalSizeQueue) error {
	_, _ = io.WriteString(s.ErrOut, "working\n")
	<-e.resume
	_, _ = io.WriteString(s.ErrOut, ExitReport(0))
	return nil
}

// syncBuffer is a bytes.Buffer read while it is written.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A line's end, which might begin the report, reaches the user while the
// command works on, not only with its next line; the report that follows
// is still taken off.
func TestExecReportedSendsALineWhileTheCommandWorks(t *testing.T) {
	var errOut syncBuffer
	ex := pausingExecutor{resume: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		done <- ExecReported(context.Background(), ex, Request{Command: ReportingCommand("sh", ":")}, Streams{ErrOut: &errOut}, nil)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for errOut.String() != "working\n" {
		if time.Now().After(deadline) {
			t.Fatalf("stderr %q while the command works, want its whole line", errOut.String())
		}
		time.Sleep(time.Millisecond)
	}
	close(ex.resume)
	if err := <-done; err != nil || errOut.String() != "working\n" {
		t.Errorf("ExecReported() = %v, stderr %q; want success and the line once, without the report", err, errOut.String())
	}
}

// twoStreams writes stdout and stderr, then ends as a success.
type twoStreams struct{ stdout, stderr string }

func (e twoStreams) Exec(_ context.Context, _ Request, s Streams, _ remotecommand.TerminalSizeQueue) error {
	_, _ = io.WriteString(s.Out, e.stdout)
	_, _ = io.WriteString(s.ErrOut, e.stderr)
	return nil
}

// A session's report ends both streams: each is the user's, byte for
// byte, and either one cut is a lost exit, whatever the other says.
func TestExecSession(t *testing.T) {
	tests := []struct {
		name, stdout, stderr string
		wantLost             bool
	}{
		{"both whole", "data\x00\n" + ExitReport(0), "warn" + ExitReport(0), false},
		{"stdout cut, stderr whole", "data", "warn" + ExitReport(0), true},
		{"stderr cut, stdout whole", "data" + ExitReport(0), "wa", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := ExecSession(context.Background(), twoStreams{tt.stdout, tt.stderr}, Request{Command: SessionCommand("sh", ":")},
				Streams{Out: &out, ErrOut: &errOut}, nil)
			if errors.Is(err, ErrExitLost) != tt.wantLost || !tt.wantLost && err != nil {
				t.Errorf("ExecSession() = %v, want lost: %v", err, tt.wantLost)
			}
			if !tt.wantLost && (out.String() != "data\x00\n" || errOut.String() != "warn") {
				t.Errorf("stdout %q, stderr %q: want both without the report", out.String(), errOut.String())
			}
		})
	}
	if !IsSession(SessionCommand("sh", ":")) || IsSession(ReportingCommand("sh", ":")) {
		t.Error("IsSession tells a session's argv from a script's wrongly")
	}
}

// The session reporter, run by this machine's sh, ends both streams with
// the report and exits with the command's status.
func TestSessionReporterReportsOnBothStreams(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	var out, errOut bytes.Buffer
	var pid int
	err := shellExecutor{pid: &pid}.Exec(context.Background(), Request{Command: SessionCommand("sh", `printf out; printf err >&2; exit 4`)},
		Streams{Out: &out, ErrOut: &errOut}, nil)
	if exitCode(err) != 4 || out.String() != "out"+ExitReport(4) || errOut.String() != "err"+ExitReport(4) {
		t.Errorf("exit %v, stdout %q, stderr %q", err, out.String(), errOut.String())
	}
}
