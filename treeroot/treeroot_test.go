package treeroot

import (
	"os"
	"path/filepath"
	"testing"
)

func openRoot(t *testing.T) (string, *os.Root) {
	t.Helper()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return dir, root
}

// create makes name through d and says whether it landed at name.
func create(t *testing.T, d *Dirs, dir, name string) bool {
	t.Helper()
	in, base := d.At(name)
	f, err := in.OpenFile(base, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	f.Close()
	_, err = os.Lstat(filepath.Join(dir, filepath.FromSlash(name)))
	return err == nil
}

// Names resolve from their directory, kept open, or from the root once
// Max directories are open; either way the entry lands where named.
func TestAtResolvesWhereNamed(t *testing.T) {
	for _, max := range []int{Max, 1} {
		dir, root := openRoot(t)
		if err := root.MkdirAll("a/b/c", 0o755); err != nil {
			t.Fatal(err)
		}
		d := New(root)
		d.max = max
		for _, name := range []string{"top", "a/f", "a/b/f", "a/b/c/f", "a/b/c/g"} {
			if !create(t, d, dir, name) {
				t.Errorf("max %d: %s did not land where named", max, name)
			}
		}
		if in, base := d.At("a/b/c/h"); max == 1 && (in != root || base != "a/b/c/h") {
			t.Errorf("max 1: At resolved through a kept directory (%q) past its bound", base)
		}
		if len(d.open) > max {
			t.Errorf("max %d: %d directories open", max, len(d.open))
		}
		d.Close()
		if len(d.open) != 0 {
			t.Errorf("Close left %d open", len(d.open))
		}
	}
}

// A directory removed and made again is resolved afresh once forgotten:
// the one kept open is the removed one, where an entry would be lost.
func TestForgetDropsARemovedDirectory(t *testing.T) {
	dir, root := openRoot(t)
	if err := root.MkdirAll("a/b", 0o755); err != nil {
		t.Fatal(err)
	}
	d := New(root)
	defer d.Close()
	create(t, d, dir, "a/b/f")
	if err := root.RemoveAll("a"); err != nil {
		t.Fatal(err)
	}
	if err := root.MkdirAll("a/b", 0o755); err != nil {
		t.Fatal(err)
	}
	d.Forget("a")
	if !create(t, d, dir, "a/b/g") {
		t.Errorf("a/b/g landed in the removed directory")
	}
}

// A directory that cannot be opened (not there, or not a directory)
// leaves the name to the root, whose own call then says why.
func TestAtFallsBackToTheRoot(t *testing.T) {
	_, root := openRoot(t)
	if err := root.WriteFile("file", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d := New(root)
	defer d.Close()
	for _, name := range []string{"missing/x", "file/x"} {
		if in, base := d.At(name); in != root || base != name {
			t.Errorf("At(%s) = %q in another directory, want the root", name, base)
		}
	}
}
