package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/kubectl-concourse/kubectl-concourse/agent/client"
	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
	"github.com/kubectl-concourse/kubectl-concourse/transfer/untar"
)

// downloadByAgent downloads src to dest through the agent's send: the
// agent tars src and sends the manifest after the tar; here the extractor
// (transfer/untar: the stream is hostile, symlinks land as symlinks,
// nothing is written through one or outside the destination) writes it,
// and the two are compared before dest is replaced whole. The bytes are
// verified by the codec's checksums (zstd's or S2's, auto's codecs) or,
// with another, by every file's SHA-256 on both ends (fileSums). A broken
// stream or a difference is retried with a new agent, which sends the tree again:
// every file that arrives is rewritten, and what the source no longer has
// is removed, so that what lands is the tree as the last attempt found it.
// first is the agent the caller launched, in launch.
func downloadByAgent(ctx context.Context, rem *remote, first *client.Session, launch time.Duration, src, dest string, s settings) error {
	defer func() {
		if first != nil { // never used: the download failed here first
			first.Close()
		}
	}()
	_, base, err := SplitRemote(src)
	if err != nil {
		return err
	}
	req := protocol.Request{Path: protocol.Name(src), Codec: downloadCodec(s.compress, first.BinaryRate)}
	var newHash func() hash.Hash
	if fileSums(req.Codec, s.verify) {
		newHash = sha256.New
	} else {
		req.NoFileSums = true
	}
	s.verbosef("download: through the in-container agent (linux/%s, started in %d ms), %s%s\n", first.Hello.Arch, launch.Milliseconds(), codecName(req.Codec), crossedAt(first))
	return receiveLocally(dest, base, 0, newHash, s, func(ex *untar.Extractor) error {
		for attempt := 0; ; attempt++ {
			sess := first
			first = nil
			if sess == nil {
				var err error
				if sess, err = launchAgent(ctx, rem, "", s); err != nil {
					return fmt.Errorf("start the agent again: %w", err)
				}
			}
			err := sendAndCheck(ctx, sess, req, ex)
			var agentErr *client.AgentError
			if errors.As(err, &agentErr) {
				err = fmt.Errorf("in %s: %w", rem.container, err)
			}
			sess.Close() // what it sent is here and checked, or err says why not
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !transient(err) || ex.Refused() > 0 {
				return err // a local failure, the container's answer, or a hostile stream
			}
			if s.retries >= 0 && attempt >= s.retries {
				if errors.Is(err, errMismatch) || errors.Is(err, errSourceChanged) {
					return fmt.Errorf("the source changed during the download: %w", err)
				}
				return err
			}
			s.warnf("warning: %v; sending the whole tree again (retry %d)\n", err, attempt+1)
		}
	})
}

// fileSums says whether a download through the agent hashes every file
// on both ends: not when the codec's checksums verify every byte already,
// nor without --verify. zstd's is an XXH64 of the whole stream (one in 2^64
// that damage goes unseen); S2's a CRC-32C of every 1 MiB block (one in
// 2^32 a block), where a lost or repeated block also breaks the tar or the
// sizes the manifest compares. SHA-256 costs each end 0.19 s of CPU per 256
// MiB here, where the codecs' checksums come with their decoding: with the
// sums, an S2 download of 256 MiB of random bytes took 2.01 s against
// zstd's 1.69; without, 1.80 against 1.86.
func fileSums(codec string, verify bool) bool {
	return verify && codec != protocol.CodecZstd && codec != protocol.CodecS2
}

// sendAndCheck is one attempt: the agent's tar into ex, then its manifest
// compared with what ex wrote. A broken stream, a difference and a source
// that changed while the agent read it are transient; the agent's own
// refusal (no such file, permission denied) is not.
func sendAndCheck(ctx context.Context, sess *client.Session, req protocol.Request, ex *untar.Extractor) error {
	src := string(req.Path)
	var extractErr error
	arrived := &countedReader{}
	sent, err := sess.SendTo(ctx, req, func(tr io.Reader) error {
		arrived.r = tr
		extractErr = ex.Extract(arrived)
		return extractErr
	})
	var broken *untar.StreamError
	var agentErr *client.AgentError
	switch {
	case errors.As(err, &agentErr) && arrived.n > 0 && changedUnderAgent(agentErr.Msg):
		return fmt.Errorf("%w: %w", errSourceChanged, err)
	case errors.As(err, &agentErr) && arrived.n == 0 && strings.Contains(agentErr.Msg, "no such file or directory"):
		return fmt.Errorf("%s: no such file or directory in the container", src) // as the scripts say it
	case errors.As(err, &agentErr):
		return err
	case err != nil && extractErr != nil && !errors.As(extractErr, &broken):
		return extractErr // a local failure (no space here) broke the stream: it is the cause
	case err != nil:
		return &streamError{fmt.Errorf("the agent's stream broke before its end (cut on the way, or the agent ended): %w", err)}
	}
	if len(sent) == 0 {
		return fmt.Errorf("%s is neither a regular file nor a directory", src)
	}
	return checkAgainst(ex, sent, !req.NoFileSums)
}

// changedUnderAgent says whether the agent's send stopped because what
// it was reading went away or shrank (once it had begun: a path that is
// not there at all is the user's mistake, not a change).
func changedUnderAgent(msg string) bool {
	return strings.Contains(msg, "no such file or directory") || strings.Contains(msg, "shrank while it was sent")
}

// countedReader counts the bytes read through it.
type countedReader struct {
	r io.Reader
	n int64
}

func (c *countedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// checkAgainst compares what ex holds with the manifest of what the agent
// sent: the same files (by SHA-256 with sums, else whole), the same
// symlinks and directories. What the source does not have (left by an
// earlier attempt) is removed first; a file that differs is marked for the
// next attempt to rewrite.
func checkAgainst(ex *untar.Extractor, sent []protocol.Entry, sums bool) error {
	files := manifest{}
	links := map[string]string{}
	held := map[string]bool{}
	var dirs []string
	for _, e := range sent {
		rel := string(e.Path)
		if rel == "." {
			rel = ""
		}
		held[rel] = true
		switch e.Kind {
		case protocol.KindFile:
			if !sums {
				files[rel] = [32]byte{}
				continue
			}
			b, err := hex.DecodeString(e.SHA256)
			if err != nil || len(b) != sha256.Size {
				return &streamError{fmt.Errorf("the agent's manifest names no SHA-256 for %q", path.Join(".", rel))}
			}
			files[rel] = [32]byte(b)
		case protocol.KindSymlink:
			links[rel] = string(e.Link)
		case protocol.KindDir:
			dirs = append(dirs, rel)
		}
	}
	if err := ex.Prune(func(rel string) bool { return held[rel] }); err != nil {
		return err
	}
	var differ []string
	if sums {
		differ = compare(ex.Files(), files)
	} else {
		differ = incomplete(ex, files)
	}
	for rel, target := range ex.Links() {
		if links[rel] != target {
			differ = append(differ, rel)
		}
	}
	for rel := range links {
		if _, ok := ex.Links()[rel]; !ok {
			differ = append(differ, rel)
		}
	}
	for _, rel := range dirs {
		if !ex.IsDir(rel) {
			differ = append(differ, rel)
		}
	}
	if len(differ) == 0 {
		return nil
	}
	sort.Strings(differ)
	for _, rel := range differ {
		ex.Invalidate(rel)
	}
	return fmt.Errorf("%w (%d entries, first: %q)", errMismatch, len(differ), path.Join(".", differ[0]))
}

// incomplete lists the files of want that ex does not hold whole, and
// the files ex holds that want does not name.
func incomplete(ex *untar.Extractor, want manifest) []string {
	held := ex.Files()
	var differ []string
	for rel := range want {
		if _, ok := held[rel]; !ok || !ex.Complete(rel) {
			differ = append(differ, rel)
		}
	}
	for rel := range held {
		if _, ok := want[rel]; !ok {
			differ = append(differ, rel)
		}
	}
	return differ
}

// downloadCodec chooses how the agent compresses a download: as --compress
// says, and for auto by how fast the agent's binary crossed (linkCodec),
// whatever the data: the plugin cannot know a download's size or ratio
// before it arrives, and need not, for neither codec costs much on data
// that does not compress (256 MiB of random bytes over loopback: zstd 1.77
// s against 1.85 s uncompressed), and real source shrinks to a fifth or a
// seventh. Either codec's checksums spare every file's SHA-256 (fileSums).
func downloadCodec(compress string, binaryRate float64) string {
	switch compress {
	case compressNone:
		return protocol.CodecNone
	case compressGzip:
		return protocol.CodecGzip
	case compressAuto:
		return linkCodec(binaryRate)
	}
	return protocol.CodecZstd
}
