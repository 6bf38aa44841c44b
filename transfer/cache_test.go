package transfer

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// TestUploadCached: each run's input (the cache's tree, which the task
// uses in place) is exactly the local tree, modes and times included,
// whatever changed, was deleted or changed mode since the cache held it,
// whatever the previous task did to the tree and whatever was written into
// the cache behind the agent's back; the second run sends only what
// changed.
func TestUploadCached(t *testing.T) {
	ctx := t.Context()
	local := filepath.Join(t.TempDir(), "checkout")
	writeTree(t, local, map[string]string{"main.go": "package main\n", "pkg/a.go": "package pkg\n",
		"run.sh": "exe:#!/bin/sh\n", "link": "link:pkg/a.go", "empty": "dir", "gone/x": "x"})
	container := t.TempDir()
	cache := filepath.Join(container, "cache")
	input := filepath.Join(cache, "tree")
	ep := Endpoint{Executor: &localExecutor{bin: busyboxBin(t)}, Container: podexec.Container{Name: "inputs"}, WorkingDir: container}
	var w warnings
	s := DefaultSettings(w.warnf)
	s.IncludeIgnored, s.Agent = true, agentOnly
	var said strings.Builder
	run := func(step string) {
		t.Helper()
		said.Reset()
		in := s.internal()
		in.verbose = func(format string, a ...any) { fmt.Fprintf(&said, format, a...) }
		if err := uploadCached(ctx, ep, s, in, local, cache); err != nil {
			t.Fatalf("%s: UploadCached: %v (%s)", step, err, w.b.String())
		}
		if got, want := tree(t, input), tree(t, local); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the input holds %v, want %v", step, got, want)
		}
		if got, want := mtimes(t, input), mtimes(t, local); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the input's times are %v, want %v", step, got, want)
		}
	}
	run("cold")
	run("warm")
	if !strings.Contains(said.String(), "4 of its files and 3 directories held, 0 bytes to send") {
		t.Errorf("warm run: %s", said.String())
	}
	// The task changes its input every way it can: the next run repairs it.
	os.WriteFile(filepath.Join(input, "main.go"), []byte("changed by the task"), 0o644)
	os.Remove(filepath.Join(input, "run.sh"))
	os.Rename(filepath.Join(input, "gone", "x"), filepath.Join(input, "y"))
	os.Chmod(filepath.Join(input, "pkg", "a.go"), 0o600)
	os.Chmod(filepath.Join(input, "pkg"), 0o700)
	os.Chtimes(filepath.Join(input, "empty"), time.Now(), time.Now())
	os.Mkdir(filepath.Join(input, "made"), 0o755)
	os.Remove(filepath.Join(input, "link"))
	os.Symlink("elsewhere", filepath.Join(input, "link"))
	run("after the task")
	if !strings.Contains(said.String(), "0 of its files and 0 directories held") {
		t.Errorf("run after the task: %s", said.String())
	}
	// touch: same content, a new time.
	os.Chtimes(filepath.Join(input, "main.go"), time.Now(), time.Now().Add(time.Hour))
	run("touched")
	if !strings.Contains(said.String(), "3 of its files and 3 directories held") {
		t.Errorf("run after touch: %s", said.String())
	}
	writeTree(t, local, map[string]string{"pkg/a.go": "package pkg // edited\n", "new": "new"})
	os.RemoveAll(filepath.Join(local, "gone"))
	os.Chmod(filepath.Join(local, "main.go"), 0o600)
	os.Remove(filepath.Join(local, "link"))
	os.Symlink("main.go", filepath.Join(local, "link"))
	os.Chtimes(filepath.Join(local, "run.sh"), time.Now(), time.Now().Add(-time.Hour)) // same content
	run("changed")
	if !strings.Contains(said.String(), "1 of its files and 2 directories held") { // run.sh, touched
		t.Errorf("changed run: %s", said.String())
	}
	// Behind the agent's back: same size, other bytes.
	os.WriteFile(filepath.Join(input, "run.sh"), []byte("#!/bin/XX\n"), 0o755)
	os.WriteFile(filepath.Join(input, "stray"), []byte("stray"), 0o644)
	run("tampered")
	if !strings.Contains(said.String(), "3 of its files and 2 directories held") {
		t.Errorf("tampered run: %s", said.String())
	}
	if w.b.Len() > 0 {
		t.Errorf("warnings: %s", w.b.String())
	}
}

// mtimes are the modification times of the tree at dir, to the second (an
// upload's), but for symlinks'.
func mtimes(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		fi, err := d.Info()
		rel, _ := filepath.Rel(dir, p)
		m[rel] = fi.ModTime().Unix()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A local file that cannot be read is the error, said once, with no
// fallback to a full upload that would fail on it too.
func TestUploadCachedLocalFailureIsTheError(t *testing.T) {
	if os.Getuid() == 0 { // root reads any file
		runAsNobody(t)
		return
	}
	local := filepath.Join(t.TempDir(), "checkout")
	writeTree(t, local, map[string]string{"a": "a", "secret": "s"})
	if err := os.Chmod(filepath.Join(local, "secret"), 0); err != nil {
		t.Fatal(err)
	}
	container := t.TempDir()
	ep := Endpoint{Executor: &localExecutor{bin: busyboxBin(t)}, Container: podexec.Container{Name: "inputs"}, WorkingDir: container}
	var w warnings
	s := DefaultSettings(w.warnf)
	s.IncludeIgnored, s.Agent = true, agentOnly
	err := UploadCached(t.Context(), ep, s, local, filepath.Join(container, "cache"))
	if err == nil || !strings.Contains(err.Error(), "permission denied") || w.b.Len() > 0 {
		t.Errorf("UploadCached = %v, warnings %q; want the local error alone", err, w.b.String())
	}
}

// A warm run whose stream is corrupted on the way (a bit flipped in what
// changed) is said in one line and sent again whole through the cache:
// the input is still exactly the local tree, and the next run is warm.
func TestUploadCachedSendsWholeAfterAFailedSync(t *testing.T) {
	ctx := t.Context()
	local := filepath.Join(t.TempDir(), "checkout")
	writeTree(t, local, map[string]string{"main.go": "package main\n", "data/blob": strings.Repeat("0123456789abcdef", 16<<10)})
	container := t.TempDir()
	cache := filepath.Join(container, "cache") // a claim's root: it exists
	if err := os.Mkdir(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	ex := &localExecutor{bin: busyboxBin(t)}
	ep := Endpoint{Executor: ex, Container: podexec.Container{Name: "inputs"}, WorkingDir: container}
	var w warnings
	s := DefaultSettings(w.warnf)
	s.IncludeIgnored, s.Agent, s.Compress = true, agentOnly, compressNone
	if err := UploadCached(ctx, ep, s, local, cache); err != nil {
		t.Fatalf("cold run: %v", err)
	}
	writeTree(t, local, map[string]string{"data/blob": strings.Repeat("fedcba9876543210", 16<<10)})
	// The kept agent runs without its binary crossing again: 128 KiB into
	// stdin is inside the changed file's data.
	ex.flipAt, ex.flips = 128<<10, 1
	if err := UploadCached(ctx, ep, s, local, cache); err != nil {
		t.Fatalf("corrupted warm run: %v (%s)", err, w.b.String())
	}
	if ex.flips != 0 {
		t.Fatal("the stream was not corrupted: the test proves nothing")
	}
	if got := strings.Count(w.b.String(), "sending it whole"); got != 1 {
		t.Errorf("warnings %q; want one line saying the input is sent whole", w.b.String())
	}
	input := filepath.Join(cache, "tree")
	if got, want := tree(t, input), tree(t, local); !reflect.DeepEqual(got, want) {
		t.Errorf("the input holds %v, want %v", got, want)
	}
	w.b.Reset()
	var said strings.Builder
	in := s.internal()
	in.verbose = func(format string, a ...any) { fmt.Fprintf(&said, format, a...) }
	if err := uploadCached(ctx, ep, s, in, local, cache); err != nil || w.b.Len() > 0 {
		t.Fatalf("run after the whole one: %v (%s)", err, w.b.String())
	}
	if !strings.Contains(said.String(), "2 of its files and 1 directories held, 0 bytes to send") {
		t.Errorf("run after the whole one: %s", said.String())
	}
}
