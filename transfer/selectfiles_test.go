package transfer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestSelectFiles: outside a work tree everything goes, as fly; a git that
// refuses the tree is an error naming git's reason, never a silent upload
// of everything (.git and ignored secrets included).
func TestSelectFiles(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null") // no safe.directory from the user's config
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	var warnings strings.Builder
	warnf := func(format string, a ...any) { fmt.Fprintf(&warnings, format, a...) }

	plain := t.TempDir()
	writeTree(t, plain, map[string]string{"a": "x"})
	if files, err := selectFiles(context.Background(), plain, true, warnf); err != nil || files != nil {
		t.Errorf("outside a work tree: selectFiles = %v, %v; want everything (nil, nil)", files, err)
	}

	repo := t.TempDir()
	writeTree(t, repo, map[string]string{".gitignore": "secret\n", "main.go": "package main\n", "secret": "key"})
	git(t, repo, "init", "-q")
	files, err := selectFiles(context.Background(), repo, true, warnf)
	if want := []string{".gitignore", "main.go"}; err != nil || !reflect.DeepEqual(files, want) {
		t.Errorf("in a work tree: selectFiles = %v, %v; want %v", files, err, want)
	}

	empty := t.TempDir()
	writeTree(t, empty, map[string]string{".git/info/exclude": "*\n"})
	git(t, empty, "init", "-q")
	if files, err := selectFiles(context.Background(), empty, true, warnf); err != nil || files == nil || len(files) != 0 {
		t.Errorf("a work tree that ignores everything: selectFiles = %#v, %v; want an empty selection, not everything", files, err)
	}

	if os.Geteuid() == 0 {
		// A repository owned by someone else: git refuses it ("dubious
		// ownership"), as it does on shared CI checkouts.
		if err := filepath.Walk(repo, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, 4321, 4321)
		}); err != nil {
			t.Fatal(err)
		}
		_, err := selectFiles(context.Background(), repo, true, warnf)
		if err == nil || !strings.Contains(err.Error(), "dubious ownership") || !strings.Contains(err.Error(), "--include-ignored") {
			t.Errorf("a refused work tree: selectFiles error = %v, want git's reason and the way out", err)
		}
	}
	if warnings.Len() != 0 {
		t.Errorf("warnings: %s", warnings.String())
	}
}

// An interrupted selection says the interruption, not "signal: killed"
// from the git it stopped: cli exits on it quietly with the signal's status.
func TestSelectFilesInterrupted(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	repo := t.TempDir()
	writeTree(t, repo, map[string]string{"main.go": "package main\n"})
	git(t, repo, "init", "-q")
	interrupted := errors.New("interrupted")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(interrupted)
	if _, err := selectFiles(ctx, repo, true, func(string, ...any) {}); !errors.Is(err, interrupted) {
		t.Errorf("selectFiles = %v, want the interruption", err)
	}
}
