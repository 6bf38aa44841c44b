package nodeagent

import (
	"context"
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
// that request, knowing the pod and how to cut the client's connection.
type execSession struct {
	pod     *podRuntime
	podObj  *corev1.Pod
	cutConn func() // closes the client's connection
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
	if err != nil {
		// What a shell would say, with its exit code for "not found".
		msg := []byte(err.Error() + "\n")
		if w := errOut; w != nil && !tty {
			_, _ = w.Write(msg)
		} else if out != nil {
			_, _ = out.Write(msg)
		}
		return utilexec.CodeExitError{Err: err, Code: 127}
	}

	var pidHolder atomic.Int64
	killProc := func() { signalGroup(int(pidHolder.Load()), syscall.SIGKILL) }
	if f.cutAfter > 0 && out != nil {
		out = writeCloser{&cutWriter{
			w: out, limit: f.cutAfter,
			claim: func() bool {
				p.mu.Lock()
				defer p.mu.Unlock()
				if f.cutTimes >= 0 && p.cutExecs >= f.cutTimes {
					return false
				}
				p.cutExecs++
				return true
			},
			cut: func() {
				s.cutConn()
				killProc()
			},
		}, out}
	}

	var copies sync.WaitGroup
	var stdin *os.File
	if tty {
		// pty starts the process as a session leader: its session is its
		// process group, so Setpgid must be off.
		cmd.SysProcAttr.Setpgid = false
		ptmx, err := pty.StartWithAttrs(cmd, nil, cmd.SysProcAttr)
		if err != nil {
			return fmt.Errorf("start exec with tty: %w", err)
		}
		defer ptmx.Close()
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
		var outputs []struct {
			dst io.Writer
			set func(*os.File)
		}
		if out != nil {
			outputs = append(outputs, struct {
				dst io.Writer
				set func(*os.File)
			}{out, func(w *os.File) { cmd.Stdout = w }})
		}
		if errOut != nil {
			outputs = append(outputs, struct {
				dst io.Writer
				set func(*os.File)
			}{errOut, func(w *os.File) { cmd.Stderr = w }})
		}
		for _, o := range outputs {
			dst := o.dst
			r, w, err := os.Pipe()
			if err != nil {
				return err
			}
			o.set(w)
			childEnds = append(childEnds, w)
			copies.Add(1)
			go func(dst io.Writer, r *os.File) {
				defer copies.Done()
				defer r.Close()
				if _, err := io.Copy(dst, r); err != nil {
					// The client is gone (or was cut): nobody reads the rest.
					killProc()
				}
			}(dst, r)
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
