// Package untar lands tar streams that come from a container, which it
// treats as hostile: nothing an archive holds can make it write outside
// the destination. Symlinks are data, kept as the archive has them
// wherever they point; what is refused is writing through one.
//
// It imports the standard library only (and treeroot, which does too), so
// that fuzzing it (FuzzExtract) instruments nothing else.
package untar

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/kubectl-concourse/kubectl-concourse/treeroot"
)

type nodeKind int

const (
	kindDir nodeKind = iota + 1
	kindFile
	kindSymlink
)

// node is what the extractor knows of one path of the tree it builds.
type node struct {
	kind     nodeKind
	mode     fs.FileMode // permission and sticky bits to apply at the end
	mtime    time.Time
	uid, gid int
	implicit bool     // a directory created for a child before (or without) its own entry
	complete bool     // a file whose bytes all arrived
	sum      [32]byte // checksum of a complete file (Options.NewHash)
	target   string   // a symlink's target
}

// Options are an Extractor's choices.
type Options struct {
	// PreserveOwner sets every entry's owner as the archive names it.
	PreserveOwner bool
	// Warnf prints one warning line (the format ends with a newline):
	// what was skipped, dropped or refused. Names from the archive are
	// already escaped for a terminal.
	Warnf func(format string, a ...any)
	// Progress, when set, counts the bytes of file content written.
	Progress func(n int64)
	// NewHash, when set, makes the checksum of every file received, as
	// Files returns it.
	NewHash func() hash.Hash
}

// Extractor writes tar streams from a container into a fresh directory it
// alone writes to (root), under the entry named top. It trusts nothing in
// the stream: names are checked by EntryPath, parents must be directories
// it created itself (so no entry is written through a symlink, or under a
// file), symlinks are created only by Finish, once every other entry is
// written, and all writes go through os.Root, which refuses to leave root
// even if something else changed the directory under us. A symlink itself
// is data: it lands as the archive has it, absolute or leading out of the
// tree, as tar and fly land it.
//
// An Extractor survives several streams (retries): it remembers what is
// complete, and a file sent again is rewritten.
type Extractor struct {
	root          *os.Root
	top           string // the landing entry's name inside root
	prefix        string // the top entry's name in the archive
	preserveOwner bool
	warnf         func(format string, a ...any)
	progress      func(n int64)
	newHash       func() hash.Hash // nil: no checksums

	nodes    map[string]*node
	unsafe   []error
	finished bool // Finish ran: symlinks exist, nothing more may be written
	buf      []byte
	// opened resolves names from their directories, kept open while a
	// stream lands and while Finish runs.
	opened *treeroot.Dirs
}

// New returns an Extractor that lands, in root, the archive entry prefix
// (the source's base name) and everything under it as root's entry top.
func New(root *os.Root, top, prefix string, o Options) *Extractor {
	warnf := o.Warnf
	if warnf == nil {
		warnf = func(string, ...any) {}
	}
	return &Extractor{
		root: root, top: top, prefix: prefix, preserveOwner: o.PreserveOwner,
		warnf: warnf, progress: o.Progress, newHash: o.NewHash,
		nodes: map[string]*node{}, opened: treeroot.New(root),
		buf: make([]byte, 256<<10),
	}
}

// StreamError reports that the stream broke while it was read (the
// archive is damaged or ends early, or its reader failed: a cut), as
// opposed to a failure to write here what it carried. A retry may fix it.
type StreamError struct{ Err error }

func (e *StreamError) Error() string { return e.Err.Error() }
func (e *StreamError) Unwrap() error { return e.Err }

// errFinished: Finish already created the symlinks, and a write after them
// could go through one.
var errFinished = errors.New("the extractor has finished: nothing more may be written")

// name is rel's name in the archive, for messages.
func (e *Extractor) name(rel string) string {
	return path.Join(e.prefix, rel)
}

// local is rel's name inside root.
func (e *Extractor) local(rel string) string {
	if rel == "" {
		return e.top
	}
	return e.top + "/" + rel
}

// Extract reads one stream to its end. It accepts concatenated archives
// (as `tar --ignore-zeros` does), because xargs may split a retry's file
// list over several tar runs. A returned error is the stream's breaking
// (a *StreamError) or a local failure; refused entries are collected,
// warned about, counted by Refused and reported by Finish.
func (e *Extractor) Extract(r io.Reader) error {
	if e.finished {
		return errFinished
	}
	defer e.opened.Close()
	br := bufio.NewReaderSize(r, 256<<10)
	seen := map[string]bool{}
	for {
		more, err := nextArchive(br)
		if err != nil || !more {
			return err
		}
		tr := tar.NewReader(br)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return &StreamError{fmt.Errorf("read archive: %w", err)}
			}
			if err := e.entry(tr, h, seen); err != nil {
				if !errors.Is(err, errUnsafe) {
					return err
				}
				e.refuse(err)
			}
		}
	}
}

// nextArchive skips the zero blocks between concatenated archives and says
// whether another archive follows.
func nextArchive(br *bufio.Reader) (bool, error) {
	for {
		b, err := br.Peek(512)
		if len(b) == 0 && err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, &StreamError{fmt.Errorf("read archive: %w", err)}
		}
		if !bytes.Equal(b, zeroBlock[:]) {
			return true, nil
		}
		if _, err := br.Discard(512); err != nil {
			return false, err
		}
	}
}

var zeroBlock [512]byte

func (e *Extractor) refuse(err error) {
	e.unsafe = append(e.unsafe, err)
	e.warnf("warning: refused %s\n", escape(strings.TrimPrefix(err.Error(), errUnsafe.Error()+": ")))
}

// Refused is the number of entries refused so far as unsafe: the archive
// is hostile, and Finish will fail.
func (e *Extractor) Refused() int {
	return len(e.unsafe)
}

func (e *Extractor) entry(tr *tar.Reader, h *tar.Header, seen map[string]bool) error {
	rel, err := EntryPath(h.Name, e.prefix)
	if err != nil {
		return err
	}
	if seen[rel] {
		return fmt.Errorf("%w: %q names %q again", errUnsafe, h.Name, rel)
	}
	seen[rel] = true
	if sparse(h) {
		// A sparse map inflates a few bytes of stream into any size on disk.
		return fmt.Errorf("%w: sparse file %q (its map could fill the disk from a tiny stream)", errUnsafe, h.Name)
	}
	mode := h.FileInfo().Mode()
	if mode&(fs.ModeSetuid|fs.ModeSetgid) != 0 && h.Typeflag != tar.TypeSymlink {
		e.warnf("warning: dropped setuid/setgid bits of %q\n", escape(h.Name))
	}
	n := &node{mode: mode & (fs.ModePerm | fs.ModeSticky), mtime: h.ModTime, uid: h.Uid, gid: h.Gid}
	switch h.Typeflag {
	case tar.TypeDir:
		return e.dir(rel, n)
	case tar.TypeReg:
		return e.file(rel, n, tr)
	case tar.TypeLink:
		return e.hardlink(rel, h.Linkname)
	case tar.TypeSymlink:
		return e.symlink(rel, h.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		e.warnf("warning: skipped device or fifo %q\n", escape(h.Name))
		return nil
	default:
		e.warnf("warning: skipped %q of unsupported tar type %q\n", escape(h.Name), h.Typeflag)
		return nil
	}
}

// parents makes sure every ancestor of rel is a directory this extractor
// made, creating missing ones. A symlink or a file on the way is refused:
// that is what stops "a -> /etc" followed by "a/passwd", whichever stream
// (a retry's too) brings either.
func (e *Extractor) parents(rel string) error {
	if rel == "" {
		return nil
	}
	comps := strings.Split(rel, "/")
	for i := range comps {
		anc := strings.Join(comps[:i], "/")
		if n, ok := e.nodes[anc]; ok {
			switch n.kind {
			case kindDir:
				continue
			case kindSymlink:
				return fmt.Errorf("%w: %q would be written through the symlink %q (to %q)", errUnsafe, e.name(rel), e.name(anc), n.target)
			default:
				return fmt.Errorf("%w: %q would be written under the file %q", errUnsafe, e.name(rel), e.name(anc))
			}
		}
		if err := e.root.Mkdir(e.local(anc), 0o700); err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
		e.nodes[anc] = &node{kind: kindDir, mode: 0o755, implicit: true}
	}
	return nil
}

func (e *Extractor) dir(rel string, n *node) error {
	if err := e.parents(rel); err != nil {
		return err
	}
	n.kind = kindDir
	if old, ok := e.nodes[rel]; ok {
		if old.kind != kindDir {
			return fmt.Errorf("%w: directory %q collides with an earlier entry of another kind", errUnsafe, e.name(rel))
		}
		e.nodes[rel] = n
		return nil
	}
	if err := e.mkdir(rel); err != nil {
		return err
	}
	e.nodes[rel] = n
	return nil
}

// mkdir makes directory rel, for now only its owner's.
func (e *Extractor) mkdir(rel string) error {
	in, name := e.opened.At(e.local(rel))
	if err := in.Mkdir(name, 0o700); err != nil {
		return fmt.Errorf("create directory %q: %w", rel, err)
	}
	return nil
}

func (e *Extractor) file(rel string, n *node, r io.Reader) error {
	if err := e.parents(rel); err != nil {
		return err
	}
	dir, base := e.opened.At(e.local(rel))
	if old, ok := e.nodes[rel]; ok {
		if old.kind != kindFile {
			return fmt.Errorf("%w: file %q collides with an earlier entry of another kind", errUnsafe, e.name(rel))
		}
		// Sent again after a broken stream or a failed check: start over.
		if err := dir.Remove(base); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("replace %q: %w", rel, err)
		}
	}
	n.kind = kindFile
	e.nodes[rel] = n
	f, err := dir.OpenFile(base, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	var h hash.Hash
	var dst io.Writer = io.MultiWriter(f, progressWriter(e.progress))
	if e.newHash != nil {
		h = e.newHash()
		dst = io.MultiWriter(f, h, progressWriter(e.progress))
	}
	_, err = io.CopyBuffer(dst, streamReader{r}, e.buf)
	if err == nil {
		err = e.attrs(f, n)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q: %w", rel, err)
	}
	if err := dir.Chtimes(base, n.mtime, n.mtime); err != nil {
		return fmt.Errorf("set times of %q: %w", rel, err)
	}
	if h != nil {
		copy(n.sum[:], h.Sum(nil)) // a short digest zero-padded
	}
	n.complete = true
	return nil
}

// attrs sets mode and, when asked, owner through the open descriptor, so
// nothing is resolved by name.
func (e *Extractor) attrs(f *os.File, n *node) error {
	if err := f.Chmod(n.mode); err != nil {
		return err
	}
	if e.preserveOwner {
		return f.Chown(n.uid, n.gid)
	}
	return nil
}

func (e *Extractor) hardlink(rel, linkname string) error {
	target, err := EntryPath(linkname, e.prefix)
	if err != nil {
		return fmt.Errorf("%w: hardlink %q -> %q: %v", errUnsafe, e.name(rel), linkname, strings.TrimPrefix(err.Error(), errUnsafe.Error()+": "))
	}
	t, ok := e.nodes[target]
	if !ok || t.kind != kindFile || !t.complete {
		return fmt.Errorf("%w: hardlink %q -> %q names no regular file extracted before it", errUnsafe, e.name(rel), linkname)
	}
	if err := e.parents(rel); err != nil {
		return err
	}
	if old, ok := e.nodes[rel]; ok {
		if old.kind != kindFile {
			return fmt.Errorf("%w: hardlink %q collides with an earlier entry of another kind", errUnsafe, e.name(rel))
		}
		in, base := e.opened.At(e.local(rel))
		if err := in.Remove(base); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("replace %q: %w", rel, err)
		}
	}
	if err := e.root.Link(e.local(target), e.local(rel)); err != nil {
		return fmt.Errorf("link %q: %w", rel, err)
	}
	n := *t
	e.nodes[rel] = &n
	return nil
}

// symlink records a symlink, which Finish creates. Where it points is
// the archive's business: an absolute target or one that leads out of the
// tree is kept as it is, since nothing is ever written through it.
func (e *Extractor) symlink(rel, target string) error {
	if rel == "" {
		return fmt.Errorf("%w: the top entry %q is a symlink (to %q); name its target instead", errUnsafe, e.prefix, target)
	}
	if err := e.parents(rel); err != nil {
		return err
	}
	if old, ok := e.nodes[rel]; ok {
		if old.kind == kindSymlink && old.target == target {
			return nil
		}
		return fmt.Errorf("%w: symlink %q collides with an earlier entry (of another kind, or to another target)", errUnsafe, e.name(rel))
	}
	e.nodes[rel] = &node{kind: kindSymlink, target: target}
	return nil
}

// Finish fails when any entry was refused. Otherwise it creates the
// symlinks, the last entries written (a symlink may lead anywhere: after
// it, nothing is written, and its parents are directories this extractor
// made, so no symlink is created through another), then applies
// directory modes and times, deepest first so that a read-only directory
// is closed only after its children are made. Nothing may be extracted
// after it.
func (e *Extractor) Finish() error {
	if e.finished {
		return errFinished
	}
	e.finished = true
	defer e.opened.Close()
	if len(e.unsafe) > 0 {
		return fmt.Errorf("refused %d unsafe archive entries from the container (first: %w)", len(e.unsafe), e.unsafe[0])
	}
	var links, dirs []string
	for rel, n := range e.nodes {
		switch n.kind {
		case kindSymlink:
			links = append(links, rel)
		case kindDir:
			dirs = append(dirs, rel)
		}
	}
	sort.Strings(links)
	for _, rel := range links {
		n := e.nodes[rel]
		in, name := e.opened.At(e.local(rel))
		if err := in.Symlink(n.target, name); err != nil {
			return fmt.Errorf("create symlink %q: %w", rel, err)
		}
		if e.preserveOwner {
			if err := in.Lchown(name, n.uid, n.gid); err != nil {
				return fmt.Errorf("set owner of %q: %w", rel, err)
			}
		}
	}
	sort.Strings(dirs)
	sort.SliceStable(dirs, func(i, j int) bool { return depth(dirs[i]) > depth(dirs[j]) })
	for _, rel := range dirs {
		n := e.nodes[rel]
		in, name := e.opened.At(e.local(rel))
		if err := in.Chmod(name, n.mode); err != nil {
			return fmt.Errorf("set mode of %q: %w", rel, err)
		}
		if e.preserveOwner && !n.implicit {
			if err := in.Lchown(name, n.uid, n.gid); err != nil {
				return fmt.Errorf("set owner of %q: %w", rel, err)
			}
		}
		if !n.implicit {
			if err := in.Chtimes(name, n.mtime, n.mtime); err != nil {
				return fmt.Errorf("set times of %q: %w", rel, err)
			}
		}
	}
	return nil
}

// depth orders the top ("") above everything.
func depth(rel string) int {
	if rel == "" {
		return 0
	}
	return strings.Count(rel, "/") + 1
}

// Files returns, by tree path, the checksum of every regular file
// received (Options.NewHash), and a zero sum for one not (yet) complete:
// it differs from any real one.
func (e *Extractor) Files() map[string][32]byte {
	m := map[string][32]byte{}
	for rel, n := range e.nodes {
		if n.kind == kindFile {
			if n.complete {
				m[rel] = n.sum
			} else {
				m[rel] = [32]byte{}
			}
		}
	}
	return m
}

// Links returns, by tree path, the target of every symlink received (each
// is created by Finish).
func (e *Extractor) Links() map[string]string {
	m := map[string]string{}
	for rel, n := range e.nodes {
		if n.kind == kindSymlink {
			m[rel] = n.target
		}
	}
	return m
}

// Complete says whether tree path rel arrived whole: a directory, a
// symlink, or a file whose bytes all arrived and were not invalidated
// since.
func (e *Extractor) Complete(rel string) bool {
	n, ok := e.nodes[rel]
	return ok && (n.kind != kindFile || n.complete)
}

// IsDir says whether tree path rel is a directory here.
func (e *Extractor) IsDir(rel string) bool {
	n, ok := e.nodes[rel]
	return ok && n.kind == kindDir
}

// Invalidate marks the file at tree path rel as not complete (its
// checksum differs from the source's), so that it is expected again.
func (e *Extractor) Invalidate(rel string) {
	if n, ok := e.nodes[rel]; ok && n.kind == kindFile {
		n.complete = false
	}
}

// Prune removes what the source no longer has: every entry that keep
// refuses, with what lies below it. A resumed download lands the source's
// tree as it now is, not as it was when the first attempt began.
func (e *Extractor) Prune(keep func(rel string) bool) error {
	if e.finished {
		return errFinished
	}
	rels := make([]string, 0, len(e.nodes))
	for rel := range e.nodes {
		rels = append(rels, rel)
	}
	sort.Strings(rels) // parents first
	for _, rel := range rels {
		n, ok := e.nodes[rel]
		if !ok || rel == "" || keep(rel) {
			continue
		}
		if n.kind != kindSymlink { // symlinks exist only as nodes until Finish
			if err := e.root.RemoveAll(e.local(rel)); err != nil {
				return fmt.Errorf("remove %q, which the source no longer has: %w", rel, err)
			}
			e.opened.Forget(e.local(rel))
		}
		delete(e.nodes, rel)
		if n.kind == kindDir {
			for other := range e.nodes {
				if strings.HasPrefix(other, rel+"/") {
					delete(e.nodes, other)
				}
			}
		}
	}
	return nil
}

// streamReader marks what goes wrong reading an entry's bytes as the
// stream's failure (a cut), not the local disk's.
type streamReader struct{ r io.Reader }

func (s streamReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &StreamError{err}
	}
	return n, err
}

type progressWriter func(int64)

func (p progressWriter) Write(b []byte) (int, error) {
	if p != nil {
		p(int64(len(b)))
	}
	return len(b), nil
}

// sparse reports an old GNU sparse entry or a PAX one (GNU.sparse.*
// records); no tar writes them unless asked to (-S).
func sparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}
