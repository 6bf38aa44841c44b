package hijack

import (
	"context"
	"os"
	"syscall"

	mobyterm "github.com/moby/term"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/kubectl/pkg/util/interrupt"
	"k8s.io/kubectl/pkg/util/term"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// sessionFunc runs remote work with the streams to use and the size queue
// (nil without a TTY).
type sessionFunc func(ctx context.Context, tty bool, s podexec.Streams, resize remotecommand.TerminalSizeQueue) error

// withTerminal runs fn with the local terminal prepared. With stdin and
// stdout both terminals it asks for a remote TTY, puts stdin in raw mode and
// forwards window size changes (SIGWINCH; polling on Windows), and restores
// the terminal however fn ends: return, error, lost connection, or
// SIGINT/SIGTERM/SIGHUP, which also cancel ctx so that cleanup still runs
// instead of the process exiting. Otherwise stdin is streamed as it is and
// the remote end sees EOF when it ends.
func (o *HijackOptions) withTerminal(ctx context.Context, fn sessionFunc) error {
	if !o.terminal(o.In) || !o.terminal(o.Out) {
		return fn(ctx, false, podexec.Streams{In: o.In, Out: o.Out, ErrOut: o.ErrOut}, nil)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	in, out := o.In, o.Out
	if in == os.Stdin && out == os.Stdout {
		// The right console handles on Windows; the same files elsewhere.
		stdin, stdout, _ := mobyterm.StdStreams()
		in, out = stdin, stdout
	}
	// kubectl's terminal restore catches the signals cli also hears: the
	// session ends with the same interruption cli would give it.
	stop := func(sig os.Signal) {
		if s, ok := sig.(syscall.Signal); ok {
			cancel(cmderr.Interrupted{Signal: s})
			return
		}
		cancel(nil)
	}
	t := term.TTY{In: in, Out: out, Raw: true, Parent: interrupt.New(stop)}
	var resize remotecommand.TerminalSizeQueue
	if q := t.MonitorSize(t.GetSize()); q != nil {
		// Before Safe, so that restoring the terminal also stops the monitor.
		resize = sizeQueue{q}
	}
	// A TTY merges the remote stderr into stdout.
	return t.Safe(func() error { return fn(ctx, true, podexec.Streams{In: in, Out: out}, resize) })
}

// sizeQueue adapts kubectl's terminal size queue to client-go's.
type sizeQueue struct{ q term.TerminalSizeQueue }

func (s sizeQueue) Next() *remotecommand.TerminalSize {
	size := s.q.Next()
	if size == nil {
		return nil
	}
	return &remotecommand.TerminalSize{Width: size.Width, Height: size.Height}
}
