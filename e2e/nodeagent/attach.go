package nodeagent

import (
	"context"
	"io"
	"os"
	"sync"

	"github.com/creack/pty"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// attachPoint connects attach sessions to one run of a container: its output
// is copied to every session, sessions' input goes to its stdin (a pipe, or
// the terminal when the container has tty).
type attachPoint struct {
	tty       bool
	stdinOnce bool
	input     *os.File // nil when the container has no stdin
	pty       *os.File // the terminal's master side when tty

	mu        sync.Mutex
	subs      map[*attachSession]struct{}
	inputDone bool
	ended     bool
	finished  chan struct{} // closed when the run ends
}

func newAttachPoint(tty, stdinOnce bool) *attachPoint {
	return &attachPoint{tty: tty, stdinOnce: stdinOnce, subs: map[*attachSession]struct{}{}, finished: make(chan struct{})}
}

type attachSession struct {
	out, err io.Writer
}

func (a *attachPoint) broadcast(stream string, b []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for s := range a.subs {
		w := s.out
		if stream == streamStderr {
			w = s.err
		}
		if w != nil {
			_, _ = w.Write(b)
		}
	}
}

// closeInput closes the container's stdin (its end of file); with a
// terminal, the master stays open for the output.
func (a *attachPoint) closeInput() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.input != nil && !a.inputDone && !a.tty {
		a.input.Close()
	}
	a.inputDone = true
}

// finish marks the run ended: attach sessions return.
func (a *attachPoint) finish() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.ended {
		a.ended = true
		close(a.finished)
	}
	if a.pty != nil {
		a.pty.Close()
	}
}

// serve runs one attach session until the run ends or the client leaves.
func (a *attachPoint) serve(ctx context.Context, in io.Reader, out, errOut io.WriteCloser, resize <-chan remotecommand.TerminalSize) {
	s := &attachSession{out: out, err: errOut}
	a.mu.Lock()
	a.subs[s] = struct{}{}
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.subs, s)
		a.mu.Unlock()
	}()

	if in != nil && a.input != nil {
		go func() {
			_, _ = io.Copy(a.input, in)
			if a.stdinOnce {
				a.closeInput()
			}
		}()
	}
	if resize != nil && a.pty != nil {
		go func() {
			for size := range resize {
				_ = pty.Setsize(a.pty, &pty.Winsize{Rows: size.Height, Cols: size.Width})
			}
		}()
	}
	select {
	case <-a.finished:
	case <-ctx.Done():
	}
}
