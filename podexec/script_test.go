package podexec

import (
	"context"
	"errors"
	"io"
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
			if got := ex.got.Command; len(got) != 5 || got[0] != "sh" || got[4] != "$(rm -rf /)" {
				t.Errorf("argv %q: arguments must travel as positional parameters", got)
			}
		})
	}
	if err := RunScript(context.Background(), &scriptedExecutor{stderr: "fine"}, c, ":", nil, nil, nil); err != nil {
		t.Errorf("RunScript() of a success = %v", err)
	}
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
