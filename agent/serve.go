//go:build linux

// Package agent is the program the plugin runs inside a build's container
// for a transfer: it serves the protocol of packages frame and protocol on
// its stdin and stdout, receiving a tree into a staging directory beside its
// destination and landing it there (receive, manifest, commit), or sending
// one (send). stdout carries frames only; diagnostics go to stderr, bounded.
// The end of stdin (the kubelet closes it when the plugin is gone) ends it,
// and it removes what it started.
package agent

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/kubectl-concourse/kubectl-concourse/agent/frame"
	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
)

// Options tune Serve; the zero value is what the agent runs with.
type Options struct {
	// Stderr receives diagnostics, at most 64 KiB of them. Nil drops them.
	Stderr io.Writer
	// StagingGrace is how long a receive cut by the end of stdin, whose
	// request asked to keep its staging, leaves it for a retry to take
	// over before removing it. Zero means 5 s.
	StagingGrace time.Duration
	// Workers is the number of goroutines that write small files, beside
	// the one that reads the stream. Zero means one per two CPUs, from 1 to
	// 4: on two busy cores, landing the module cache's client-go (2,531
	// files) took 0.40 s with one writer, 0.51 s with two, 0.62 s with four.
	Workers int
	// Self is the SHA-256 (hex) of the running executable, for the hello.
	Self string
}

// errStdinClosed and errAborted end Serve without an error: the plugin is
// gone, or said it is done.
var (
	errStdinClosed = errors.New("stdin closed")
	errAborted     = errors.New("aborted")
)

type agent struct {
	opts Options
	fr   *frame.Reader
	fw   *frame.Writer
	out  *bufio.Writer
	logw *boundedWriter

	stage *staging // the staging this agent received into, until commit lands it
	// keepOnEOF: the receive into stage asked that the end of stdin leave
	// it for a retry (protocol.Request.KeepOnEOF).
	keepOnEOF bool
	// cache: the warm cache the last cache-manifest read, locked until
	// the apply that follows.
	cache *readCache
}

// Serve runs the protocol until in ends or the plugin aborts. It returns nil
// when it ended that way, having removed its staging.
func Serve(in io.Reader, out io.Writer, opts Options) error {
	if opts.StagingGrace == 0 {
		opts.StagingGrace = 5 * time.Second
	}
	if opts.Workers == 0 {
		opts.Workers = min(max(runtime.NumCPU()/2, 1), 4)
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	a := &agent{opts: opts, fr: frame.NewReader(bufio.NewReaderSize(in, 256<<10)), fw: frame.NewWriter(bw), out: bw,
		logw: &boundedWriter{w: opts.Stderr, left: 64 << 10}}
	err := a.serve()
	a.dropCache()
	if a.stage != nil {
		a.stage.discard(a.keepOnEOF && errors.Is(err, errStdinClosed), a.opts.StagingGrace)
	}
	if errors.Is(err, errStdinClosed) || errors.Is(err, errAborted) {
		return nil
	}
	return err
}

func (a *agent) serve() error {
	if err := frame.WriteHandshake(a.out); err != nil {
		return err
	}
	uid, gid := os.Getuid(), os.Getgid()
	if err := a.send(protocol.Hello{Arch: runtime.GOARCH, UID: uid, GID: gid, PID: os.Getpid(), Self: a.opts.Self}); err != nil {
		return err
	}
	for {
		t, p, err := a.fr.Next()
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return errStdinClosed
		}
		if err != nil {
			return err
		}
		if t != frame.Control {
			return fmt.Errorf("expected a request, got a frame of type %q", byte(t))
		}
		var req protocol.Request
		if err := json.Unmarshal(p, &req); err != nil {
			return fmt.Errorf("request: %w", err)
		}
		// Each operation writes its own replies; an error is the stream's
		// (or the plugin's) end.
		switch req.Op {
		case protocol.OpReceive:
			var reply protocol.Reply
			if reply, err = a.receive(req); err == nil {
				err = a.send(reply)
			}
		case protocol.OpManifest:
			err = a.manifest(req)
		case protocol.OpCommit:
			err = a.commit(req)
		case protocol.OpSend:
			err = a.sendTree(req)
		case protocol.OpCacheManifest:
			err = a.cacheManifest(req)
		case protocol.OpCacheApply:
			err = a.cacheApply(req)
		case protocol.OpAbort:
			return errAborted
		default:
			err = a.send(protocol.Reply{Error: fmt.Sprintf("unknown operation %q", req.Op)})
		}
		if err != nil {
			return err
		}
	}
}

// send writes v as a control frame and flushes.
func (a *agent) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := a.fw.Write(frame.Control, b); err != nil {
		return err
	}
	return a.out.Flush()
}

func (a *agent) logf(format string, args ...any) {
	fmt.Fprintf(a.logw, "kubectl-concourse-agent: "+format+"\n", args...)
}

// boundedWriter passes on at most left bytes: a container's stderr is read
// by the plugin, which keeps a tail, but an endless one costs the link.
type boundedWriter struct {
	mu   sync.Mutex
	w    io.Writer
	left int
}

func (b *boundedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.w == nil || b.left <= 0 {
		return len(p), nil
	}
	q := p[:min(len(p), b.left)]
	b.left -= len(q)
	b.w.Write(q)
	return len(p), nil
}
