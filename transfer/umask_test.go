//go:build unix

package transfer

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestModeByUmask(t *testing.T) {
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, "data"), 0o777) // as an emptyDir sends it
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := modeByUmask(root, "data"); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, "data"))
	if fi.Mode().Perm() != 0o750 {
		t.Errorf("mode %v, want 0750 under umask 027", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left beside it: %v", entries)
	}
}
