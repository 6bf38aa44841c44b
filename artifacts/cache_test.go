package artifacts

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// TestUploadCached: each run's input is exactly the local tree, whatever
// changed, was deleted or changed mode since the cache held it, whatever
// the previous task did to its copy and whatever was written into the
// cache behind the agent's back; the second run sends only what changed.
func TestUploadCached(t *testing.T) {
	ctx := t.Context()
	local := filepath.Join(t.TempDir(), "checkout")
	writeTree(t, local, map[string]string{"main.go": "package main\n", "pkg/a.go": "package pkg\n",
		"run.sh": "exe:#!/bin/sh\n", "link": "link:pkg/a.go", "empty": "dir", "gone/x": "x"})
	container := t.TempDir()
	cache := filepath.Join(container, "cache")
	ep := Endpoint{Executor: &localExecutor{bin: busyboxBin(t)}, Container: podexec.Container{Name: "inputs"}, WorkingDir: container}
	var w warnings
	s := DefaultSettings(w.warnf)
	s.IncludeIgnored, s.Agent = true, agentOnly
	var said strings.Builder
	run := func(step string) {
		t.Helper()
		input := filepath.Join(container, "build", step)
		said.Reset()
		in := s.internal()
		in.verbose = func(format string, a ...any) { fmt.Fprintf(&said, format, a...) }
		if err := uploadCached(ctx, ep, s, in, local, input, cache); err != nil {
			t.Fatalf("%s: UploadCached: %v (%s)", step, err, w.b.String())
		}
		if got, want := tree(t, input), tree(t, local); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the input holds %v, want %v", step, got, want)
		}
		// The task writes into its copy: the cache never sees it.
		os.WriteFile(filepath.Join(input, "main.go"), []byte("changed by the task"), 0o644)
		os.Remove(filepath.Join(input, "run.sh"))
	}
	run("cold")
	run("warm")
	if !strings.Contains(said.String(), "4 of its files held, 0 bytes to send") {
		t.Errorf("warm run: %s", said.String())
	}
	writeTree(t, local, map[string]string{"pkg/a.go": "package pkg // edited\n", "new": "new"})
	os.RemoveAll(filepath.Join(local, "gone"))
	os.Chmod(filepath.Join(local, "main.go"), 0o600)
	os.Remove(filepath.Join(local, "link"))
	os.Symlink("main.go", filepath.Join(local, "link"))
	run("changed")
	if !strings.Contains(said.String(), "1 of its files held") {
		t.Errorf("changed run: %s", said.String())
	}
	// Behind the agent's back: same size, other bytes.
	os.WriteFile(filepath.Join(cache, "tree", "run.sh"), []byte("#!/bin/XX\n"), 0o755)
	os.WriteFile(filepath.Join(cache, "tree", "stray"), []byte("stray"), 0o644)
	run("tampered")
	if !strings.Contains(said.String(), "3 of its files held") {
		t.Errorf("tampered run: %s", said.String())
	}
	if w.b.Len() > 0 {
		t.Errorf("warnings: %s", w.b.String())
	}
}

// A local file that cannot be read is the error, said once, with no
// fallback to a full upload that would fail on it too.
func TestUploadCachedLocalFailureIsTheError(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("root reads any file")
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
	err := UploadCached(t.Context(), ep, s, local, filepath.Join(container, "in"), filepath.Join(container, "cache"))
	if err == nil || !strings.Contains(err.Error(), "permission denied") || w.b.Len() > 0 {
		t.Errorf("UploadCached = %v, warnings %q; want the local error alone", err, w.b.String())
	}
}
