package podexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/cli-runtime/pkg/printers"
	utilexec "k8s.io/client-go/util/exec"
)

// Container names the container an exec goes to.
type Container struct {
	Namespace, Pod, Name string
	// Shell is the sh that RunScript starts there: "" is sh from the
	// container's PATH, a path names one the plugin brought (a helper's
	// toolbox in an image that has none).
	Shell string
}

// String names the container for messages, escaped: the names come from the
// cluster.
func (c Container) String() string {
	return fmt.Sprintf("container %s of pod %s", printers.EscapeTerminal(c.Name), printers.EscapeTerminal(c.Namespace+"/"+c.Pod))
}

// Request is the exec of argv in c.
func (c Container) Request(argv []string, stdin bool) Request {
	return Request{Namespace: c.Namespace, Pod: c.Pod, Container: c.Name, Command: argv, Stdin: stdin}
}

// RunScript runs a POSIX sh script in c. Arguments travel as positional
// parameters ("$1" ...), never inside the script text, so that no name can
// inject shell. in and out may be nil. The container's stderr is kept (its
// tail only: it is hostile and may be endless) for the error, so that a
// failure says in the container's own words what went wrong: a non-zero exit
// comes back as a *ScriptError whose Code is the exit status, and any other
// failure (the stream broke, the API refused) as a *ScriptError whose Err is
// that failure and whose Code is -1.
func RunScript(ctx context.Context, ex Executor, c Container, script string, args []string, in io.Reader, out io.Writer) error {
	return runScript(ctx, ex, c, false, script, args, in, out)
}

// RunBulkScript is RunScript for a script that moves data (Request.Bulk).
func RunBulkScript(ctx context.Context, ex Executor, c Container, script string, args []string, in io.Reader, out io.Writer) error {
	return runScript(ctx, ex, c, true, script, args, in, out)
}

func runScript(ctx context.Context, ex Executor, c Container, bulk bool, script string, args []string, in io.Reader, out io.Writer) error {
	shell := c.Shell
	if shell == "" {
		shell = "sh"
	}
	stderr := &tailBuffer{max: 4096}
	req := c.Request(ReportingCommand(shell, script, args...), in != nil)
	req.Bulk = bulk
	err := ExecReported(ctx, ex, req, Streams{In: in, Out: out, ErrOut: stderr}, nil)
	if err == nil {
		return nil
	}
	se := &ScriptError{Container: c, Code: -1, Stderr: lastLine(stderr.String()), Err: err}
	var exit utilexec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		se.Code = exit.ExitStatus()
	}
	return se
}

// ScriptError is the failure of a remote script: where it ran, its exit
// status (-1 when it did not get to exit: the stream broke or the API
// refused), and the last line its stderr printed.
type ScriptError struct {
	Container Container
	Code      int
	Stderr    string // last non-empty line, terminal-escaped; may be ""
	Err       error
}

func (e *ScriptError) Error() string {
	var b strings.Builder
	b.WriteString(e.Container.String())
	b.WriteString(": ")
	switch {
	case e.Code >= 0 && e.Stderr != "":
		fmt.Fprintf(&b, "%s (exit status %d)", e.Stderr, e.Code)
	case e.Code >= 0:
		fmt.Fprintf(&b, "exit status %d", e.Code)
	case e.Stderr != "":
		fmt.Fprintf(&b, "%v (stderr: %s)", e.Err, e.Stderr)
	default:
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *ScriptError) Unwrap() error { return e.Err }

// Exited says whether the script ran to an exit status: its failure is the
// container's answer, which a retry would only repeat, unlike a broken
// stream.
func (e *ScriptError) Exited() bool { return e.Code >= 0 }

// lastLine is the last line of s that says something, escaped for the
// terminal: GNU tar ends with a summary ("Exiting with failure status due to
// previous errors") that names no cause, so the line before it is taken.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && (i == 0 || !isSummary(l)) {
			return printers.EscapeTerminal(l)
		}
	}
	return ""
}

func isSummary(line string) bool {
	return strings.HasSuffix(line, "due to previous errors") || strings.HasSuffix(line, "error exit delayed from previous errors")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	bytes.Buffer
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	b.Buffer.Write(p)
	if over := b.Buffer.Len() - b.max; over > 0 {
		b.Buffer.Next(over)
	}
	return n, nil
}

// ExecutableMissing says whether an exec may have failed because the
// program it names does not exist in the container: exit status 126 or 127
// (as a shell, or a runtime that reports it that way, answers) or the
// runtime's own words (containerd and CRI-O return an API error: executable
// file not found in $PATH). A shell that exists but whose command exited 127
// looks the same; callers that must tell them apart probe for sh.
func ExecutableMissing(err error) bool {
	if err == nil {
		return false
	}
	var exit utilexec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		return exit.ExitStatus() == 126 || exit.ExitStatus() == 127
	}
	var se *ScriptError
	if errors.As(err, &se) {
		err = se.Err // the runtime's words, not the script's stderr
	}
	msg := err.Error()
	return strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory")
}
