// Package treeroot resolves names in a tree being written from their own
// directory, opened once: os.Root resolves a name one component at a
// time (an openat with O_NOFOLLOW and a close for each), so every lstat,
// mkdir, chmod or chtimes of an entry six levels down cost seven opens.
// Both extractors, the agent's in the container and the plugin's for
// what a container sends, land trees of thousands of directories.
//
// It imports the standard library only: package untar, which CI fuzzes,
// uses it.
package treeroot

import (
	"os"
	"path"
	"strings"
	"sync"
)

// Dirs keeps directories of a root open, each opened from its parent's
// opened directory (one openat), so that a name resolves in one step. It
// is safe for concurrent use. It opens only directories it is asked to
// resolve names in: the caller has made or checked them (a real
// directory, never a link), and os.Root keeps every open inside the root
// all the same.
type Dirs struct {
	root *os.Root
	max  int

	mu   sync.Mutex
	open map[string]*os.Root
}

// New keeps directories of root open, at most Max of them.
func New(root *os.Root) *Dirs {
	return &Dirs{root: root, max: Max, open: map[string]*os.Root{}}
}

// Max bounds the directories a Dirs keeps open: a quarter of what the
// process may open, at most 4,096 (maxOpen).
var Max = maxOpen()

// At is where name (slash-separated, relative to the root, clean)
// resolves in one step: its directory, opened, and its last component;
// or the root and name itself, when name is in the root itself or its
// directory cannot be kept open.
func (d *Dirs) At(name string) (*os.Root, string) {
	dir, base := path.Split(name)
	if dir == "" {
		return d.root, name
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if r := d.dir(strings.TrimSuffix(dir, "/")); r != nil {
		return r, base
	}
	return d.root, name
}

// dir is directory name opened, or nil when it cannot be kept open; the
// caller holds d.mu.
func (d *Dirs) dir(name string) *os.Root {
	if name == "." || name == "" {
		return d.root
	}
	if r, ok := d.open[name]; ok {
		return r
	}
	if len(d.open) >= d.max {
		return nil
	}
	parent := d.dir(path.Dir(name))
	if parent == nil {
		return nil
	}
	r, err := parent.OpenRoot(path.Base(name))
	if err != nil {
		return nil // the caller's own call through the root says why
	}
	d.open[name] = r
	return r
}

// Forget closes the directory kept open at name and those below it: the
// caller removed or replaced name.
func (d *Dirs) Forget(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for n, r := range d.open {
		if n == name || strings.HasPrefix(n, name+"/") {
			r.Close()
			delete(d.open, n)
		}
	}
}

// Close closes every directory kept open (not the root). The Dirs may be
// used again: it opens them again as names need them.
func (d *Dirs) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for n, r := range d.open {
		r.Close()
		delete(d.open, n)
	}
}
