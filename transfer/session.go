package transfer

import (
	"bufio"
	"context"
	"errors"
	"io"
)

// session is a script's exec in progress: what it is sent, what it
// prints, and how it ended.
type session struct {
	stdin  *io.PipeWriter
	out    *bufio.Reader
	stdout *io.PipeReader // out's source, closed to stop a script that still prints
	done   chan error     // the exec's end, once
}

// start runs script in the background.
func (r *remote) start(ctx context.Context, script string, args []string) *session {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &session{stdin: inW, out: bufio.NewReaderSize(outR, 64<<10), stdout: outR, done: make(chan error, 1)}
	go func() {
		err := r.run(ctx, script, args, inR, outW)
		outW.CloseWithError(err)
		inR.CloseWithError(errScriptEnded) // a late write must not block
		s.done <- err
	}()
	return s
}

// errScriptEnded is what writing to a session whose script has ended
// gets.
var errScriptEnded = errors.New("the script has ended")

// stop ends a session that waits for its decision without one (the script
// then does nothing) and waits for its end.
func (s *session) stop() {
	s.stdin.Close()
	_, _ = io.Copy(io.Discard, s.out)
	<-s.done
}

// awaited is an exec started before it is needed, so that its round trip
// overlaps the work before: its script first reads one line of stdin, and
// unless that tells it to go on it ends having done nothing. Until it is
// told, the context it was started with ends it; from then on, the one
// goOn is given.
type awaited struct {
	sess    *session
	cancel  context.CancelFunc
	unwatch func() bool // stops the context that ends it from doing so
}

func (r *remote) startAwaited(ctx context.Context, script string, args []string) *awaited {
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &awaited{sess: r.start(actx, script, args), cancel: cancel, unwatch: context.AfterFunc(ctx, cancel)}
}

// errAwaitedEnded: the awaited exec ended, or was ending, before it was
// told to go on (a dropped idle connection, a container without sh, an
// interrupted plugin), so it did nothing; the work needs an exec of its
// own.
var errAwaitedEnded = errors.New("the exec ended before it was needed")

// goOn sends line, which tells the script to go on, and closes its stdin;
// then its output is a.sess.out, and release ends it.
func (a *awaited) goOn(ctx context.Context, line string) error {
	if !a.unwatch() { // its context has ended it
		a.drop()
		return errAwaitedEnded
	}
	a.unwatch = context.AfterFunc(ctx, a.cancel)
	select {
	case err := <-a.sess.done:
		a.sess.done <- err
		a.drop()
		return errAwaitedEnded
	default:
	}
	if _, err := io.WriteString(a.sess.stdin, line+"\n"); err != nil {
		a.drop()
		return errAwaitedEnded // its script had ended
	}
	a.sess.stdin.Close()
	return nil
}

// release waits for the end of an exec told to go on, whose output has
// been read, and frees what watches it.
func (a *awaited) release() error {
	_, _ = io.Copy(io.Discard, a.sess.out)
	err := <-a.sess.done
	a.unwatch()
	a.cancel()
	return err
}

// drop ends an awaited exec that is not needed (its script does nothing)
// and waits for its end.
func (a *awaited) drop() {
	a.sess.stop()
	a.unwatch()
	a.cancel()
}
