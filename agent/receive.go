//go:build linux

package agent

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kubectl-concourse/kubectl-concourse/agent/codec"
	"github.com/kubectl-concourse/kubectl-concourse/agent/frame"
	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
	"github.com/kubectl-concourse/kubectl-concourse/treeroot"
)

// smallFile is the size up to which a file is read whole and written by a
// worker: creating a file costs more than writing a few KiB, so a tree of
// small files lands as fast as the workers create them. Larger files are
// streamed by the reading goroutine itself.
const smallFile = 1 << 20

// receive extracts the tar stream that follows into a staging beside
// req.Dest, hashing each file as it writes it.
func (a *agent) receive(req protocol.Request) (protocol.Reply, error) {
	data := frame.NewDataReader(a.fr)
	fail := func(err error) (protocol.Reply, error) {
		if derr := data.Drain(); derr != nil {
			return protocol.Reply{}, errStdinClosed // the plugin is gone
		}
		return protocol.Reply{Error: err.Error()}, nil
	}
	dest := string(req.Dest)
	if !filepath.IsAbs(dest) || filepath.Clean(dest) != dest || dest == "/" {
		return fail(fmt.Errorf("receive: destination %q is not a clean absolute path", dest))
	}
	if a.stage != nil {
		return fail(errors.New("receive: this agent already holds a staging"))
	}
	var s *staging
	var reused bool
	var err error
	if req.InPlace {
		s, reused, err = newInPlace(dest)
	} else {
		s, reused, err = newStaging(dest, string(req.Staging))
	}
	if err != nil {
		return fail(err)
	}
	a.stage, a.keepOnEOF = s, req.KeepOnEOF
	dec, err := codec.NewReader(req.Codec, data)
	if err != nil {
		return fail(err)
	}
	x := newExtractor(s.root, s.tree, reused, req.PreserveOwner, a.opts.Workers)
	err = x.extract(tar.NewReader(dec))
	dec.Close()
	if errors.Is(err, io.ErrUnexpectedEOF) && data.Drain() != nil {
		return protocol.Reply{}, errStdinClosed
	}
	if err != nil {
		return fail(err)
	}
	if err := data.Drain(); err != nil { // the tar's padding, what follows its end
		return protocol.Reply{}, errStdinClosed
	}
	entries := x.entries()
	if reused { // files from the earlier attempt count too
		if entries, err = walkManifest(s.root, s.tree); err != nil {
			return protocol.Reply{Error: err.Error()}, nil
		}
	}
	reply := protocol.Reply{Staging: protocol.Name(s.name), Reused: reused, Digest: protocol.ManifestDigest(entries)}
	for _, e := range entries {
		if e.Kind == protocol.KindFile {
			reply.Files++
			reply.Bytes += e.Size
		}
	}
	return reply, nil
}

// extractor writes a tar into a root, as its tree (treeName, or the root
// itself in place). Symlinks and hard
// links are made last, so that no entry of the archive is ever written
// through a link; directories get their modes and times last, deepest first,
// so that writing into them does not change them afterwards.
type extractor struct {
	root          *os.Root
	tree          string // the tree's name in root: treeName, or "."
	reused        bool   // the root holds an earlier attempt's files
	preserveOwner bool
	top           string

	dirs  map[string]bool // real directories made or checked, relative to root
	seen  map[string]bool // entries this stream wrote
	metas []*tar.Header   // directories, for their modes and times
	links []*tar.Header   // symlinks and hard links, made at the end
	buf   []byte

	// opened resolves names from their directories, kept open.
	opened *treeroot.Dirs

	jobs    chan fileJob
	wg      sync.WaitGroup
	mu      sync.Mutex
	err     error
	written map[string]protocol.Entry
}

type fileJob struct {
	rel  string
	hdr  *tar.Header
	data []byte
}

func newExtractor(root *os.Root, tree string, reused, preserveOwner bool, workers int) *extractor {
	x := &extractor{root: root, tree: tree, opened: treeroot.New(root), reused: reused, preserveOwner: preserveOwner,
		dirs: map[string]bool{".": true}, seen: map[string]bool{}, written: map[string]protocol.Entry{},
		jobs: make(chan fileJob, 2*workers), buf: make([]byte, 256<<10)}
	for range workers {
		go x.worker()
	}
	return x
}

func (x *extractor) worker() {
	for j := range x.jobs {
		if x.failed() == nil {
			x.setErr(x.writeFile(j.rel, j.hdr, nil, j.data))
		}
		x.wg.Done()
	}
}

func (x *extractor) setErr(err error) {
	if err == nil {
		return
	}
	x.mu.Lock()
	if x.err == nil {
		x.err = err
	}
	x.mu.Unlock()
}

func (x *extractor) failed() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

// remove removes rel and all below it, forgetting what it knew of them.
func (x *extractor) remove(rel string) error {
	if err := x.root.RemoveAll(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	x.opened.Forget(rel)
	x.mu.Lock()
	defer x.mu.Unlock()
	for d := range x.dirs {
		if d == rel || strings.HasPrefix(d, rel+"/") {
			delete(x.dirs, d)
		}
	}
	return nil
}

// extract reads the whole archive. The workers are stopped on return.
func (x *extractor) extract(tr *tar.Reader) error {
	defer func() {
		close(x.jobs)
		x.opened.Close()
	}()
	err := x.entriesOf(tr)
	x.wg.Wait()
	if err == nil {
		err = x.failed()
	}
	if err == nil {
		err = x.finish()
	}
	return err
}

func (x *extractor) entriesOf(tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			if x.top == "" {
				return errors.New("empty archive")
			}
			return nil
		}
		if err != nil {
			return err
		}
		if err := x.failed(); err != nil {
			return err
		}
		rel, err := x.relOf(hdr.Name)
		if err != nil {
			return err
		}
		if x.seen[rel] {
			// The archive holds the name twice: the later entry wins, once
			// the earlier one is written.
			x.wg.Wait()
		}
		if x.seen[rel] || x.reused {
			if hdr.Typeflag != tar.TypeDir {
				if err := x.remove(rel); err != nil {
					return err
				}
			}
		}
		x.seen[rel] = true
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := x.dir(rel); err != nil {
				return err
			}
			x.metas = append(x.metas, withName(hdr, rel))
		case tar.TypeReg:
			if err := x.parent(rel); err != nil {
				return err
			}
			if hdr.Size > smallFile {
				if err := x.writeFile(rel, hdr, tr, nil); err != nil {
					return err
				}
				continue
			}
			data := make([]byte, hdr.Size)
			if _, err := io.ReadFull(tr, data); err != nil {
				return err
			}
			x.wg.Add(1)
			x.jobs <- fileJob{rel: rel, hdr: hdr, data: data}
		case tar.TypeSymlink:
			x.links = append(x.links, withName(hdr, rel))
		case tar.TypeLink:
			target, err := x.relOf(hdr.Linkname)
			if err != nil {
				return fmt.Errorf("hard link %q: %w", hdr.Name, err)
			}
			h := withName(hdr, rel)
			h.Linkname = target
			x.links = append(x.links, h)
		default:
			return fmt.Errorf("%q: entries of type %q are not transferred", hdr.Name, hdr.Typeflag)
		}
	}
}

func withName(hdr *tar.Header, rel string) *tar.Header {
	h := *hdr
	h.Name = rel
	return &h
}

// relOf maps an archive name to its path in the root: the first entry names
// the top, and every entry must be it or below it, with no "..", no
// absolute name, nothing empty.
func (x *extractor) relOf(name string) (string, error) {
	n := strings.TrimRight(name, "/")
	if n == "" || strings.HasPrefix(n, "/") || path.Clean(n) != n || n == "." || n == ".." ||
		strings.HasPrefix(n, "../") || strings.Contains(n, "\x00") {
		return "", fmt.Errorf("refused archive entry %q: not a clean relative name", name)
	}
	if x.top == "" {
		if strings.Contains(n, "/") {
			return "", fmt.Errorf("refused archive entry %q: the first entry must be the top", name)
		}
		x.top = n
	}
	if n == x.top {
		return x.tree, nil
	}
	rest, ok := strings.CutPrefix(n, x.top+"/")
	if !ok {
		return "", fmt.Errorf("refused archive entry %q: outside %q", name, x.top)
	}
	if x.tree == "." {
		return rest, nil
	}
	return x.tree + "/" + rest, nil
}

// dir makes rel a real directory (keeping one already there).
func (x *extractor) dir(rel string) error {
	if x.dirs[rel] {
		return nil
	}
	if err := x.parent(rel); err != nil {
		return err
	}
	in, name := x.opened.At(rel)
	if x.reused {
		// Into a tree that holds its directories already (a retry, a
		// warm cache): one lstat says so, where a mkdir would fail first.
		if fi, err := in.Lstat(name); err == nil && fi.IsDir() {
			x.dirs[rel] = true
			return nil
		}
	}
	err := in.Mkdir(name, 0o700)
	if errors.Is(err, fs.ErrExist) {
		fi, lerr := in.Lstat(name)
		if lerr != nil {
			return lerr
		}
		if !fi.IsDir() {
			if err := x.remove(rel); err != nil {
				return err
			}
			return x.dir(rel)
		}
		err = nil
	}
	if err == nil {
		x.dirs[rel] = true
	}
	return err
}

// parent makes sure every directory above rel is a real directory, never a
// link: an archive that lists a file below a name it did not make a
// directory gets one.
func (x *extractor) parent(rel string) error {
	p := path.Dir(rel)
	if x.dirs[p] {
		return nil
	}
	if err := x.parent(p); err != nil {
		return err
	}
	in, name := x.opened.At(p)
	fi, err := in.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := in.Mkdir(name, 0o755); err != nil {
			return err
		}
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("refused archive entry below %q: not a directory", x.manifestPath(p))
	}
	x.dirs[p] = true
	return nil
}

// writeFile creates rel (O_EXCL: nothing there, not even a link) with data,
// or what r holds, hashing it as it writes, then sets its mode, times and
// owner.
func (x *extractor) writeFile(rel string, hdr *tar.Header, r io.Reader, data []byte) error {
	dir, base := x.opened.At(rel)
	// O_NONBLOCK changes nothing for a regular file, but an os.File opened
	// without it is put in and out of non-blocking mode for the poller:
	// four fcntl calls a file.
	f, err := dir.OpenFile(base, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NONBLOCK, 0o600)
	if err != nil {
		return err
	}
	h := sha256.New()
	if r == nil {
		h.Write(data)
		_, err = f.Write(data)
	} else {
		_, err = io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(r, hdr.Size), x.buf)
	}
	if err == nil {
		err = x.setMeta(f, hdr)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", x.manifestPath(rel), err)
	}
	x.mu.Lock()
	x.written[rel] = protocol.Entry{Path: protocol.Name(x.manifestPath(rel)), Kind: protocol.KindFile,
		Mode: uint32(hdr.Mode) & 0o7777, Size: hdr.Size, SHA256: hex.EncodeToString(h.Sum(nil))}
	x.mu.Unlock()
	return nil
}

// setMeta sets the owner (when asked), mode and times of the file being
// written, through its descriptor: nothing is resolved by name.
func (x *extractor) setMeta(f *os.File, hdr *tar.Header) error {
	if x.preserveOwner {
		if err := f.Chown(hdr.Uid, hdr.Gid); err != nil {
			return err
		}
	}
	// Through Control, not Fd: Fd puts the descriptor back in blocking
	// mode, two more fcntl calls.
	conn, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := conn.Control(func(fd uintptr) {
		if serr = unix.Fchmod(int(fd), uint32(hdr.Mode)&0o7777); serr == nil {
			serr = futimens(int(fd), time.Now(), hdr.ModTime)
		}
	}); err != nil {
		return err
	}
	return serr
}

// futimens sets the times of the open file fd: utimensat with no path,
// where x/sys's Futimes goes through /proc/self/fd/N, a path lookup in
// procfs per file.
func futimens(fd int, atime, mtime time.Time) error {
	ts := [2]unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return &os.PathError{Op: "futimens", Path: "", Err: errno}
	}
	return nil
}

// finish makes the links, then sets the directories' modes and times.
func (x *extractor) finish() error {
	for _, h := range x.links {
		if err := x.parent(h.Name); err != nil {
			return err
		}
		if x.reused || x.seen[h.Name] {
			if err := x.root.RemoveAll(h.Name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		e := protocol.Entry{Path: protocol.Name(x.manifestPath(h.Name)), Kind: protocol.KindSymlink, Mode: 0o777, Link: protocol.Name(h.Linkname)}
		if h.Typeflag == tar.TypeLink {
			if err := x.root.Link(h.Linkname, h.Name); err != nil {
				return fmt.Errorf("hard link %s: %w", x.manifestPath(h.Name), err)
			}
			var err error
			if e, err = x.entryOf(h.Name); err != nil {
				return err
			}
			e.Path = protocol.Name(x.manifestPath(h.Name))
		} else if err := x.root.Symlink(h.Linkname, h.Name); err != nil {
			return fmt.Errorf("symlink %s: %w", x.manifestPath(h.Name), err)
		}
		if x.preserveOwner {
			if err := x.root.Lchown(h.Name, h.Uid, h.Gid); err != nil {
				return err
			}
		}
		x.written[h.Name] = e
	}
	sort.Slice(x.metas, func(i, j int) bool { return x.metas[i].Name > x.metas[j].Name }) // children first
	for _, h := range x.metas {
		// A later entry may have replaced the directory (with a link, say):
		// its metadata is then not the directory's to set.
		in, name := x.opened.At(h.Name)
		fi, err := in.Lstat(name)
		if err != nil || !fi.IsDir() {
			continue
		}
		if x.preserveOwner {
			if err := in.Lchown(name, h.Uid, h.Gid); err != nil {
				return err
			}
		}
		mode := fs.FileMode(h.Mode)&fs.ModePerm | specialBits(h.Mode)
		// A directory that already has them (a warm cache's, mostly) is
		// left as it is: two calls fewer for each of thousands.
		if fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != mode {
			if err := in.Chmod(name, mode); err != nil && !rootNotOurs(h.Name, err) {
				return err
			}
		}
		if !fi.ModTime().Equal(h.ModTime) {
			if err := in.Chtimes(name, time.Now(), h.ModTime); err != nil && !rootNotOurs(h.Name, err) {
				return err
			}
		}
		x.written[h.Name] = protocol.Entry{Path: protocol.Name(x.manifestPath(h.Name)), Kind: protocol.KindDir, Mode: uint32(h.Mode) & 0o7777}
	}
	return nil
}

// rootNotOurs says whether err is the refusal to set the mode or times of
// the directory received into ("."), which the receiving user does not
// own: an emptyDir's root, when the task runs as another user than root
// (run.user). It keeps what its owner gave it (an emptyDir's 0777 lets
// that user write), as tar does when it is not root.
func rootNotOurs(name string, err error) bool {
	return name == "." && errors.Is(err, fs.ErrPermission)
}

// entryOf is the manifest entry of a regular file already written: a hard
// link's is its target's.
func (x *extractor) entryOf(rel string) (protocol.Entry, error) {
	// Lstat: the link is to a file, never through a symlink (Link does not
	// follow one).
	fi, err := x.root.Lstat(rel)
	if err != nil {
		return protocol.Entry{}, err
	}
	return fileEntry(at{root: x.root, rel: rel, dir: -1}, fi)
}

func specialBits(mode int64) fs.FileMode {
	var m fs.FileMode
	if mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// entries is the manifest of what the stream wrote.
func (x *extractor) entries() []protocol.Entry {
	out := make([]protocol.Entry, 0, len(x.written))
	for _, e := range x.written {
		out = append(out, e)
	}
	return out
}

// manifestPath is rel's name in a manifest: "." for the top.
func (x *extractor) manifestPath(rel string) string {
	switch {
	case rel == x.tree:
		return "."
	case x.tree == ".":
		return rel
	}
	return strings.TrimPrefix(rel, x.tree+"/")
}
