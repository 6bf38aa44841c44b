package artifacts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// localExecutor is a podexec.Executor whose "container" is the local
// machine: it runs the command with PATH limited to bin (busybox applets,
// like the test cluster's images), so transfers are real without a cluster.
// cutAfter > 0 breaks the first cuts sessions' stdout after that many
// bytes, as the test cluster's fault injection does; with silent, the
// session then reports success, as a dropped connection can.
// stdinCutAfter > 0 ends the first stdinCuts sessions' stdin after that
// many bytes (the rest is read and dropped) and reports success: bytes
// lost on the way in, unknown to both ends. With stdinCutBreaks, the rest
// is not read and the session fails instead: the connection broke while
// the plugin was still sending.
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
	flipAt  int64
	flips   int
	outRate int64

	mu       sync.Mutex
	commands [][]string
	// stdinRead counts, for each session with stdin, in order, the bytes
	// it took from the plugin.
	stdinRead []stdinSession
}

type stdinSession struct {
	command []string
	n       *atomic.Int64
}

// countingReader counts what is read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// busyboxBin returns a directory of busybox applet links, or the system's
// tools when busybox is missing.
func busyboxBin(t testing.TB, applets ...string) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed")
	}
	dir := t.TempDir()
	if applets == nil {
		applets = []string{"sh", "tar", "gzip", "lzop", "md5sum", "sha256sum", "find", "xargs", "mkdir", "mv", "rm", "du", "cut",
			"head", "wc", "dd", "grep", "while", "cat", "rmdir", "ln", "readlink", "sleep"}
	}
	for _, a := range applets {
		if err := os.Symlink(bb, filepath.Join(dir, a)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func (e *localExecutor) Exec(ctx context.Context, r podexec.Request, s podexec.Streams, _ remotecommand.TerminalSizeQueue) error {
	e.mu.Lock()
	e.commands = append(e.commands, r.Command)
	e.mu.Unlock()
	if len(r.Command) == 0 {
		return errors.New("no command")
	}
	path, err := exec.LookPath(filepath.Join(e.bin, r.Command[0]))
	if err != nil {
		return &utilexec.CodeExitError{Err: fmt.Errorf("exec %q: executable file not found", r.Command[0]), Code: 127}
	}
	cmd := exec.CommandContext(ctx, path, r.Command[1:]...)
	cmd.Args[0] = r.Command[0]
	cmd.Env = []string{"PATH=" + e.bin}
	var stdinDone chan struct{}
	broken := false
	if r.Stdin && s.In != nil {
		read := &atomic.Int64{}
		e.mu.Lock()
		e.stdinRead = append(e.stdinRead, stdinSession{command: r.Command, n: read})
		e.mu.Unlock()
		cmd.Stdin = &countingReader{r: s.In, n: read}
		if e.stdinCutAfter > 0 && e.takeStdinCut() {
			pr, pw := io.Pipe()
			stdinDone = make(chan struct{})
			broken = e.stdinCutBreaks
			go func(in io.Reader) {
				defer close(stdinDone)
				_, _ = io.Copy(pw, io.LimitReader(in, e.stdinCutAfter))
				pw.Close()
				if !broken {
					_, _ = io.Copy(io.Discard, in)
				}
			}(cmd.Stdin)
			cmd.Stdin = pr
		}
		if e.flipAt > 0 {
			cmd.Stdin = &flipReader{r: cmd.Stdin, at: e.flipAt, e: e}
		}
		// As client-go's executors do, the session ends with the process,
		// without waiting for the rest of stdin (os/exec would).
		pr, pw, err := os.Pipe()
		if err != nil {
			return err
		}
		defer pr.Close()
		go func(in io.Reader) {
			_, _ = io.Copy(pw, in)
			pw.Close()
		}(cmd.Stdin)
		cmd.Stdin = pr
	}
	var out io.Writer = io.Discard
	if s.Out != nil {
		out = s.Out
	}
	if e.outRate > 0 {
		out = &pacedWriter{w: out, rate: e.outRate, start: time.Now()}
	}
	cw := &cutWriter{w: out, left: e.cutAfter, e: e}
	cut := e.cutAfter > 0
	if cut {
		out = cw
	}
	cmd.Stdout = out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if s.ErrOut != nil {
		cmd.Stderr = io.MultiWriter(&stderr, s.ErrOut)
	}
	err = cmd.Run()
	if stdinDone != nil {
		<-stdinDone
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
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return &utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", exitErr.ExitCode()), Code: exitErr.ExitCode()}
	}
	return err
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

// cutWriter breaks a session once it passes left bytes, if the executor
// still has cuts to give: like the node agent, only sessions that reach
// the limit count.
type cutWriter struct {
	w    io.Writer
	left int64
	cut  bool
	e    *localExecutor
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
// has flips to give.
type flipReader struct {
	r    io.Reader
	at   int64
	read int64
	e    *localExecutor
}

func (f *flipReader) Read(p []byte) (int, error) {
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

type pacedWriter struct {
	w       io.Writer
	rate    int64
	start   time.Time
	written int64
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.written += int64(n)
	if due := p.start.Add(time.Duration(float64(p.written) / float64(p.rate) * float64(time.Second))); time.Until(due) > 0 {
		time.Sleep(time.Until(due))
	}
	return n, err
}
