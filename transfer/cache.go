package transfer

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

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
	scan := scanLocal(ctx, src, s.IncludeIgnored, in)
	sess, err := launchAgentKept(ctx, rem, cacheDir, in)
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
	err = syncCache(ctx, sess, scan, cacheDir, in, false)
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
	if sess, err = launchAgentKept(ctx, rem, cacheDir, in); err != nil {
		sess = nil
		return fmt.Errorf("upload %s into %s: %w", src, dest, err)
	}
	if err = syncCache(ctx, sess, scan, cacheDir, in, true); err != nil {
		if errors.As(err, &local) {
			err = local.err
		}
		return fmt.Errorf("upload %s into %s: %w", src, dest, err)
	}
	return nil
}

// localScan is the local tree's selection and lstat walk, started before
// the agent is launched so that the two overlap; the pack replays it
// instead of walking the tree again.
type localScan struct {
	abs   string
	files []string
	stats []localStat
	done  chan struct{}
	err   error
}

func scanLocal(ctx context.Context, src string, includeIgnored bool, s settings) *localScan {
	sc := &localScan{done: make(chan struct{})}
	go func() {
		defer close(sc.done)
		sc.err = sc.scan(ctx, src, includeIgnored, s)
	}()
	return sc
}

func (sc *localScan) scan(ctx context.Context, src string, includeIgnored bool, s settings) (err error) {
	if sc.abs, err = filepath.Abs(src); err != nil {
		return err
	}
	if sc.files, err = selectFiles(ctx, sc.abs, !includeIgnored, s.warnf); err != nil {
		return err
	}
	p := newPacker(sc.abs, protocol.CacheTree, sc.files, s.preserveOwner, s.warnf, nil)
	return p.walk(func(rel string, fi fs.FileInfo) error {
		sc.stats = append(sc.stats, localStat{rel, fi})
		return nil
	})
}

// wait is the scan's end: a failure is the local tree's.
func (sc *localScan) wait() error {
	<-sc.done
	if sc.err != nil {
		return localError{sc.err}
	}
	return nil
}

// syncCache is UploadCached's work through one agent, on the local tree
// as sc found it; whole sends every file, trusting none the cache holds.
func syncCache(ctx context.Context, sess *client.Session, sc *localScan, cacheDir string, s settings, whole bool) error {
	held, err := sess.CacheManifest(ctx, protocol.Name(cacheDir))
	if werr := sc.wait(); werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	abs, stats := sc.abs, sc.stats
	p := newPacker(abs, protocol.CacheTree, sc.files, s.preserveOwner, s.warnf, nil)
	p.newHash, p.manifest, p.listed = sha256.New, map[string]protocol.Entry{}, stats
	if whole {
		held = nil
	}
	kept, mtimes, send := compareWithCache(abs, stats, held)
	codec := protocol.CodecNone
	if send >= smallTransfer {
		ratio, _ := localRatio(p)
		codec = agentCodec(s.compress, send, ratio, sess.BinaryRate)
	}
	b := s.progress.bar("uploading "+filepath.Base(abs), send)
	p.progress = b.counter()
	dirs := 0
	for _, c := range kept {
		if c.Kind == protocol.KindDir {
			dirs++
		}
	}
	s.verbosef("upload: through the warm cache: %d of its files and %d directories held, %d bytes to send, %s\n",
		len(kept)-dirs, dirs, send, codecName(codec))

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

// compareWithCache says which local files and directories the cache
// already holds as they are here (kept): a file with the same mode and
// size, and the same mtime or, when only the mtime moved, the same
// content; a directory with the same mode and time. send counts the bytes
// of the other files.
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
		c, ok := cached[manifestName(rel)]
		if fi.IsDir() {
			// As the cache's directory stands: no header to send (but the
			// top's: the archive begins with it). The cache holds the
			// local time to the second, as a header carries it.
			if rel != "" && ok && c.Kind == protocol.KindDir && c.Mode == headerMode(fi) && c.MTime == fi.ModTime().Truncate(time.Second).UnixNano() {
				kept[rel] = c
			}
			continue
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		if ok && c.Kind == protocol.KindFile && c.Mode == headerMode(fi) && c.Size == fi.Size() &&
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
	got, err := protocol.ContentSHA256(f)
	return err == nil && got == sha
}
