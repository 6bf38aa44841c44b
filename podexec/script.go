package podexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
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
	argv := append([]string{shell, "-c", exitReporter, shell, script}, args...)
	stderr := &tailBuffer{max: 4096}
	req := c.Request(argv, in != nil)
	req.Bulk = bulk
	err := ex.Exec(ctx, req, Streams{In: in, Out: out, ErrOut: stderr}, nil)
	said, code, reported := cutExitReport(stderr.String())
	se := &ScriptError{Container: c, Code: -1, Stderr: lastLine(said), Err: err}
	var exit utilexec.ExitError
	switch {
	case err != nil && errors.As(err, &exit) && exit.Exited():
		se.Code = exit.ExitStatus()
	case err != nil:
	case !reported:
		se.Err = ErrExitLost
	case code != 0: // the script's answer, though its status was lost on the way
		se.Code, se.Err = code, utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	default:
		return nil
	}
	return se
}

// exitReporter runs the script ($1, with the arguments after it) in a
// shell of its own, then reports its exit status on stderr as its last
// line (exitReportPrefix) and exits with it. An exec whose connection
// drops ends in client-go as a success, without the status the server
// would have sent (its error stream ends empty): over SPDY, to a kubelet,
// about one exec in ten did so under load here, output and all. The report
// tells such an exec from one that ran to its end. The script gets a shell
// of its own, not a subshell, so that its $$ is its own pid (an upload's
// receivers are ended by it) and its own exit traps run.
const exitReporter = `s=$1; shift
"$0" -c "$s" sh "$@"
c=$?
printf '\n` + exitReportPrefix + `%d\n' "$c" >&2
exit "$c"`

// exitReportPrefix begins exitReporter's last line of stderr.
const exitReportPrefix = "kubectl-concourse-exit "

// ErrExitLost is the failure of an exec that ended without saying how the
// script ended: its connection dropped. Whatever the script did, the
// plugin did not hear all of it; a retry may.
var ErrExitLost = errors.New("the exec's stream ended before the script's exit status arrived (the connection dropped)")

// ExitReport is the line exitReporter ends stderr with for a script that
// exited with code: for fake executors that answer without running it.
func ExitReport(code int) string {
	return fmt.Sprintf("\n%s%d\n", exitReportPrefix, code)
}

// cutExitReport splits stderr into what the script said and the exit
// status exitReporter reported as its last line, if it did.
func cutExitReport(stderr string) (said string, code int, reported bool) {
	body := strings.TrimRight(stderr, "\n")
	i := strings.LastIndexByte(body, '\n') + 1
	n, err := strconv.Atoi(strings.TrimPrefix(body[i:], exitReportPrefix))
	if !strings.HasPrefix(body[i:], exitReportPrefix) || err != nil || n < 0 {
		return stderr, 0, false
	}
	return body[:max(i-1, 0)], n, true // without the newline the report begins with
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

// ScriptOf is the script and its arguments in argv when RunScript started
// it, for fakes that answer each script their own way.
func ScriptOf(argv []string) (script string, args []string, ok bool) {
	if len(argv) < 5 || argv[1] != "-c" || argv[2] != exitReporter {
		return "", nil, false
	}
	return argv[4], argv[5:], true
}
