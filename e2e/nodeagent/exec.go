package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/creack/pty"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// execSession serves one exec request: it is the remotecommand.Executor for
// that request, with the pod as it was when the request came in (its
// annotations switch fault injection on).
type execSession struct {
	pod    *podRuntime
	podObj *corev1.Pod
}

var _ remotecommand.Executor = (*execSession)(nil)

// ExecInContainer runs cmd chrooted in the container, with its environment,
// working directory and user, wired to the session's streams.
func (s *execSession) ExecInContainer(ctx context.Context, _ string, _ string, containerName string, argv []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	p := s.pod
	p.mu.Lock()
	c := p.containers[containerName]
	var running bool
	if c != nil && c.run != nil {
		select {
		case <-c.run.done:
		default:
			running = true
		}
	}
	p.mu.Unlock()
	if !running {
		return fmt.Errorf("container %q in pod %s/%s is not running", containerName, s.podObj.Namespace, s.podObj.Name)
	}

	f, err := parseFaults(s.podObj.Annotations)
	if err != nil {
		return err
	}
	if f.bytesPerSecond > 0 {
		if in != nil {
			in = &throttledReader{r: in, t: newThrottle(f.bytesPerSecond)}
		}
		if out != nil {
			out = writeCloser{&throttledWriter{w: out, t: newThrottle(f.bytesPerSecond)}, out}
		}
	}

	cmd, err := c.proc.command(argv)
	var notFound errCommandNotFound
	if errors.As(err, &notFound) {
		// As with containerd and runc: the exec fails to start, an error of
		// the API call (kubectl exits 1), not an exit status of 127.
		return fmt.Errorf("failed to exec in container: OCI runtime exec failed: exec failed: unable to start container process: %w", err)
	}
	if err != nil {
		return err
	}

	var pidHolder atomic.Int64
	killProc := func() { signalGroup(int(pidHolder.Load()), syscall.SIGKILL) }
	claim := func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		if f.cutTimes >= 0 && p.cutExecs >= f.cutTimes {
			return false
		}
		p.cutExecs++
		return true
	}
	var cutter *cutWriter
	if f.cutAfter > 0 && out != nil {
		cutter = &cutWriter{w: out, limit: f.cutAfter, claim: claim, cut: killProc}
		if f.countsFrom != "" {
			cutter.header = newMarkerScanner(f.countsFrom)
		}
		out = writeCloser{cutter, out}
	}
	var stdinCut atomic.Bool

	var copies sync.WaitGroup
	var stdin *os.File
	if tty {
		// The process leads a new session with the terminal as its
		// controlling tty; that session is its process group, so Setpgid
		// (which would fail for a session leader) is off.
		cmd.SysProcAttr.Setpgid = false
		cmd.SysProcAttr.Setsid = true
		cmd.SysProcAttr.Setctty = true
		ptmx, slave, err := pty.Open()
		if err != nil {
			return fmt.Errorf("open pty: %w", err)
		}
		defer ptmx.Close()
		// The client's terminal size is applied as it comes, after the
		// process has started, as containerd does: a command that asks for
		// the size at once can see a 0x0 terminal.
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		err = cmd.Start()
		slave.Close()
		if err != nil {
			return fmt.Errorf("start exec with tty: %w", err)
		}
		pidHolder.Store(int64(cmd.Process.Pid))
		if in != nil {
			go func() { _, _ = io.Copy(ptmx, in) }()
		}
		if resize != nil {
			go func() {
				for size := range resize {
					_ = pty.Setsize(ptmx, &pty.Winsize{Rows: size.Height, Cols: size.Width})
				}
			}()
		}
		copies.Add(1)
		go func() {
			defer copies.Done()
			// The master reports EIO once the last process holding the
			// terminal is gone.
			var dst io.Writer = io.Discard
			if out != nil {
				dst = out
			}
			_, _ = io.Copy(dst, ptmx)
		}()
	} else {
		var childEnds []*os.File
		if in != nil {
			r, w, err := os.Pipe()
			if err != nil {
				return err
			}
			cmd.Stdin, stdin = r, w
			childEnds = append(childEnds, r)
		}
		// pipeTo returns the write end of a pipe whose output is copied to
		// dst while the process runs.
		pipeTo := func(dst io.Writer) (*os.File, error) {
			r, w, err := os.Pipe()
			if err != nil {
				return nil, err
			}
			childEnds = append(childEnds, w)
			copies.Add(1)
			go func() {
				defer copies.Done()
				defer r.Close()
				if _, err := io.Copy(dst, r); err != nil {
					// The client is gone. As with containerd, that does not
					// end the process: it runs on, its output goes nowhere
					// (and its stdin, when the client's ends, is at EOF).
					_, _ = io.Copy(io.Discard, r)
				}
			}()
			return w, nil
		}
		if out != nil {
			if cmd.Stdout, err = pipeTo(out); err != nil {
				return err
			}
		}
		if errOut != nil {
			if cmd.Stderr, err = pipeTo(errOut); err != nil {
				return err
			}
		}
		err := cmd.Start()
		for _, f := range childEnds {
			f.Close()
		}
		if err != nil {
			if stdin != nil {
				stdin.Close()
			}
			return fmt.Errorf("start exec: %w", err)
		}
		pidHolder.Store(int64(cmd.Process.Pid))
		if stdin != nil {
			go func() {
				if f.cutStdinAfter > 0 && (f.countsFrom == "" || passHeader(stdin, in, f.countsFrom)) {
					n, _ := io.Copy(stdin, io.LimitReader(in, f.cutStdinAfter))
					if n == f.cutStdinAfter && claim() {
						stdinCut.Store(true)
						stdin.Close()
						if !f.cutSilently {
							killProc()
						}
						_, _ = io.Copy(io.Discard, in) // lost on the way
						return
					}
				}
				_, _ = io.Copy(stdin, in)
				// The client's end of input is the process's.
				stdin.Close()
			}()
		}
	}

	pid := int(pidHolder.Load())
	p.mu.Lock()
	if p.stopping {
		signalGroup(pid, syscall.SIGKILL)
	}
	p.execs[pid] = struct{}{}
	p.mu.Unlock()
	waitErr := cmd.Wait()
	p.mu.Lock()
	delete(p.execs, pid)
	p.mu.Unlock()
	copies.Wait()

	switch {
	case cutter != nil && cutter.wasCut() && f.cutSilently:
		return nil // what a dropped connection can look like
	case cutter != nil && cutter.wasCut():
		// Through the API server, a connection that just closes reads as
		// success to client-go (its streams see EOF, no status arrives), so
		// the cut is reported as the transport failure it stands for.
		return fmt.Errorf("connection lost: exec stream cut by fault injection after %d bytes", f.cutAfter)
	case stdinCut.Load() && !f.cutSilently:
		return fmt.Errorf("connection lost: exec stdin cut by fault injection after %d bytes", f.cutStdinAfter)
	}
	// A silent stdin cut: the process saw its input end, and says what it
	// made of that.
	code := exitStatus(waitErr)
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return nil
}

// writeCloser pairs a wrapping writer with the original's Close.
type writeCloser struct {
	io.Writer
	c io.Closer
}

func (w writeCloser) Close() error { return w.c.Close() }
