//go:build linux

package agent

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// walk's FileInfo from fstatat is what os.Lstat says of every kind of
// entry, in lexical order, parents first, links not followed.
func TestWalkAgreesWithLstat(t *testing.T) {
	dir := t.TempDir()
	top := filepath.Join(dir, "top")
	for _, d := range []string{"top/b/c", "top/a"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(top, "b/c/file"), []byte("data"), 0o640)
	os.WriteFile(filepath.Join(top, "suid"), nil, 0o755)
	os.Chmod(filepath.Join(top, "suid"), 0o4755)
	os.Chmod(filepath.Join(top, "a"), 0o1777)
	os.Symlink("../../outside", filepath.Join(top, "b/link"))
	os.Symlink("b", filepath.Join(top, "dirlink")) // not followed into
	if err := syscall.Mkfifo(filepath.Join(top, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var got []string
	err = walk(root, "top", func(rel string, fi os.FileInfo) error {
		got = append(got, rel)
		want, err := os.Lstat(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		if fi.Mode() != want.Mode() || fi.Size() != want.Size() || !fi.ModTime().Equal(want.ModTime()) || fi.Name() != want.Name() {
			t.Errorf("%s: mode %v size %d time %v name %q, want %v %d %v %q", rel, fi.Mode(), fi.Size(), fi.ModTime(), fi.Name(),
				want.Mode(), want.Size(), want.ModTime(), want.Name())
		}
		if st, wst := fi.Sys().(*syscall.Stat_t), want.Sys().(*syscall.Stat_t); st.Ino != wst.Ino || st.Ctim != wst.Ctim || st.Mode != wst.Mode {
			t.Errorf("%s: stat %+v, want %+v", rel, st, wst)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"top", "top/a", "top/b", "top/b/c", "top/b/c/file", "top/b/link", "top/dirlink", "top/fifo", "top/suid"}
	if !equal(got, want) {
		t.Errorf("walked %v, want %v", got, want)
	}
}
