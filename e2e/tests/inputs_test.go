package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// listingTask lists its input src, as inputListing lists a local tree, into
// its output out, then runs then (a shell line, maybe empty) in src.
func listingTask(t *testing.T, then string) string {
	t.Helper()
	return writeTask(t, `platform: linux
image_resource: {type: registry-image, source: {repository: busybox}}
inputs: [{name: src}]
outputs: [{name: out}]
run:
  path: sh
  args:
  - -c
  - |
    set -e
    cd src
    find . -mindepth 1 | while read -r p; do
      if [ -L "$p" ]; then echo "$p l $(readlink "$p")"
      elif [ -d "$p" ]; then echo "$p d $(stat -c %a "$p")"
      else echo "$p f $(stat -c %a "$p") $(sha256sum <"$p" | cut -c1-64)"; fi
    done | sort >../out/listing
    `+then+`
`)
}

// inputListing lists dir as listingTask does, sorted the same way (bytes).
func inputListing(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel := "./" + filepath.ToSlash(strings.TrimPrefix(p, dir+string(filepath.Separator)))
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			lines = append(lines, rel+" l "+target)
		case fi.IsDir():
			lines = append(lines, fmt.Sprintf("%s d %o", rel, fi.Mode().Perm()))
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			lines = append(lines, fmt.Sprintf("%s f %o %s", rel, fi.Mode().Perm(), hex.EncodeToString(sum[:])))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// inputTree is a tree with what an input must keep: modes, symlinks
// relative and absolute, an empty directory, a deeper file.
func inputTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	mustWrite(t, filepath.Join(src, "main.go"), []byte("package main\n"), 0o644)
	mustWrite(t, filepath.Join(src, "run.sh"), []byte("#!/bin/sh\necho ran\n"), 0o755)
	mustWrite(t, filepath.Join(src, "secret.key"), []byte("not really\n"), 0o600)
	mustWrite(t, filepath.Join(src, "pkg", "deep", "a.go"), []byte("package deep\n"), 0o640)
	mustSymlink(t, "pkg/deep/a.go", filepath.Join(src, "rel"))
	mustSymlink(t, "/etc/hostname", filepath.Join(src, "abs"))
	if err := os.Mkdir(filepath.Join(src, "empty"), 0o750); err != nil {
		t.Fatal(err)
	}
	return src
}

// executeListing runs listingTask on src and returns what the task saw.
func executeListing(t *testing.T, ns, src, then string, extra ...string) (string, result) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	r := execute(t, ns, append([]string{"-c", listingTask(t, then), "-i", "src=" + src, "-o", "out=" + out}, extra...)...)
	if r.exitCode != 0 {
		t.Fatalf("execute: exit %d\nstdout:\n%s\nstderr:\n%s", r.exitCode, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(out, "listing"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b), r
}

func TestExecuteInputsExactThroughAgentAndScripts(t *testing.T) {
	onEachNodeKind(t, testExecuteInputsExactThroughAgentAndScripts)
}

// An input reaches the task byte for byte with its modes, symlinks and
// empty directories, through the agent (the default) and through the
// scripts.
func testExecuteInputsExactThroughAgentAndScripts(t *testing.T, ns string) {
	src := inputTree(t)
	want := inputListing(t, src)
	for _, mode := range []string{"on", "off"} {
		t.Run("agent "+mode, func(t *testing.T) {
			forceAgent(t, mode)
			if got, _ := executeListing(t, ns, src, ""); got != want {
				t.Errorf("the task saw:\n%s\nwant:\n%s", got, want)
			}
		})
	}
	waitNothingLeft(t, ns)
}
