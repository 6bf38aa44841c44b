package transfer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/remotecommand"

	"github.com/kubectl-concourse/kubectl-concourse/internal/transfertest"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// localExecutor is transfertest.Container, the local machine as a
// container of busybox applets, with the faults a transfer must survive.
// cutAfter > 0 breaks the first cuts sessions' stdout after that many
// bytes, as the test cluster's fault injection does; with silent, the
// session then reports success, as a dropped connection can.
// stdinCutAfter > 0 ends the first stdinCuts archive sessions' stdin (an
// upload's or a receive's) after that many bytes (the rest is read and
// dropped) and reports success: bytes lost on the way in, unknown to both
// ends. With stdinCutBreaks, the rest
// is not read and the session fails instead: the connection broke while
// the plugin was still sending. These offsets, and flipAt's, count from
// where a transfer script's archive starts: on stdin past the decision
// line receive reads first, on stdout past the probe's "decide".
type localExecutor struct {
	bin            string
	cutAfter       int64
	cuts           int
	silent         bool
	stdinCutAfter  int64
	stdinCuts      int
	stdinCutBreaks bool
	// flipAt > 0 flips one bit of stdin's byte at that offset in the first
	// flips sessions that reach it: a stream corrupted on the way, whole
	// and well formed. outRate > 0 paces stdout to that many bytes a
	// second (a slow link, as the probe's link sample sees it).
	// outFlipAt > 0 does as flipAt to the byte of stdout at that offset,
	// counted from its start.
	flipAt    int64
	flips     int
	outFlipAt int64
	outRate   int64
	// Sessions of the script endAtOnce fail before it runs, as a
	// connection that dropped; those of loseOutput run, but their stdout
	// is lost and they report success, as a silently dropped one.
	endAtOnce, loseOutput string

	// running counts the sessions not yet ended.
	running atomic.Int32

	mu       sync.Mutex
	commands [][]string
	// stdinRead counts, for each session with stdin, in order, the bytes
	// it took from the plugin.
	stdinRead []stdinSession
}

type stdinSession struct {
	command []string
	n       *atomic.Int64
	head    *headBuffer // the first bytes: a transfer script's decision line
}

// firstLine is the first line the session was sent, without its newline.
func (s stdinSession) firstLine() string {
	line, _, _ := strings.Cut(s.head.String(), "\n")
	return line
}

// countingReader counts what is read through it, and keeps the first
// bytes in head.
type countingReader struct {
	r    io.Reader
	n    *atomic.Int64
	head *headBuffer
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	c.head.Write(p[:n])
	return n, err
}

// headBuffer keeps the first 512 bytes written to it.
type headBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (h *headBuffer) Write(p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := 512 - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
}

func (h *headBuffer) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return string(h.b)
}

// probeOnlyScript runs the transfer scripts' probe alone.
const probeOnlyScript = probeFunc + `probe "$@" 3<&0 </dev/null`

// probeOnly probes as a transfer script's first part does.
func (r *remote) probeOnly(ctx context.Context, q probeRequest) (caps, error) {
	c, s, err := r.startProbed(ctx, probeOnlyScript, nil, q)
	if s != nil {
		s.stop()
	}
	return c, err
}

// receiveDecisions are the decision lines (uploader.decision), as fields,
// of every receive ex ran: the first attempts' and the retries'.
func receiveDecisions(ex *localExecutor) [][]string {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	var lines [][]string
	for _, s := range ex.stdinRead {
		if script, _, _ := podexec.ScriptOf(s.command); script == uploadScript || script == receiveScript {
			lines = append(lines, strings.Fields(s.firstLine()))
		}
	}
	return lines
}

// The local container's programs and the trees on disk are transfertest's,
// which the commands' tests share.
var (
	busyboxBin = transfertest.BusyboxBin
	tree       = transfertest.Tree
	writeTree  = transfertest.WriteTree
)

func (e *localExecutor) Exec(ctx context.Context, r podexec.Request, s podexec.Streams, _ remotecommand.TerminalSizeQueue) error {
	e.running.Add(1)
	defer e.running.Add(-1)
	e.mu.Lock()
	e.commands = append(e.commands, r.Command)
	e.mu.Unlock()
	cmd, err := transfertest.Command(ctx, e.bin, r.Command)
	if err != nil {
		return err
	}
	script, _, _ := podexec.ScriptOf(r.Command)
	if script != "" && script == e.endAtOnce {
		return errors.New("connection lost (injected)")
	}
	decisionFirst := script == uploadScript || script == receiveScript
	var stdinDone chan struct{}
	broken := false
	if r.Stdin && s.In != nil {
		read := &atomic.Int64{}
		e.mu.Lock()
		head := &headBuffer{}
		e.stdinRead = append(e.stdinRead, stdinSession{command: r.Command, n: read, head: head})
		e.mu.Unlock()
		cmd.Stdin = &countingReader{r: s.In, n: read, head: head}
		// Only an archive's stdin is cut: the pending commit's (one line)
		// starts beside the first attempt's and must not take its cut.
		if e.stdinCutAfter > 0 && decisionFirst && e.takeStdinCut() {
			pr, pw := io.Pipe()
			stdinDone = make(chan struct{})
			broken = e.stdinCutBreaks
			go func(in io.Reader) {
				defer close(stdinDone)
				if decisionFirst {
					copyFirstLine(pw, in)
				}
				_, _ = io.Copy(pw, io.LimitReader(in, e.stdinCutAfter))
				pw.Close()
				if !broken {
					_, _ = io.Copy(io.Discard, in)
				}
			}(cmd.Stdin)
			cmd.Stdin = pr
		}
		if e.flipAt > 0 {
			cmd.Stdin = &flipReader{r: cmd.Stdin, at: e.flipAt, e: e, afterLine: decisionFirst}
		}
		pr, err := transfertest.PipeStdin(cmd)
		if err != nil {
			return err
		}
		defer pr.Close()
	}
	var out io.Writer = io.Discard
	if s.Out != nil && script != e.loseOutput {
		out = s.Out
	}
	if e.outRate > 0 {
		out = &pacedWriter{w: out, rate: e.outRate}
	}
	if e.outFlipAt > 0 {
		out = &flipWriter{w: out, at: e.outFlipAt, e: e}
	}
	cw := &cutWriter{w: out, left: e.cutAfter, e: e}
	if script == downloadScript {
		cw.after = []byte("\ndecide\n")
	}
	cut := e.cutAfter > 0
	if cut {
		out = cw
	}
	cmd.Stdout = out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if stdinDone != nil {
		<-stdinDone
	}
	// A silent cut is a dropped connection: nothing the container said
	// after it arrives, the shell's exit report least of all.
	if s.ErrOut != nil && !(cut && cw.cut && e.silent) {
		_, _ = s.ErrOut.Write(stderr.Bytes())
	}
	if broken {
		return errors.New("connection lost (injected)")
	}
	if cut && cw.cut {
		if e.silent {
			return nil
		}
		return errors.New("connection lost (injected)")
	}
	return transfertest.ExitError(err)
}

func (e *localExecutor) takeStdinCut() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stdinCuts == 0 {
		return false
	}
	e.stdinCuts--
	return true
}

// copyFirstLine copies r's first line to w, a byte at a time so that
// nothing after it is taken.
func copyFirstLine(w io.Writer, r io.Reader) {
	var b [1]byte
	for {
		if n, err := r.Read(b[:]); n == 1 {
			if _, err := w.Write(b[:]); err != nil || b[0] == '\n' {
				return
			}
		} else if err != nil {
			return
		}
	}
}

// cutWriter breaks a session once it passes left bytes, if the executor
// still has cuts to give: like the node agent, only sessions that reach
// the limit count. With after set, bytes count from the end of its first
// appearance.
type cutWriter struct {
	w     io.Writer
	left  int64
	cut   bool
	e     *localExecutor
	after []byte
	seen  []byte // what was written while waiting for after
}

func (c *cutWriter) take() bool {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	if c.e.cuts == 0 {
		return false
	}
	c.e.cuts--
	return true
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if c.cut {
		return 0, io.ErrClosedPipe
	}
	if c.after != nil {
		c.seen = append(c.seen, b...)
		i := bytes.Index(c.seen, c.after)
		if i < 0 {
			c.seen = c.seen[max(0, len(c.seen)-len(c.after)):]
			return c.w.Write(b)
		}
		// Through the marker uncounted, the rest as any write.
		through := len(b) - (len(c.seen) - i - len(c.after))
		c.after, c.seen = nil, nil
		if n, err := c.w.Write(b[:through]); err != nil {
			return n, err
		}
		n, err := c.Write(b[through:])
		return through + n, err
	}
	if c.left >= 0 && int64(len(b)) > c.left {
		if !c.take() {
			c.left = -1 // never again in this session
			return c.w.Write(b)
		}
		n, _ := c.w.Write(b[:c.left])
		c.cut = true
		return n, io.ErrClosedPipe
	}
	if c.left >= 0 {
		c.left -= int64(len(b))
	}
	return c.w.Write(b)
}

// flipReader flips a bit of the byte at offset at, if the executor still
// has flips to give; with afterLine, counting from the end of the first
// line.
type flipReader struct {
	r         io.Reader
	at        int64
	read      int64
	e         *localExecutor
	afterLine bool
}

func (f *flipReader) Read(p []byte) (int, error) {
	if f.afterLine && len(p) > 0 {
		var b [1]byte
		n, err := f.r.Read(b[:])
		if n == 1 {
			p[0] = b[0]
			f.afterLine = b[0] != '\n'
		}
		return n, err
	}
	n, err := f.r.Read(p)
	if f.at >= f.read && f.at < f.read+int64(n) {
		f.e.mu.Lock()
		if f.e.flips > 0 {
			f.e.flips--
			p[f.at-f.read] ^= 0x20
		}
		f.e.mu.Unlock()
	}
	f.read += int64(n)
	return n, err
}

// flipWriter flips a bit of the byte at offset at on its way to w, if the
// executor still has flips to give.
type flipWriter struct {
	w       io.Writer
	at      int64
	written int64
	e       *localExecutor
}

func (f *flipWriter) Write(p []byte) (int, error) {
	if f.at >= f.written && f.at < f.written+int64(len(p)) {
		f.e.mu.Lock()
		if f.e.flips > 0 {
			f.e.flips--
			p = bytes.Clone(p)
			p[f.at-f.written] ^= 0x20
		}
		f.e.mu.Unlock()
	}
	f.written += int64(len(p))
	return f.w.Write(p)
}

// pacedWriter paces writes to rate bytes a second, as a link does: time
// it spent idle (a script's work before it prints) is no credit beyond a
// 64 KiB burst, as in the test cluster's link proxy, so a sample that
// follows is timed at the link's speed however late it comes.
type pacedWriter struct {
	w    io.Writer
	rate int64
	due  time.Time // when what was written so far has passed
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	burst := time.Duration(float64(64<<10) / float64(p.rate) * float64(time.Second))
	if earliest := time.Now().Add(-burst); p.due.Before(earliest) {
		p.due = earliest
	}
	p.due = p.due.Add(time.Duration(float64(n) / float64(p.rate) * float64(time.Second)))
	if wait := time.Until(p.due); wait > 0 {
		time.Sleep(wait)
	}
	return n, err
}

// runAsNobody runs the calling test again, alone, in a copy of the test
// binary as uid and gid 65534: what a test of a permission error needs
// when the tests run as root (CI does), which reads any file. It fails
// unless the child ran the test and passed it.
func runAsNobody(t *testing.T) {
	t.Helper()
	const nobody = 65534
	if os.Getenv("KUBECTL_CONCOURSE_TEST_AS_NOBODY") != "" {
		t.Fatal("the child meant to run as nobody runs as root")
	}
	// t.TempDir's parents and go test's work directory are 0700.
	dir, err := os.MkdirTemp("", "as-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(os.Chmod(dir, 0o755), os.Chown(tmp, nobody, nobody)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "KUBECTL_CONCOURSE_TEST_AS_NOBODY=1", "TMPDIR="+tmp, "HOME="+tmp, "GOCOVERDIR="+tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("as uid %d: %v\n%s", nobody, err, out)
	}
}
