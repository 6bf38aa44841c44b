package podexec

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
)

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

// sessionReporter is exitReporter for a session whose stdout and stderr
// are both the user's: it reports on both, since each stream can be cut
// apart from the other (the kubelet copies them apart, and a stream that
// ends early can look like one that ended), and only a report at the end of
// each says that all of it arrived.
const sessionReporter = `s=$1; shift
"$0" -c "$s" sh "$@"
c=$?
printf '\n` + exitReportPrefix + `%d\n' "$c"
printf '\n` + exitReportPrefix + `%d\n' "$c" >&2
exit "$c"`

// exitReportPrefix begins exitReporter's last line of stderr.
const exitReportPrefix = "kubectl-concourse-exit "

// maxReportDigits bounds the status in a report: an exit status is 0-255.
const maxReportDigits = 3

// ErrExitLost is the failure of an exec that ended without saying how its
// command ended: its connection dropped. Whatever the command did, the
// plugin did not hear all of it; a retry may.
var ErrExitLost = errors.New("the connection was lost before the exit status arrived")

// ExitReport is the line exitReporter ends stderr with for a script that
// exited with code: for fake executors that answer without running it.
func ExitReport(code int) string {
	return fmt.Sprintf("\n%s%d\n", exitReportPrefix, code)
}

// ReportingCommand is the argv that runs script in shell (a name on the
// container's PATH or a path) with args as its positional parameters
// ("$1" ...), under exitReporter. Only ExecReported can read what it says.
func ReportingCommand(shell, script string, args ...string) []string {
	return append([]string{shell, "-c", exitReporter, shell, script}, args...)
}

// SessionCommand is ReportingCommand for a session, whose stdout is the
// user's too: the report ends both streams. Only ExecSession can read it.
func SessionCommand(shell, script string, args ...string) []string {
	return append([]string{shell, "-c", sessionReporter, shell, script}, args...)
}

// ScriptOf is the script and its arguments in argv when ReportingCommand
// made it, for fakes that answer each script their own way.
func ScriptOf(argv []string) (script string, args []string, ok bool) {
	if len(argv) < 5 || argv[1] != "-c" || argv[2] != exitReporter {
		return "", nil, false
	}
	return argv[4], argv[5:], true
}

// IsSession says whether SessionCommand made argv, for fakes: its report
// (ExitReport) ends stdout as well as stderr.
func IsSession(argv []string) bool {
	return len(argv) >= 5 && argv[1] == "-c" && argv[2] == sessionReporter
}

// ExecReported runs r, whose command ReportingCommand made, and passes its
// stderr to s.ErrOut without the exit report, byte for byte as the script
// wrote it (what may begin the report is held back until the next write
// shows it does not; a line's end, for lineEndQuiet at most). It returns what the Executor returns, except
// that an exec that ends as a success says how it ended only through the
// report: without one it fails with ErrExitLost, and a non-zero report (the
// status itself was lost on the way) is a utilexec.CodeExitError. r must
// not ask for a TTY, which merges stderr into stdout; s.ErrOut may be nil.
func ExecReported(ctx context.Context, ex Executor, r Request, s Streams, resize remotecommand.TerminalSizeQueue) error {
	return execReported(ctx, ex, r, s, resize, false)
}

// ExecSession is ExecReported for a command that SessionCommand made: its
// stdout is passed on without its report too, and a stream whose report
// did not arrive fails with ErrExitLost.
func ExecSession(ctx context.Context, ex Executor, r Request, s Streams, resize remotecommand.TerminalSizeQueue) error {
	return execReported(ctx, ex, r, s, resize, true)
}

func execReported(ctx context.Context, ex Executor, r Request, s Streams, resize remotecommand.TerminalSizeQueue, onStdout bool) error {
	if r.TTY {
		return errors.New("podexec: an exit report needs stderr of its own, and a TTY merges it into stdout")
	}
	if s.ErrOut == nil {
		s.ErrOut = io.Discard
	}
	errRep := &reportWriter{w: s.ErrOut}
	s.ErrOut = errRep
	var outRep *reportWriter
	if onStdout {
		if s.Out == nil {
			s.Out = io.Discard
		}
		outRep = &reportWriter{w: s.Out}
		s.Out = outRep
	}
	err := ex.Exec(ctx, r, s, resize)
	code, reported, flushErr := errRep.end()
	if outRep != nil {
		_, outReported, outErr := outRep.end()
		reported = reported && outReported
		flushErr = cmp.Or(flushErr, outErr)
	}
	switch {
	case err != nil:
		return err
	case flushErr != nil:
		return flushErr
	case !reported:
		return ErrExitLost
	case code != 0:
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return nil
}

// reportWriter passes what it is given to w, except a tail that is or may
// become an exit report (ExitReport's form), which it holds until the next
// write or end. The report is the last thing exitReporter writes, so a
// complete one followed by more output is output.
type reportWriter struct {
	w io.Writer

	mu      sync.Mutex
	pending []byte
	err     error
	quiet   *time.Timer // sends a held line end on
	held    int         // counts the tails held, so that a late timer sends nothing
}

// lineEndQuiet is how long a line end (the command's stderr ends its last
// write with a newline, which may begin the report) is held for what
// follows. After that it is the command's: exitReporter's printf is one
// write, smaller than a pipe's atomic one, so the report never arrives cut
// after its first byte. Without it a line would reach a reader that reads
// lines only with the next one.
const lineEndQuiet = 20 * time.Millisecond

func (rw *reportWriter) Write(p []byte) (int, error) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.err != nil {
		return 0, rw.err
	}
	rw.stopQuiet()
	rw.pending = append(rw.pending, p...)
	i := reportStart(rw.pending)
	if i > 0 {
		if _, err := rw.w.Write(rw.pending[:i]); err != nil {
			rw.err = err
			return 0, err
		}
		rw.pending = append(rw.pending[:0], rw.pending[i:]...)
	}
	if string(rw.pending) == "\n" {
		held := rw.held
		rw.quiet = time.AfterFunc(lineEndQuiet, func() { rw.sendLineEnd(held) })
	}
	return len(p), nil
}

// sendLineEnd sends on the line end held as the held'th tail, if it is
// still held.
func (rw *reportWriter) sendLineEnd(held int) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.held != held || rw.err != nil || string(rw.pending) != "\n" {
		return
	}
	if _, err := rw.w.Write(rw.pending); err != nil {
		rw.err = err
	}
	rw.pending = rw.pending[:0]
}

// stopQuiet stops the timer of a held line end; rw.mu is held.
func (rw *reportWriter) stopQuiet() {
	if rw.quiet != nil {
		rw.quiet.Stop()
		rw.quiet = nil
	}
	rw.held++
}

// end says what the held tail reported, passing it on when it is not a
// report.
func (rw *reportWriter) end() (code int, reported bool, err error) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	rw.stopQuiet()
	if rw.err != nil {
		return 0, false, rw.err
	}
	if code, ok := parseReport(rw.pending); ok {
		return code, true, nil
	}
	if len(rw.pending) > 0 {
		_, err = rw.w.Write(rw.pending)
	}
	return 0, false, err
}

// reportStart is the first index from which b could still be, or become,
// an exit report: len(b) when no tail of b could.
func reportStart(b []byte) int {
	for i := max(0, len(b)-(len(exitReportPrefix)+maxReportDigits+2)); i < len(b); i++ {
		if b[i] == '\n' && mayBeReport(b[i:]) {
			return i
		}
	}
	return len(b)
}

// mayBeReport says whether t is a report or the beginning of one.
func mayBeReport(t []byte) bool {
	head := "\n" + exitReportPrefix
	if len(t) <= len(head) {
		return head[:len(t)] == string(t)
	}
	if !bytes.HasPrefix(t, []byte(head)) {
		return false
	}
	digits := t[len(head):]
	if n := len(digits); n > 0 && digits[n-1] == '\n' {
		digits = digits[:n-1]
		if len(digits) == 0 {
			return false
		}
	}
	if len(digits) > maxReportDigits {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseReport reads t when it is a whole report.
func parseReport(t []byte) (int, bool) {
	if len(t) < len("\n"+exitReportPrefix)+2 || t[len(t)-1] != '\n' || !mayBeReport(t) {
		return 0, false
	}
	code := 0
	for _, c := range t[len("\n"+exitReportPrefix) : len(t)-1] {
		code = code*10 + int(c-'0')
	}
	return code, true
}
