package podexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
)

// scriptedExecutor writes stderr and returns err.
type scriptedExecutor struct {
	stderr string
	err    error
	got    Request
}

func (e *scriptedExecutor) Exec(_ context.Context, r Request, s Streams, _ remotecommand.TerminalSizeQueue) error {
	e.got = r
	if s.ErrOut != nil {
		_, _ = io.WriteString(s.ErrOut, e.stderr)
	}
	return e.err
}

func TestRunScript(t *testing.T) {
	c := Container{Namespace: "ci", Pod: "p", Name: "main"}
	exit := func(n int) error { return utilexec.CodeExitError{Err: errors.New("command terminated"), Code: n} }
	tests := []struct {
		name       string
		stderr     string
		err        error
		want       string
		wantExited bool
	}{
		{"exit with stderr", "noise\nmkdir: can't create directory '/proc/x': No such file or directory\n", exit(1),
			"container main of pod ci/p: mkdir: can't create directory '/proc/x': No such file or directory (exit status 1)", true},
		{"GNU tar's summary is passed over", "tar: ./d: Cannot open: Permission denied\ntar: Exiting with failure status due to previous errors\n", exit(2),
			"container main of pod ci/p: tar: ./d: Cannot open: Permission denied (exit status 2)", true},
		{"exit without stderr", "", exit(137), "container main of pod ci/p: exit status 137", true},
		{"hostile stderr is escaped", "\x1b]0;pwned\x07bad\n", exit(1), "container main of pod ci/p: ^[]0;pwned\x07bad (exit status 1)", true},
		{"a broken stream did not exit", "half", errors.New("connection lost"), "container main of pod ci/p: connection lost (stderr: half)", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := &scriptedExecutor{stderr: tt.stderr, err: tt.err}
			err := RunScript(context.Background(), ex, c, `exit 1`, []string{"$(rm -rf /)"}, nil, nil)
			var se *ScriptError
			if !errors.As(err, &se) || err.Error() != tt.want || se.Exited() != tt.wantExited {
				t.Errorf("RunScript() = %v (exited %v), want %q (exited %v)", err, se != nil && se.Exited(), tt.want, tt.wantExited)
			}
			if script, args, ok := ScriptOf(ex.got.Command); !ok || ex.got.Command[0] != "sh" || script != "exit 1" || len(args) != 1 || args[0] != "$(rm -rf /)" {
				t.Errorf("argv %q: arguments must travel as positional parameters", ex.got.Command)
			}
		})
	}
	if err := RunScript(context.Background(), &scriptedExecutor{stderr: "fine" + ExitReport(0)}, c, ":", nil, nil, nil); err != nil {
		t.Errorf("RunScript() of a success = %v", err)
	}
}

// An exec that ends as a success without the script's exit report lost its
// connection (client-go hears an empty error stream as success): it is a
// broken stream, never the script's success; a report of a failure whose
// status was lost is that failure.
func TestRunScriptTellsALostExitFromASuccess(t *testing.T) {
	c := Container{Namespace: "ci", Pod: "p", Name: "main"}
	tests := []struct {
		name       string
		stderr     string
		want       string // "": success
		wantExited bool
	}{
		{"reported success", "warning: x" + ExitReport(0), "", false},
		{"nothing arrived", "", "container main of pod ci/p: " + ErrExitLost.Error(), false},
		{"stderr arrived, not the report", "mkdir: can't create directory '/etc/x': Permission denied\n",
			"container main of pod ci/p: " + ErrExitLost.Error() + " (stderr: mkdir: can't create directory '/etc/x': Permission denied)", false},
		{"a reported failure whose status was lost", "mkdir: denied" + ExitReport(1), "container main of pod ci/p: mkdir: denied (exit status 1)", true},
		{"a forged report mid-stream is not the last line", ExitReport(0) + "tar: cut\n", "container main of pod ci/p: " + ErrExitLost.Error() + " (stderr: tar: cut)", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := RunScript(context.Background(), &scriptedExecutor{stderr: tt.stderr}, c, ":", nil, nil, nil)
			var se *ScriptError
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("RunScript() = %v, want success", err)
			case tt.want != "" && (!errors.As(err, &se) || err.Error() != tt.want || se.Exited() != tt.wantExited):
				t.Errorf("RunScript() = %v (exited %v), want %q (exited %v)", err, se != nil && se.Exited(), tt.want, tt.wantExited)
			}
		})
	}
}

// shellExecutor runs the exec's argv with the machine's sh.
type shellExecutor struct{ pid *int }

func (e shellExecutor) Exec(ctx context.Context, r Request, s Streams, _ remotecommand.TerminalSizeQueue) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", r.Command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s.In, s.Out, s.ErrOut
	err := cmd.Start()
	if err == nil {
		*e.pid = cmd.Process.Pid
		err = cmd.Wait()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return utilexec.CodeExitError{Err: err, Code: ee.ExitCode()}
	}
	return err
}

// The script runs in a shell of its own under the exit reporter: its $$,
// its exit status, its exit trap, its stdout and stderr are its own, and
// the report comes after everything it printed.
func TestExitReporterRunsTheScriptAsItsOwnShell(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	script := `trap 'echo trapped >&2' EXIT
echo "$$ $PPID $1:$2"
exit 3`
	var out, errOut bytes.Buffer
	var reporter int
	ex := shellExecutor{pid: &reporter}
	argv := ReportingCommand("sh", script, "a b", "$(c)")
	err := ex.Exec(context.Background(), Request{Command: argv}, Streams{Out: &out, ErrOut: &errOut}, nil)
	var pid, ppid int
	var args string
	_, _ = fmt.Sscanf(strings.ReplaceAll(out.String(), " ", "|"), "%d|%d|%s", &pid, &ppid, &args)
	if code := exitCode(err); code != 3 || pid == reporter || ppid != reporter || strings.TrimSpace(strings.ReplaceAll(args, "|", " ")) != "a b:$(c)" {
		t.Errorf("exit %d (%v), stdout %q (the reporter is %d); want 3 from a shell of its own, its arguments as given", code, err, out.String(), reporter)
	}
	if want := "trapped\n" + ExitReport(3); errOut.String() != want {
		t.Errorf("stderr %q, want the trap's line, then a report of 3: %q", errOut.String(), want)
	}
	err = RunScript(context.Background(), ex, Container{Name: "main"}, script, []string{"a", "b"}, nil, &out)
	var se *ScriptError
	if !errors.As(err, &se) || se.Code != 3 || se.Stderr != "trapped" {
		t.Errorf("RunScript() = %#v, want exit status 3 saying trapped", err)
	}
}

func exitCode(err error) int {
	var exit utilexec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitStatus()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestExecutableMissing(t *testing.T) {
	exit := func(n int) error { return utilexec.CodeExitError{Err: errors.New("command terminated"), Code: n} }
	tests := []struct {
		err  error
		want bool
	}{
		{exit(127), true},
		{exit(126), true},
		{exit(1), false},
		{errors.New(`exec: "sh": executable file not found in $PATH`), true}, // containerd, as an API error
		{&ScriptError{Code: -1, Stderr: "no such file or directory", Err: errors.New("connection lost")}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := ExecutableMissing(tt.err); got != tt.want {
			t.Errorf("ExecutableMissing(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	if !strings.Contains(Container{Namespace: "a", Pod: "b", Name: "c"}.String(), "container c of pod a/b") {
		t.Error("Container.String")
	}
}

func TestTidy(t *testing.T) {
	inner := errors.New(`Internal error occurred: Internal error occurred: error executing command in container: container "main" is not running`)
	got := tidy(inner)
	if got.Error() != `Internal error occurred: error executing command in container: container "main" is not running` || !errors.Is(got, inner) {
		t.Errorf("tidy() = %v", got)
	}
	plain := errors.New("connection refused")
	if tidy(plain) != plain {
		t.Error("tidy changed a plain error")
	}
}
