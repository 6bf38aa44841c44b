package transfer

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
)

// agentSettings are the agent's: the tests fail where it cannot run.
func agentSettings(w *warnings, compress string) settings {
	s := testSettings(w, compress)
	s.agent = agentOnly
	return s
}

func needAgent(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("the agent runs on linux/amd64 and linux/arm64")
	}
}

func TestAgentUploadLandsARealDirectory(t *testing.T) {
	needAgent(t)
	for _, compress := range []string{compressNone, compressGzip, compressAuto} {
		t.Run(compress, func(t *testing.T) {
			ctx := context.Background()
			local := filepath.Join(t.TempDir(), "src")
			writeTree(t, local, sampleTree)
			container := t.TempDir()
			rem := &remote{exec: &localExecutor{bin: busyboxBin(t)}, workingDir: container}
			var w warnings
			for round := range 2 { // the second replaces the first
				if round == 1 {
					os.Remove(filepath.Join(local, "a.txt"))
					writeTree(t, local, map[string]string{"new/file": "new\n"})
				}
				if err := upload(ctx, rem, local, "work", true, agentSettings(&w, compress)); err != nil {
					t.Fatalf("upload %d: %v (%s)", round, err, w.b.String())
				}
				landed := filepath.Join(container, "work", "src")
				if fi, err := os.Lstat(landed); err != nil || !fi.IsDir() {
					t.Fatalf("upload %d landed as %v (%v), want a real directory", round, fi.Mode(), err)
				}
				if got, want := tree(t, landed), tree(t, local); !reflect.DeepEqual(got, want) {
					t.Fatalf("upload %d: tree = %v\nwant %v", round, got, want)
				}
				if entries, _ := os.ReadDir(filepath.Join(container, "work")); len(entries) != 1 {
					t.Errorf("upload %d left beside it: %v", round, entries)
				}
			}
			if w.b.Len() != 0 {
				t.Errorf("warnings: %s", w.b.String())
			}
		})
	}
}

// Concourse tasks reach sibling inputs through ../: two uploads side by
// side are two real directories.
func TestAgentSiblingUploadsReachEachOther(t *testing.T) {
	needAgent(t)
	ctx := context.Background()
	src := t.TempDir()
	writeTree(t, filepath.Join(src, "repo"), map[string]string{"main.go": "package main\n"})
	writeTree(t, filepath.Join(src, "ci"), map[string]string{"build.sh": "exe:#!/bin/sh\nls main.go && echo built\n"})
	container := t.TempDir()
	rem := &remote{exec: &localExecutor{bin: busyboxBin(t)}, workingDir: container}
	var w warnings
	for _, dir := range []string{"repo", "ci"} {
		if err := upload(ctx, rem, filepath.Join(src, dir), "w", true, agentSettings(&w, compressAuto)); err != nil {
			t.Fatalf("upload %s: %v", dir, err)
		}
	}
	cmd := exec.Command("sh", "../ci/build.sh")
	cmd.Dir = filepath.Join(container, "w", "repo")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "built") {
		t.Errorf("cd repo && sh ../ci/build.sh: %v: %s", err, out)
	}
}

func TestAgentUploadCancelledLeavesNothing(t *testing.T) {
	needAgent(t)
	local := filepath.Join(t.TempDir(), "src")
	writeTree(t, local, map[string]string{"big": strings.Repeat("y", 64<<20)})
	container := t.TempDir()
	rem := &remote{exec: &localExecutor{bin: busyboxBin(t), outRate: 0}, workingDir: container}
	ctx, cancel := context.WithCancel(context.Background())
	var w warnings
	s := agentSettings(&w, compressNone)
	s.progress = nil
	done := make(chan error, 1)
	go func() { done <- upload(ctx, rem, local, "work", true, s) }()
	// Cancelled once the agent has started receiving.
	for deadline := 0; deadline < 400; deadline++ {
		if entries, _ := os.ReadDir(filepath.Join(container, "work")); len(entries) > 0 {
			break
		}
		sleepMillis(5)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled upload succeeded")
	}
	waitEmpty(t, filepath.Join(container, "work"))
}

func sleepMillis(n int) { time.Sleep(time.Duration(n) * time.Millisecond) }

// waitEmpty waits a few seconds (the agent ends once its stdin closes)
// until dir holds nothing but what a killed launcher may leave.
func waitEmpty(t *testing.T, dir string) {
	t.Helper()
	var entries []os.DirEntry
	for range 100 {
		entries, _ = os.ReadDir(dir)
		if len(entries) == 0 {
			return
		}
		sleepMillis(50)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	t.Errorf("left in %s after an interrupted upload: %v", dir, names)
}

// --compress auto compresses an upload through the agent with S2 where its
// binary crossed fast, zstd where slowly or unknown; never a small or an
// incompressible one.
func TestAgentCodec(t *testing.T) {
	const big = 64 << 20
	for _, tt := range []struct {
		compress   string
		total      int64
		ratio      float64
		binaryRate float64
		want       string
	}{
		{compressNone, big, 0.2, 100e6, protocol.CodecNone},
		{compressGzip, big, 0.2, 100e6, protocol.CodecGzip},
		{compressAuto, smallTransfer - 1, 0.2, 100e6, protocol.CodecNone},
		{compressAuto, big, 0.9, 100e6, protocol.CodecNone},
		{compressAuto, big, 0, 100e6, protocol.CodecNone},
		{compressAuto, big, 0.2, 0, protocol.CodecZstd},
		{compressAuto, big, 0.2, 10e6, protocol.CodecZstd},
		{compressAuto, big, 0.2, 24e6, protocol.CodecS2},
	} {
		if got := agentCodec(tt.compress, tt.total, tt.ratio, tt.binaryRate); got != tt.want {
			t.Errorf("agentCodec(%s, %d, %v, %v) = %q, want %q", tt.compress, tt.total, tt.ratio, tt.binaryRate, got, tt.want)
		}
	}
}
