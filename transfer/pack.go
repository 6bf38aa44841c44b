package transfer

import (
	"archive/tar"
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/cli-runtime/pkg/printers"

	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
)

// packer writes a local file or tree as a tar stream whose entries are
// named prefix/..., remembering the checksum of every file it sent (when
// newHash is set) so the container's copy can be checked against it.
type packer struct {
	src           string   // local file or directory
	prefix        string   // top entry name in the archive
	files         []string // selection (slash paths relative to src); nil means everything
	preserveOwner bool
	warnf         func(format string, a ...any)
	progress      func(n int64)
	newHash       func() hash.Hash // nil: no checksums
	// hashLater: pack only lists the files it sends, and sumSent hashes
	// them afterwards, from the files, while the container hashes what it
	// received. Over a fast link the stream has every core busy, and the
	// container's hashing after tar leaves this side idle: the two hashes
	// run side by side instead of one in the stream and one after it.
	hashLater bool

	// manifest, when set, records every entry as the in-container agent
	// lists what it received (tree path → entry; "." is the top), so that
	// the two sides' manifest digests can be compared.
	manifest map[string]protocol.Entry

	// listed, when set, is the tree as an earlier walk found it: walk
	// replays it instead of reading the tree again, and a file deleted
	// since is left out, as a walk after its deletion would.
	listed []localStat

	sums map[string][32]byte // tree path → checksum of what was sent
	sent []sentFile          // with hashLater: the regular files the last pack sent
	buf  []byte
}

// sentFile is a regular file as pack sent it: its first size bytes.
type sentFile struct {
	rel  string
	size int64
}

// endEntry is the archive's last entry, beside the top one: a file whose
// content tells the receiver that the stream arrived whole
// (receiveScript).
type endEntry struct {
	name, content string
}

func newPacker(src, prefix string, files []string, preserveOwner bool, warnf func(string, ...any), progress func(int64)) *packer {
	return &packer{src: src, prefix: prefix, files: files, preserveOwner: preserveOwner,
		warnf: warnf, progress: progress, sums: map[string][32]byte{}, buf: make([]byte, 256<<10)}
}

// size is the number of file bytes a full pack sends (for progress) and
// the number of regular files that hold them. Its walk is the one every
// pack then replays (listed): the tree is read once.
func (p *packer) size() (total int64, files int, err error) {
	var listed []localStat
	err = p.walk(func(rel string, fi fs.FileInfo) error {
		if p.listed == nil {
			listed = append(listed, localStat{rel, fi})
		}
		if fi.Mode().IsRegular() {
			total += fi.Size()
			files++
		}
		return nil
	})
	if err == nil && p.listed == nil {
		p.listed = listed
	}
	return total, files, err
}

// walk calls fn for the top entry and every selected entry below it,
// parents before children, each once, in lexical order. Only the top is
// followed when it is a symlink: below it, a symlink is an entry like any
// other, wherever it points, and nothing below one is sent (git lists the
// files of a tracked directory that became a symlink as if they were
// there): the container's tar would write them through the link.
func (p *packer) walk(fn func(rel string, fi fs.FileInfo) error) error {
	if p.listed != nil {
		for _, e := range p.listed {
			if err := fn(e.rel, e.fi); err != nil {
				return err
			}
		}
		return nil
	}
	fi, err := os.Stat(p.src) // the top may be a symlink to what to send
	if err != nil {
		return err
	}
	if err := fn("", fi); err != nil || !fi.IsDir() {
		return err
	}
	if p.files == nil {
		return p.walkDir("", fn)
	}
	emitted := map[string]bool{"": true}
	links := map[string]bool{} // emitted symlinks
	underLink := func(f string) bool {
		for d := f; ; {
			i := strings.LastIndexByte(d, '/')
			if i < 0 {
				return false
			}
			if d = d[:i]; links[d] {
				return true
			}
		}
	}
	for _, f := range p.files {
		dirs := strings.Split(f, "/")
		for i := 1; i < len(dirs); i++ {
			d := strings.Join(dirs[:i], "/")
			if links[d] {
				break
			}
			if emitted[d] {
				continue
			}
			emitted[d] = true
			dfi, err := os.Lstat(filepath.Join(p.src, filepath.FromSlash(d)))
			if err != nil {
				return err
			}
			if err := fn(d, dfi); err != nil {
				return err
			}
			if dfi.Mode()&fs.ModeSymlink != 0 {
				links[d] = true
				break
			}
		}
		if underLink(f) {
			continue
		}
		ffi, err := os.Lstat(filepath.Join(p.src, filepath.FromSlash(f)))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since git listed it
		}
		if err != nil {
			return err
		}
		if ffi.Mode()&fs.ModeSymlink != 0 {
			links[f] = true
		}
		if err := fn(f, ffi); err != nil {
			return err
		}
		if ffi.IsDir() { // a submodule: fly's tar takes it whole
			if err := p.walkDir(f, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *packer) walkDir(rel string, fn func(string, fs.FileInfo) error) error {
	root := filepath.Join(p.src, filepath.FromSlash(rel))
	return filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name == root {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(p.src, name)
		return fn(filepath.ToSlash(r), fi)
	})
}

// pack writes the archive to w, ending with end. skip, when set, leaves
// out regular files the container already holds intact (a resumed upload).
func (p *packer) pack(w io.Writer, skip func(rel string) bool, end endEntry) error {
	p.sent = p.sent[:0]
	// tar writes a header, the data and its padding apiece: unbuffered,
	// each became an exec frame and a write(2) of its own, 9 syscalls a
	// file for a tree of small ones.
	bw := bufio.NewWriterSize(w, len(p.buf))
	tw := tar.NewWriter(bw)
	err := p.walk(func(rel string, fi fs.FileInfo) error {
		if (fi.Mode().IsRegular() || fi.IsDir() && rel != "") && skip != nil && skip(rel) {
			return nil
		}
		return p.entry(tw, rel, fi)
	})
	if err != nil {
		return err
	}
	if end.name != "" { // the agent's framing says where the stream ends
		h := &tar.Header{Typeflag: tar.TypeReg, Name: end.name, Mode: 0o600, Size: int64(len(end.content)),
			ModTime: time.Now().Truncate(time.Second), Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, end.content); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

func (p *packer) entry(tw *tar.Writer, rel string, fi fs.FileInfo) error {
	name := path.Join(p.prefix, rel)
	local := filepath.Join(p.src, filepath.FromSlash(rel))
	var link string
	switch {
	case fi.Mode().IsRegular(), fi.IsDir():
	case fi.Mode()&fs.ModeSymlink != 0:
		var err error
		if link, err = os.Readlink(local); err != nil {
			return err
		}
	default:
		p.warnf("warning: skipped %q: not a regular file, directory or symlink\n", printers.EscapeTerminal(local))
		return nil
	}
	var f *os.File
	if fi.Mode().IsRegular() {
		// Opened before its header is written: a file deleted since the
		// walk is left out whole.
		var err error
		if f, err = os.OpenFile(local, readOnly, 0); errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		defer f.Close()
	}
	h, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return fmt.Errorf("%s: %w", local, err)
	}
	h.Name = name
	if fi.IsDir() {
		h.Name += "/"
	}
	// Whole seconds and no atime/ctime keep headers in plain ustar, without
	// a PAX record per file.
	h.ModTime = fi.ModTime().Truncate(time.Second)
	h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
	h.Uname, h.Gname = "", ""
	if !p.preserveOwner {
		h.Uid, h.Gid = 0, 0
	}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("%s: %w", local, err)
	}
	if f == nil {
		p.record(rel, h, "")
		return nil
	}
	var sum hash.Hash
	var seen io.Writer = progressWriter(p.progress)
	if p.newHash != nil && !p.hashLater {
		sum = p.newHash()
		seen = io.MultiWriter(sum, seen)
	}
	n, err := io.CopyBuffer(tw, io.TeeReader(io.LimitReader(f, h.Size), seen), p.buf)
	if err != nil {
		return fmt.Errorf("send %s: %w", local, err)
	}
	if n != h.Size {
		return fmt.Errorf("send %s: file shrank from %d to %d bytes while being read", local, h.Size, n)
	}
	if sum != nil {
		p.sums[rel] = sumOf(sum)
		p.record(rel, h, hex.EncodeToString(sum.Sum(nil)))
	}
	if p.newHash != nil && p.hashLater {
		p.sent = append(p.sent, sentFile{rel, h.Size})
	}
	return nil
}

// sumSent hashes what the last pack sent (hashLater), from the files. A
// file that changed since leaves no sum, or another one: the comparison
// with the container's then fails, and a retry sends it again. It stops
// early when stop is closed (the user interrupted).
func (p *packer) sumSent(stop <-chan struct{}) {
	for _, f := range p.sent {
		select {
		case <-stop:
			return
		default:
		}
		delete(p.sums, f.rel)
		h := p.newHash()
		local, err := os.OpenFile(filepath.Join(p.src, filepath.FromSlash(f.rel)), readOnly, 0)
		if err != nil {
			continue
		}
		n, err := io.CopyBuffer(h, io.LimitReader(local, f.size), p.buf)
		local.Close()
		if err == nil && n == f.size {
			p.sums[f.rel] = sumOf(h)
		}
	}
}

// record adds the entry rel was sent as to the manifest, when one is kept:
// as the agent lists what it wrote from the same header (permission bits
// of the header, 0777 for a symlink).
func (p *packer) record(rel string, h *tar.Header, sha string) {
	if p.manifest == nil {
		return
	}
	e := protocol.Entry{Path: protocol.Name(rel), Mode: uint32(h.Mode) & 0o7777}
	if rel == "" {
		e.Path = "."
	}
	switch h.Typeflag {
	case tar.TypeDir:
		e.Kind = protocol.KindDir
	case tar.TypeSymlink:
		e.Kind, e.Mode, e.Link = protocol.KindSymlink, 0o777, protocol.Name(h.Linkname)
	default:
		e.Kind, e.Size, e.SHA256 = protocol.KindFile, h.Size, sha
	}
	p.manifest[rel] = e
}
