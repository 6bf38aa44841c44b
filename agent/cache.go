//go:build linux

package agent

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/kubectl-concourse/kubectl-concourse/agent/codec"
	"github.com/kubectl-concourse/kubectl-concourse/agent/frame"
	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
)

// A warm cache is a directory (a claim's root) that holds the tree of an
// input as the last execute sent it (protocol.CacheTree) and its manifest
// (protocol.CacheManifest). The task uses the tree in place (the pod
// mounts it as the input), so the next apply repairs whatever it changed:
// a file it wrote, chmodded, touched or replaced has another ctime or inode
// than the manifest records and is sent again, what the list does not name
// is removed, and directories get their modes and times back. The plugin's
// lease keeps two runs from using one tree at once.

// openCache opens the cache directory at dir (made when absent) and takes
// its flock, waiting for it: two agents never work on one cache at once,
// whatever leases the plugin keeps.
func openCache(dir string) (*os.Root, func(), error) {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || dir == "/" {
		return nil, nil, fmt.Errorf("cache %q is not a clean absolute path", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	if err := lockDir(d, true); err != nil {
		d.Close()
		return nil, nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	return root, func() { root.Close(); d.Close() }, nil
}

// statTree lstats the cached tree in one walk (one open per directory,
// one lstat per entry): manifest path → stat. An absent tree is empty.
func statTree(root *os.Root) (map[protocol.Name]*syscall.Stat_t, error) {
	stats := map[protocol.Name]*syscall.Stat_t{}
	err := walk(root, protocol.CacheTree, func(rel string, fi fs.FileInfo, _ at) error {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat", rel)
		}
		stats[protocol.Name(relToTop(protocol.CacheTree, rel))] = st
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return stats, nil
	}
	return stats, err
}

// trustedEntries are the cache manifest's file entries that the cached
// tree (its stats) still holds as the agent wrote them: the same inode,
// status change time, size and mode. Any write, chmod, truncation or
// rename over a file changes one of them. A missing or unreadable manifest
// is an empty cache.
func trustedEntries(root *os.Root, stats map[protocol.Name]*syscall.Stat_t) map[protocol.Name]protocol.CacheEntry {
	trusted := map[protocol.Name]protocol.CacheEntry{}
	f, err := root.Open(protocol.CacheManifest)
	if err != nil {
		return trusted
	}
	entries, err := protocol.ReadCacheManifest(bufio.NewReader(f))
	f.Close()
	if err != nil {
		return trusted
	}
	for _, e := range entries {
		st := stats[e.Path]
		if e.Kind == protocol.KindFile && st != nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Ino == e.Ino &&
			st.Ctim.Nano() == e.CTime && st.Size == e.Size && st.Mode&0o7777 == e.Mode {
			trusted[e.Path] = e
		}
	}
	return trusted
}

// heldDirs are the cached tree's directories as they are (mode, and
// modification time as MTime): the plugin sends no header for one that is
// already as the local tree has it.
func heldDirs(stats map[protocol.Name]*syscall.Stat_t) []protocol.CacheEntry {
	var dirs []protocol.CacheEntry
	for p, st := range stats {
		if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			dirs = append(dirs, protocol.CacheEntry{Entry: protocol.Entry{Path: p, Kind: protocol.KindDir, Mode: st.Mode & 0o7777},
				MTime: st.Mtim.Nano()})
		}
	}
	return dirs
}

// cachePath is a manifest path's name in the cache's root.
func cachePath(p protocol.Name) string {
	if p == "." {
		return protocol.CacheTree
	}
	return protocol.CacheTree + "/" + string(p)
}

// readCache is a cache opened, locked and read: its tree's stats and the
// manifest's entries it still trusts. cache-manifest keeps it, locked, for
// the cache-apply that follows in the same session, which so reads neither
// the tree nor the manifest again.
type readCache struct {
	dir     protocol.Name
	root    *os.Root
	unlock  func()
	stats   map[protocol.Name]*syscall.Stat_t
	trusted map[protocol.Name]protocol.CacheEntry
}

// readCacheAt opens, locks and reads the cache at dir.
func readCacheAt(dir protocol.Name) (*readCache, error) {
	root, unlock, err := openCache(string(dir))
	if err != nil {
		return nil, err
	}
	stats, err := statTree(root)
	if err != nil {
		unlock()
		return nil, err
	}
	return &readCache{dir: dir, root: root, unlock: unlock, stats: stats, trusted: trustedEntries(root, stats)}, nil
}

// writeCacheList writes entries to the plugin (CacheListCodec).
func writeCacheList(w io.Writer, entries []protocol.CacheEntry) error {
	cw, err := codec.NewWriter(protocol.CacheListCodec, w)
	if err != nil {
		return err
	}
	if err := protocol.WriteCacheManifest(cw, entries); err != nil {
		return err
	}
	return cw.Close()
}

// readCacheList reads the plugin's entries (CacheListCodec) to the end of
// their stream.
func readCacheList(r *frame.DataReader) ([]protocol.CacheEntry, error) {
	cr, err := codec.NewReader(protocol.CacheListCodec, r)
	if err != nil {
		return nil, err
	}
	defer cr.Close()
	entries, err := protocol.ReadCacheManifest(cr)
	if err != nil {
		return nil, err
	}
	return entries, r.Drain()
}

// dropCache unlocks the cache the last cache-manifest kept, if any.
func (a *agent) dropCache() {
	if a.cache != nil {
		a.cache.unlock()
		a.cache = nil
	}
}

// cacheManifest answers the file entries of the cache at req.Path it
// trusts and its directories as they are, and keeps the cache locked for
// the apply.
func (a *agent) cacheManifest(req protocol.Request) error {
	a.dropCache()
	var entries []protocol.CacheEntry
	c, err := readCacheAt(req.Path)
	if err == nil {
		a.cache = c
		for _, e := range c.trusted {
			entries = append(entries, e)
		}
		entries = append(entries, heldDirs(c.stats)...)
	}
	dw := frame.NewDataWriter(a.fw)
	if err == nil {
		err = writeCacheList(dw, entries)
	}
	if cerr := dw.Close(); cerr != nil {
		return cerr
	}
	if err != nil {
		return a.send(protocol.Reply{Error: err.Error()})
	}
	return a.send(protocol.Reply{Files: int64(len(entries))})
}

// cacheApply brings the cache at req.Path to the tree the plugin sends
// (a tar of what changed, then every entry) and records its manifest; the
// task then uses the tree in place.
func (a *agent) cacheApply(req protocol.Request) error {
	tarData := frame.NewDataReader(a.fr)
	fail := func(err error) error {
		if tarData.Drain() != nil {
			return errStdinClosed
		}
		if frame.NewDataReader(a.fr).Drain() != nil { // the entries
			return errStdinClosed
		}
		return a.send(protocol.Reply{Error: err.Error()})
	}
	c := a.cache
	if c == nil || c.dir != req.Path {
		a.dropCache()
		var err error
		if c, err = readCacheAt(req.Path); err != nil {
			return fail(err)
		}
		a.cache = c
	}
	defer a.dropCache()
	root := c.root
	// The old manifest stays until the new one replaces it: a file this
	// apply rewrites gets a new inode and ctime, so an apply cut midway
	// leaves a manifest that trusts only the files still as it lists them.
	if err := root.MkdirAll(protocol.CacheTree, 0o755); err != nil {
		return fail(err)
	}
	dec, err := codec.NewReader(req.Codec, tarData)
	if err != nil {
		return fail(err)
	}
	x := newExtractor(root, protocol.CacheTree, true, req.PreserveOwner, a.opts.Workers)
	err = x.extract(tar.NewReader(dec))
	dec.Close()
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) && tarData.Drain() != nil {
			return errStdinClosed
		}
		return fail(err)
	}
	if err := tarData.Drain(); err != nil {
		return errStdinClosed
	}
	want, err := readCacheList(frame.NewDataReader(a.fr))
	if err != nil {
		return errStdinClosed
	}
	written := map[protocol.Name]protocol.Entry{}
	for _, e := range x.written {
		written[e.Path] = e
	}
	entries, removed, err := settleCache(root, want, written, c)
	if err != nil {
		return a.send(protocol.Reply{Error: err.Error()})
	}
	if err := resetDirs(root, entries, dirsToReset(entries, written, removed, c)); err != nil {
		return a.send(protocol.Reply{Error: err.Error()})
	}
	if err := writeCacheManifest(root, entries); err != nil {
		return a.send(protocol.Reply{Error: err.Error()})
	}
	reply := protocol.Reply{}
	plain := make([]protocol.Entry, len(entries))
	for i, e := range entries {
		plain[i] = e.Entry
		if e.Kind == protocol.KindFile {
			reply.Files++
			reply.Bytes += e.Size
		}
	}
	reply.Digest = protocol.ManifestDigest(plain)
	return a.send(reply)
}

// settleCache makes the cached tree exactly want: what it does not list
// goes, and every file is either one this stream wrote with the content
// listed or one the cache held as it wrote it with that content. It
// returns the entries to record, with the cached files' inodes and ctimes,
// and the paths it removed. What the extractor wrote (written) and every
// symlink are looked at again; a file or directory it did not write is as
// c read it, and a directory it wrote is one (the extractor checked).
func settleCache(root *os.Root, want []protocol.CacheEntry, written map[protocol.Name]protocol.Entry, c *readCache) ([]protocol.CacheEntry, []protocol.Name, error) {
	trusted := c.trusted
	listed := map[protocol.Name]bool{}
	for _, e := range want {
		listed[e.Path] = true
	}
	var removed []protocol.Name
	for p := range c.stats {
		if !listed[p] {
			if err := root.RemoveAll(cachePath(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, nil, err
			}
			removed = append(removed, p)
		}
	}
	stat := func(e protocol.CacheEntry) *syscall.Stat_t {
		w, sent := written[e.Path]
		switch {
		case !sent && (e.Kind == protocol.KindFile || e.Kind == protocol.KindDir):
			return c.stats[e.Path]
		case sent && e.Kind == protocol.KindDir && w.Kind == protocol.KindDir:
			return &syscall.Stat_t{Mode: syscall.S_IFDIR}
		}
		fi, err := root.Lstat(cachePath(e.Path))
		if err != nil {
			return nil
		}
		return fi.Sys().(*syscall.Stat_t)
	}
	out := make([]protocol.CacheEntry, 0, len(want))
	for _, e := range want {
		st := stat(e)
		if st == nil {
			return nil, nil, fmt.Errorf("the cache lacks %s", e.Path)
		}
		switch e.Kind {
		case protocol.KindFile:
			w, sent := written[e.Path]
			t, held := trusted[e.Path]
			switch {
			case sent && (w.SHA256 != e.SHA256 || w.Size != e.Size):
				return nil, nil, fmt.Errorf("%s arrived with other content than listed", e.Path)
			case !sent && (!held || t.SHA256 != e.SHA256 || t.Ino != st.Ino):
				return nil, nil, fmt.Errorf("%s was neither sent nor held by the cache", e.Path)
			}
			if st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Mode&0o7777 != e.Mode || st.Size != e.Size {
				return nil, nil, fmt.Errorf("the cached %s is not as listed", e.Path)
			}
			if mt := listedTime(e); st.Mtim.Nano() != mt.UnixNano() {
				// Held with the same content, the local file's time moved:
				// the task sees the local time, and the manifest the new
				// ctime.
				if err := root.Chtimes(cachePath(e.Path), time.Now(), mt); err != nil {
					return nil, nil, err
				}
				fi, err := root.Lstat(cachePath(e.Path))
				if err != nil {
					return nil, nil, err
				}
				st = fi.Sys().(*syscall.Stat_t)
			}
			e.Ino, e.CTime = st.Ino, st.Ctim.Nano()
		case protocol.KindDir:
			if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
				return nil, nil, fmt.Errorf("the cached %s is not a directory as listed", e.Path)
			}
		case protocol.KindSymlink:
			target, err := root.Readlink(cachePath(e.Path))
			if err != nil || protocol.Name(target) != e.Link {
				return nil, nil, fmt.Errorf("the cached %s is not the symlink listed", e.Path)
			}
		default:
			return nil, nil, fmt.Errorf("%s: unknown kind %q", e.Path, e.Kind)
		}
		out = append(out, e)
	}
	return out, removed, nil
}

// writeCacheManifest records entries, in one rename.
func writeCacheManifest(root *os.Root, entries []protocol.CacheEntry) error {
	tmp := protocol.CacheManifest + ".new"
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	err = protocol.WriteCacheManifest(bw, entries)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return root.Rename(tmp, protocol.CacheManifest)
}

// dirsToReset are the directories whose mode or time may not be the
// listed ones after the apply: those that settling removed from or the
// extractor wrote into without setting them (either moves a directory's
// modification time) and those the extractor did not set whose stat, as
// the cache was read, differs (a task that used the tree changed them).
// The extractor set the others last.
func dirsToReset(entries []protocol.CacheEntry, written map[protocol.Name]protocol.Entry, removed []protocol.Name, c *readCache) map[protocol.Name]bool {
	reset := map[protocol.Name]bool{}
	for _, p := range removed {
		reset[protocol.Name(path.Dir(string(p)))] = true
	}
	// Whatever the extractor wrote into a directory it did not set (one
	// the plugin found as listed, so sent no header for) moved its time.
	for p := range written {
		if parent := protocol.Name(path.Dir(string(p))); p != "." {
			if _, set := written[parent]; !set {
				reset[parent] = true
			}
		}
	}
	for _, e := range entries {
		if _, sent := written[e.Path]; sent || e.Kind != protocol.KindDir {
			continue
		}
		st := c.stats[e.Path]
		if st == nil || st.Mode&0o7777 != e.Mode&0o7777 || st.Mtim.Nano() != listedTime(e).UnixNano() {
			reset[e.Path] = true
		}
	}
	return reset
}

// resetDirs gives the cached tree's directories that need it (reset) their
// listed modes and times, children first.
func resetDirs(root *os.Root, entries []protocol.CacheEntry, reset map[protocol.Name]bool) error {
	var dirs []protocol.CacheEntry
	for _, e := range entries {
		if e.Kind == protocol.KindDir && reset[e.Path] {
			dirs = append(dirs, e)
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].Path > dirs[j].Path })
	for _, e := range dirs {
		p := cachePath(e.Path)
		if err := root.Chmod(p, fs.FileMode(e.Mode)&fs.ModePerm|specialBits(int64(e.Mode))); err != nil {
			return err
		}
		if err := root.Chtimes(p, time.Now(), listedTime(e)); err != nil {
			return err
		}
	}
	return nil
}

// listedTime is the modification time an entry is given: the local one,
// to the second, as a full upload's tar carries it.
func listedTime(e protocol.CacheEntry) time.Time {
	return time.Unix(0, e.MTime).Truncate(time.Second)
}
