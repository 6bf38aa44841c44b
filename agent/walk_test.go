//go:build linux

package agent

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// walk's FileInfo from fstatat is what os.Lstat says of every kind of
// entry, in lexical order, parents first, links not followed; an entry's
// place reads its file's bytes and its link's target.
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
	long := strings.Repeat("x/", 300) // beyond readlink's first buffer
	os.Symlink(long, filepath.Join(top, "b/long"))
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
	err = walk(root, "top", func(rel string, fi os.FileInfo, in at) error {
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
		switch {
		case fi.Mode().IsRegular():
			f, err := in.open()
			if err != nil {
				return err
			}
			data, err := io.ReadAll(f)
			f.Close()
			if wantData, _ := os.ReadFile(filepath.Join(dir, rel)); err != nil || string(data) != string(wantData) {
				t.Errorf("%s: read %q, %v; want %q", rel, data, err, wantData)
			}
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := in.readlink()
			if wantTarget, _ := os.Readlink(filepath.Join(dir, rel)); err != nil || target != wantTarget {
				t.Errorf("%s: readlink %q, %v; want %q", rel, target, err, wantTarget)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"top", "top/a", "top/b", "top/b/c", "top/b/c/file", "top/b/link", "top/b/long", "top/dirlink", "top/fifo", "top/suid"}
	if !equal(got, want) {
		t.Errorf("walked %v, want %v", got, want)
	}
}

// A file swapped since walk saw it is not followed (a link), nor waited on
// (a fifo with no writer: it reads as empty, which a send reports as a
// file that shrank).
func TestOpenAtRefusesWhatWasSwapped(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "secret"), []byte("s"), 0o600)
	os.Symlink("secret", filepath.Join(dir, "was-a-file"))
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if f, err := (at{rel: "was-a-file", dir: int(d.Fd()), name: "was-a-file"}).open(); err == nil {
		f.Close()
		t.Error("opened a symlink")
	}
	done := make(chan []byte)
	go func() {
		f, err := (at{rel: "fifo", dir: int(d.Fd()), name: "fifo"}).open()
		if err != nil {
			t.Error(err)
			close(done)
			return
		}
		data, _ := io.ReadAll(f)
		f.Close()
		done <- data
	}()
	select {
	case data := <-done:
		if len(data) != 0 {
			t.Errorf("read %q from a fifo with no writer", data)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("open waited for the fifo's writer")
	}
}
