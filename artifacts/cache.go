package artifacts

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"k8s.io/cli-runtime/pkg/printers"

	"github.com/kubectl-concourse/kubectl-concourse/agent/client"
	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
)

// UploadCached brings the warm cache at cacheDir, a directory of the
// container that outlives the task (a claim's root), to exactly the local
// directory src, as an upload of it would land: the agent lists what the
// cache holds as it wrote it, only the files it lacks or holds with other
// content or mode are sent (size and modification time are the quick
// check, the content decides), and the agent brings the cache's tree
// (protocol.CacheTree) to exactly the local tree (deletions, modes,
// symlinks, empty directories, directories' times), repairing whatever a
// previous task did to it: the task uses that tree in place. The two
// sides' manifest digests are compared. A cache that cannot be brought to
// the tree that way is said in one line, and everything is sent again
// through it; the agent is needed.
func UploadCached(ctx context.Context, ep Endpoint, s Settings, src, cacheDir string) error {
	return uploadCached(ctx, ep, s, s.internal(), src, cacheDir)
}

// uploadCached is UploadCached with its internal settings (the tests' -v).
func uploadCached(ctx context.Context, ep Endpoint, s Settings, in settings, src, cacheDir string) (err error) {
	rem := &remote{exec: ep.Executor, container: ep.Container, workingDir: ep.WorkingDir}
	dest := path.Join(cacheDir, protocol.CacheTree)
	if in.agent == agentOff {
		return fmt.Errorf("upload %s into %s: the warm cache needs the in-container agent (%s=off)", src, dest, agentEnv)
	}
	sess, err := launchAgent(ctx, rem, cacheDir, in)
	if err != nil {
		return fmt.Errorf("upload %s into %s: %w", src, dest, err)
	}
	defer func() {
		if sess == nil {
			return
		}
		if cerr := sess.Close(); err == nil {
			err = cerr
		}
	}()
	err = syncCache(ctx, sess, src, cacheDir, s.IncludeIgnored, in, false)
	var local localError
	if errors.As(err, &local) {
		return fmt.Errorf("upload %s into %s: %w", src, dest, local.err)
	}
	if err == nil || ctx.Err() != nil {
		return err
	}
	in.warnf("warning: the warm cache of %s: %v; sending it whole\n", printers.EscapeTerminal(filepath.Base(src)), err)
	// A new agent: the failure may have been its stream's.
	_ = sess.Close()
	if sess, err = launchAgent(ctx, rem, cacheDir, in); err != nil {
		sess = nil
		return fmt.Errorf("upload %s into %s: %w", src, dest, err)
	}
	if err = syncCache(ctx, sess, src, cacheDir, s.IncludeIgnored, in, true); err != nil {
		if errors.As(err, &local) {
			err = local.err
		}
		return fmt.Errorf("upload %s into %s: %w", src, dest, err)
	}
	return nil
}

// syncCache is UploadCached's work through one agent; whole sends every
// file, trusting none the cache holds.
func syncCache(ctx context.Context, sess *client.Session, src, cacheDir string, includeIgnored bool, s settings, whole bool) error {
	abs, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	files, err := selectFiles(ctx, abs, !includeIgnored, s.warnf)
	if err != nil {
		return localError{err}
	}
	p := newPacker(abs, protocol.CacheTree, files, s.preserveOwner, s.warnf, nil)
	p.newHash, p.manifest = sha256.New, map[string]protocol.Entry{}
	// The local tree's lstat walk overlaps the agent's (cache-manifest).
	var stats []localStat
	walked := make(chan error, 1)
	go func() {
		walked <- p.walk(func(rel string, fi fs.FileInfo) error {
			stats = append(stats, localStat{rel, fi})
			return nil
		})
	}()
	held, err := sess.CacheManifest(ctx, protocol.Name(cacheDir))
	if werr := <-walked; werr != nil {
		return localError{werr}
	}
	if err != nil {
		return err
	}
	if whole {
		held = nil
	}
	kept, mtimes, send := compareWithCache(abs, stats, held)
	codec := protocol.CodecNone
	if send >= smallTransfer {
		ratio, _ := localRatio(p)
		codec = agentCodec(s.compress, send, ratio)
	}
	b := s.progress.bar("uploading "+filepath.Base(abs), send)
	p.progress = b.counter()
	s.verbosef("upload: through the warm cache: %d of its files held, %d bytes to send, %s\n", len(kept), send, codecName(codec))

	pr, pw := io.Pipe()
	packed := make(chan error, 1)
	go func() {
		err := p.pack(pw, func(rel string) bool { _, ok := kept[rel]; return ok }, endEntry{})
		pw.CloseWithError(err)
		packed <- err
	}()
	var want []protocol.CacheEntry
	wantFn := func() []protocol.CacheEntry {
		want = make([]protocol.CacheEntry, 0, len(p.manifest)+len(kept))
		for rel, e := range p.manifest {
			want = append(want, protocol.CacheEntry{Entry: e, MTime: mtimes[rel]})
		}
		for rel, c := range kept {
			want = append(want, protocol.CacheEntry{Entry: c.Entry, MTime: mtimes[rel]})
		}
		return want
	}
	reply, err := sess.CacheApply(ctx, protocol.Request{Path: protocol.Name(cacheDir), Codec: codec}, pr, wantFn)
	pr.CloseWithError(errAgentStopped)
	if perr := <-packed; perr != nil && !errors.Is(perr, errAgentStopped) {
		b.end(false)
		return localError{perr} // a file we cannot read: a full upload would fail on it too
	}
	b.end(err == nil)
	if err != nil {
		return err
	}
	entries := make([]protocol.Entry, len(want))
	for i, e := range want {
		entries[i] = e.Entry
	}
	if protocol.ManifestDigest(entries) != reply.Digest {
		return fmt.Errorf("the cached tree: %w", errMismatch)
	}
	return nil
}

// localStat is an entry of the local tree as its walk found it.
type localStat struct {
	rel string
	fi  fs.FileInfo
}

// compareWithCache says which local files the cache already holds as they
// are here (kept): same mode and size, and the same mtime or, when only
// the mtime moved, the same content; send counts the bytes of the others.
// mtimes are every entry's local mtime, which the cache records.
func compareWithCache(abs string, stats []localStat, held []protocol.CacheEntry) (kept map[string]protocol.CacheEntry, mtimes map[string]int64, send int64) {
	cached := make(map[protocol.Name]protocol.CacheEntry, len(held))
	for _, e := range held {
		cached[e.Path] = e
	}
	mtimes = make(map[string]int64, len(stats))
	kept = map[string]protocol.CacheEntry{}
	for _, st := range stats {
		rel, fi := st.rel, st.fi
		mtimes[rel] = fi.ModTime().UnixNano()
		if !fi.Mode().IsRegular() {
			continue
		}
		c, ok := cached[manifestName(rel)]
		if ok && c.Mode == headerMode(fi) && c.Size == fi.Size() &&
			(c.MTime == fi.ModTime().UnixNano() || sameContent(filepath.Join(abs, filepath.FromSlash(rel)), c.SHA256)) {
			kept[rel] = c
			continue
		}
		send += fi.Size()
	}
	return kept, mtimes, send
}

// localError is a failure of the local side (git, a file that cannot be
// read): the same in a full upload, so it is said as itself, with no
// fallback.
type localError struct{ err error }

func (e localError) Error() string { return e.err.Error() }
func (e localError) Unwrap() error { return e.err }

// manifestName is a packer's tree path as a manifest names it.
func manifestName(rel string) protocol.Name {
	if rel == "" {
		return "."
	}
	return protocol.Name(rel)
}

// headerMode is the mode a file is sent with (record's).
func headerMode(fi fs.FileInfo) uint32 {
	h, err := tar.FileInfoHeader(fi, "")
	if err != nil {
		return 0
	}
	return uint32(h.Mode) & 0o7777
}

// sameContent says whether the file at p has the SHA-256 sha.
func sameContent(p, sha string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false
	}
	return hex.EncodeToString(h.Sum(nil)) == sha
}
