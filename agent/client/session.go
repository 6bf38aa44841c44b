package client

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/kubectl-concourse/kubectl-concourse/agent/codec"
	"github.com/kubectl-concourse/kubectl-concourse/agent/frame"
	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
)

// Session is a running agent. Its methods run one at a time; a method
// whose context ends, or whose stream breaks, ends the session (the agent
// then removes its staging), and every later call fails.
type Session struct {
	Hello protocol.Hello
	// BinaryRate is how fast the agent's binary crossed the link at the
	// launch, in bytes a second, from the launcher's first line to the
	// agent's hello: a measure of the link (plus the agent's start), 0
	// when no binary crossed (a kept copy ran).
	BinaryRate float64

	mu     sync.Mutex
	stdin  io.WriteCloser
	stdout io.Closer
	in     *bufio.Writer
	fr     *frame.Reader
	fw     *frame.Writer
	wait   func() error // the agent's end
	kill   func()       // ends the exec at once
	broken error
}

// Dial speaks to an agent already started on these streams (its stdin and
// stdout): it reads the handshake and the hello. wait, called by Close,
// waits for the agent's end; kill ends it at once (both may be nil).
func Dial(ctx context.Context, stdin io.WriteCloser, stdout io.ReadCloser, wait func() error, kill func()) (*Session, error) {
	return dial(ctx, stdin, bufio.NewReaderSize(stdout, 256<<10), stdout, wait, kill)
}

func dial(ctx context.Context, stdin io.WriteCloser, br *bufio.Reader, stdout io.Closer, wait func() error, kill func()) (*Session, error) {
	s := &Session{stdin: stdin, stdout: stdout, in: bufio.NewWriterSize(stdin, 256<<10), wait: wait, kill: kill}
	s.fw = frame.NewWriter(s.in)
	stop := context.AfterFunc(ctx, s.abandon)
	defer stop()
	noise, err := frame.ReadHandshake(br)
	if err != nil {
		s.abandon()
		return nil, s.ctxErr(ctx, &handshakeError{noise: noise, err: err})
	}
	s.fr = frame.NewReader(br)
	if err := s.readReply(&s.Hello); err != nil {
		s.abandon()
		return nil, s.ctxErr(ctx, fmt.Errorf("agent hello: %w", err))
	}
	return s, nil
}

// handshakeError is an agent that did not answer, with what its side
// printed instead (the launcher's reason, a shell's complaint).
type handshakeError struct {
	noise []byte
	err   error
}

func (e *handshakeError) Error() string {
	if len(e.noise) == 0 {
		return e.err.Error()
	}
	return fmt.Sprintf("%v (it printed %q)", e.err, e.noise[max(0, len(e.noise)-200):])
}

func (e *handshakeError) Unwrap() error { return e.err }

// abandon ends the session without a word: the agent sees its stdin end.
func (s *Session) abandon() {
	s.stdin.Close()
	s.stdout.Close()
	if s.kill != nil {
		s.kill()
	}
}

func (s *Session) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// op runs fn as the session's one operation, ending the session when ctx
// ends or fn breaks the stream.
func (s *Session) op(ctx context.Context, fn func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return s.broken
	}
	stop := context.AfterFunc(ctx, s.abandon)
	err := fn()
	if !stop() { // the context ended: whatever fn says, that is why
		err = ctx.Err()
	}
	var ae *AgentError
	if err != nil && !errors.As(err, &ae) {
		s.broken = fmt.Errorf("agent session ended: %w", err)
		s.abandon()
	}
	return err
}

// AgentError is an operation's failure as the agent reported it; the
// session goes on.
type AgentError struct{ Op, Msg string }

func (e *AgentError) Error() string { return "agent " + e.Op + ": " + e.Msg }

func (s *Session) request(req protocol.Request) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if err := s.fw.Write(frame.Control, b); err != nil {
		return err
	}
	return s.in.Flush()
}

func (s *Session) readReply(v any) error {
	t, p, err := s.fr.Next()
	if err != nil {
		return err
	}
	if t != frame.Control {
		return fmt.Errorf("expected a reply, got a frame of type %q", byte(t))
	}
	return json.Unmarshal(p, v)
}

func (s *Session) reply(op string) (protocol.Reply, error) {
	var r protocol.Reply
	if err := s.readReply(&r); err != nil {
		return r, err
	}
	if r.Error != "" {
		return r, &AgentError{Op: op, Msg: r.Error}
	}
	return r, nil
}

// Receive sends the tar stream tr (as transfer's packer writes it, without
// its end entry), compressed with req.Codec, for the agent to extract into
// a staging beside req.Dest; req.Staging names one an interrupted attempt
// left, to reuse. The reply names the staging and gives its counts and
// manifest digest. tr is read until it ends or the session does: a reader
// that blocks forever blocks Receive, even once ctx has ended.
func (s *Session) Receive(ctx context.Context, req protocol.Request, tr io.Reader) (protocol.Reply, error) {
	req.Op = protocol.OpReceive
	var r protocol.Reply
	err := s.op(ctx, func() error {
		if err := s.request(req); err != nil {
			return err
		}
		if err := s.copyStream(req.Codec, tr); err != nil {
			return err
		}
		if err := s.in.Flush(); err != nil {
			return err
		}
		var err error
		r, err = s.reply(protocol.OpReceive)
		return err
	})
	return r, err
}

// copyStream sends tr as one data stream, compressed with codecName.
func (s *Session) copyStream(codecName string, tr io.Reader) error {
	return s.writeStream(codecName, func(w io.Writer) error {
		_, err := io.Copy(w, tr)
		return err
	})
}

// writeStream sends what write writes as one data stream, compressed with
// codecName.
func (s *Session) writeStream(codecName string, write func(io.Writer) error) error {
	dw := frame.NewDataWriter(s.fw)
	cw, err := codec.NewWriter(codecName, dw)
	if err != nil {
		return err
	}
	if err := write(cw); err != nil {
		return err
	}
	if err := cw.Close(); err != nil {
		return err
	}
	return dw.Close()
}

// Manifest lists the staging the last Receive filled, each file with its
// SHA-256, and the manifest's digest.
func (s *Session) Manifest(ctx context.Context, staging protocol.Name) ([]protocol.Entry, string, error) {
	var entries []protocol.Entry
	var r protocol.Reply
	err := s.op(ctx, func() error {
		if err := s.request(protocol.Request{Op: protocol.OpManifest, Staging: staging}); err != nil {
			return err
		}
		var err error
		if entries, err = protocol.ReadManifest(frame.NewDataReader(s.fr)); err != nil {
			return err
		}
		r, err = s.reply(protocol.OpManifest)
		return err
	})
	return entries, r.Digest, err
}

// Commit lands the staging at dest. The reply says Landed and How; the
// agent removes the replaced tree after it.
func (s *Session) Commit(ctx context.Context, dest, staging protocol.Name) (protocol.Reply, error) {
	var r protocol.Reply
	err := s.op(ctx, func() error {
		if err := s.request(protocol.Request{Op: protocol.OpCommit, Dest: dest, Staging: staging}); err != nil {
			return err
		}
		var err error
		r, err = s.reply(protocol.OpCommit)
		return err
	})
	return r, err
}

// ErrMismatch is a sent tree whose bytes, as they arrived, differ from
// what the agent read.
var ErrMismatch = errors.New("the tree that arrived differs from the one the agent sent")

// Send has the agent tar path and writes the (decompressed) tar to w. Each
// file is hashed here as it passes, and the whole is checked against the
// manifest the agent sends after the tar: a difference is ErrMismatch. It
// returns that manifest.
func (s *Session) Send(ctx context.Context, path protocol.Name, codecName string, w io.Writer) ([]protocol.Entry, error) {
	var got []protocol.Entry
	entries, err := s.SendTo(ctx, protocol.Request{Path: path, Codec: codecName}, func(tr io.Reader) error {
		var err error
		got, err = readTar(io.TeeReader(tr, w))
		return err
	})
	if err != nil {
		return entries, err
	}
	if d := protocol.ManifestDigest(got); d != protocol.ManifestDigest(entries) {
		return entries, fmt.Errorf("%w: %s", ErrMismatch, firstDifference(got, entries))
	}
	return entries, nil
}

// SendTo has the agent tar req.Path (compressed with req.Codec) and hands
// the decompressed tar to consume; then it reads the manifest the agent
// sends after the tar (each file hashed as the agent read it, unless
// req.NoFileSums), which the caller compares with what consume made of
// the tar: the verification is the caller's, from its one read. The
// decompressed stream is read to its end whatever consume left of it, so
// that zstd's checksum of the whole is checked. When the agent stopped
// midway, its tar is cut and its reason is the error (an *AgentError);
// when consume fails before the stream's end (a local failure), its error
// is returned and the session ends, for the rest of the stream is not
// worth reading.
func (s *Session) SendTo(ctx context.Context, req protocol.Request, consume func(tar io.Reader) error) ([]protocol.Entry, error) {
	req.Op = protocol.OpSend
	var entries []protocol.Entry
	err := s.op(ctx, func() error {
		if err := s.request(req); err != nil {
			return err
		}
		data := &endSeen{r: frame.NewDataReader(s.fr)}
		dec, err := codec.NewReader(req.Codec, data)
		if err != nil {
			return err
		}
		consumeErr := consume(dec)
		if consumeErr == nil {
			// The tar's end is not the codec's: the checksum follows it.
			_, consumeErr = io.Copy(io.Discard, dec)
		}
		dec.Close()
		if consumeErr != nil && !data.ended {
			return consumeErr
		}
		if _, err := io.Copy(io.Discard, data); err != nil {
			return err
		}
		if entries, err = protocol.ReadManifest(frame.NewDataReader(s.fr)); err != nil {
			return err
		}
		r, err := s.reply(protocol.OpSend)
		if err != nil {
			return err // the agent's reason for the cut
		}
		if consumeErr != nil {
			return consumeErr
		}
		if protocol.ManifestDigest(entries) != r.Digest {
			return errors.New("the agent's manifest arrived damaged")
		}
		return nil
	})
	return entries, err
}

// endSeen notes that a data stream reached its end frame.
type endSeen struct {
	r     io.Reader
	ended bool
}

func (e *endSeen) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.ended = true
	}
	return n, err
}

// readTar reads a tar to its end, hashing its files: the manifest of what
// arrived, named as the agent names a tree (the top ".").
func readTar(r io.Reader) ([]protocol.Entry, error) {
	tr := tar.NewReader(r)
	var entries []protocol.Entry
	top := ""
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			_, err = io.Copy(io.Discard, r) // the rest reaches the writer too
			return entries, err
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if top == "" {
			top = name
		}
		p := "."
		if name != top {
			p = strings.TrimPrefix(name, top+"/")
		}
		e := protocol.Entry{Path: protocol.Name(p), Mode: uint32(hdr.Mode) & 0o7777}
		switch hdr.Typeflag {
		case tar.TypeReg:
			h := sha256.New()
			n, err := io.Copy(h, tr)
			if err != nil {
				return nil, err
			}
			e.Kind, e.Size, e.SHA256 = protocol.KindFile, n, hex.EncodeToString(h.Sum(nil))
		case tar.TypeDir:
			e.Kind = protocol.KindDir
		case tar.TypeSymlink:
			e.Kind, e.Link = protocol.KindSymlink, protocol.Name(hdr.Linkname)
		}
		entries = append(entries, e)
	}
}

func firstDifference(got, want []protocol.Entry) string {
	byPath := map[protocol.Name]protocol.Entry{}
	for _, e := range got {
		byPath[e.Path] = e
	}
	for _, w := range want {
		if g, ok := byPath[w.Path]; !ok {
			return fmt.Sprintf("%q missing", w.Path)
		} else if g != w {
			return fmt.Sprintf("%q differs", w.Path)
		}
	}
	return fmt.Sprintf("%d entries arrived, %d were sent", len(got), len(want))
}

// Abort tells the agent to remove its staging and exit, and waits for it.
func (s *Session) Abort(ctx context.Context) error {
	err := s.op(ctx, func() error { return s.request(protocol.Request{Op: protocol.OpAbort}) })
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close ends the agent's stdin, which ends it (removing a staging not
// committed), and waits for it to exit.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stdin.Close()
	var err error
	if s.wait != nil {
		err = s.wait()
		s.wait = nil
	}
	s.stdout.Close()
	if s.broken == nil {
		s.broken = errors.New("agent session closed")
	}
	return err
}
