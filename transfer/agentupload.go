package transfer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/kubectl-concourse/kubectl-concourse/agent/client"
	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
)

// uploadByAgent uploads the packer's tree as dest/name through the agent:
// it arrives in a staging directory beside the destination, every file
// hashed as it is written, and lands as a real directory by one
// renameat2(RENAME_EXCHANGE) (two renames where the file system has no
// exchange), under a lock a killed agent cannot leave held. What is sent
// is compared with what arrived by the two sides' manifest digests; a
// broken stream or a difference is retried, with only the files that did
// not arrive intact when the agent could list them. inPlace: dest/name is
// a directory nothing uses yet (an input of a task that has not started),
// which the tree arrives straight into, with nothing to land. first is the
// agent the caller launched; a retry launches its own.
func uploadByAgent(ctx context.Context, rem *remote, first *client.Session, p *packer, dest, name string, inPlace bool, codec string, s settings) error {
	target := protocol.Name(path.Join(dest, name))
	staging := protocol.NewStagingName()
	if inPlace {
		staging = ""
	}
	p.newHash, p.hashLater = sha256.New, false
	p.manifest = map[string]protocol.Entry{}
	s.verbosef("upload: through the in-container agent (linux/%s), %s%s\n", first.Hello.Arch, codecName(codec), crossedAt(first))
	var skip func(string) bool // nil: send everything
	for attempt := 0; ; attempt++ {
		sess := first
		first = nil
		if sess == nil {
			var err error
			if sess, err = launchAgent(ctx, rem, dest, s); err != nil {
				return fmt.Errorf("start the agent again: %w", err)
			}
		}
		landed, retry, err := receiveAndLand(ctx, sess, p, target, staging, codec, skip, s)
		var agentErr *client.AgentError
		if errors.As(err, &agentErr) {
			err = fmt.Errorf("in %s: %w", rem.container, err)
		}
		cerr := sess.Close()
		switch {
		case landed:
			return nil
		case err == nil:
			err = cerr
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if retry == nil || s.retries >= 0 && attempt >= s.retries {
			return err
		}
		s.warnf("warning: %v; resuming (retry %d)\n", err, attempt+1)
		skip = retry
	}
}

// receiveAndLand is one attempt: the tree into the staging, the digests
// compared, the commit; with no staging, the tree into target itself and
// the digests compared. When it did not land, retry (nil: do not) says what
// the next attempt may leave out.
func receiveAndLand(ctx context.Context, sess *client.Session, p *packer, target, staging protocol.Name, codec string,
	skip func(string) bool, s settings) (landed bool, retry func(string) bool, err error) {
	pr, pw := io.Pipe()
	packed := make(chan error, 1)
	go func() {
		err := p.pack(pw, skip, endEntry{})
		pw.CloseWithError(err)
		packed <- err
	}()
	inPlace := staging == ""
	reply, err := sess.Receive(ctx, protocol.Request{Dest: target, Staging: staging, Codec: codec,
		PreserveOwner: p.preserveOwner, KeepOnEOF: !inPlace, InPlace: inPlace}, pr)
	pr.CloseWithError(errAgentStopped)
	if perr := <-packed; perr != nil && !errors.Is(perr, errAgentStopped) {
		return false, nil, perr // a local failure (a file we cannot read) is the cause
	}
	var agentErr *client.AgentError
	switch {
	case errors.As(err, &agentErr):
		return false, nil, err // the container's answer: retrying repeats it
	case err != nil:
		return false, sendAll, fmt.Errorf("send: %w", err)
	}
	if want := protocol.ManifestDigest(entries(p.manifest)); reply.Digest != want {
		got, _, merr := sess.Manifest(ctx, reply.Staging)
		if merr != nil {
			return false, sendAll, fmt.Errorf("the staged files: %w", errMismatch)
		}
		intact := intactFiles(p.manifest, got)
		return false, func(rel string) bool { return intact[rel] }, fmt.Errorf("the staged tree (%d of its files intact): %w", len(intact), errMismatch)
	}
	if inPlace {
		s.verbosef("upload: received %s in place\n", target)
		return true, nil, nil
	}
	c, err := sess.Commit(ctx, target, reply.Staging)
	switch {
	case err == nil && c.Landed:
		s.verbosef("upload: landed %s by %s\n", target, c.How)
		return true, nil, nil
	case err == nil:
		return false, nil, fmt.Errorf("land %s: the agent did not say it landed", target)
	case errors.As(err, &agentErr):
		return false, nil, fmt.Errorf("land %s: %w", target, err)
	}
	return false, nil, fmt.Errorf("land %s: the connection broke before the agent answered, so whether the upload landed is unknown; upload again (the tree is replaced whichever is there): %w", target, err)
}

func sendAll(string) bool { return false }

// entries are a manifest's entries.
func entries(m map[string]protocol.Entry) []protocol.Entry {
	out := make([]protocol.Entry, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	return out
}

// intactFiles are the regular files the agent holds as they were sent.
func intactFiles(sent map[string]protocol.Entry, got []protocol.Entry) map[string]bool {
	held := map[protocol.Name]protocol.Entry{}
	for _, e := range got {
		held[e.Path] = e
	}
	intact := map[string]bool{}
	for rel, e := range sent {
		if h, ok := held[e.Path]; ok && e.Kind == protocol.KindFile && h == e {
			intact[rel] = true
		}
	}
	return intact
}

// errAgentStopped ends a pack whose reader, the agent's stream, has ended:
// the agent's own error is the one to report.
var errAgentStopped = errors.New("the agent stopped reading")
