package transfer

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// TestUploadIntoAndDownloadAs: execute's inputs arrive in place, in an empty
// directory (a volume), under the input's name whatever the local one,
// through the agent and through the scripts; outputs land as the path given.
func TestUploadIntoAndDownloadAs(t *testing.T) {
	for _, agent := range []AgentUse{agentOnly, agentOff} {
		t.Run(map[AgentUse]string{agentOnly: "agent", agentOff: "scripts"}[agent], func(t *testing.T) {
			testUploadIntoAndDownloadAs(t, agent)
		})
	}
}

func testUploadIntoAndDownloadAs(t *testing.T, agent AgentUse) {
	ctx := context.Background()
	local := filepath.Join(t.TempDir(), "checkout")
	writeTree(t, local, map[string]string{"main.go": "package main\n", "pkg/a.go": "package pkg\n"})
	container := t.TempDir()
	if err := os.MkdirAll(filepath.Join(container, "build", "repo"), 0o755); err != nil {
		t.Fatal(err)
	}
	ep := Endpoint{Executor: &localExecutor{bin: busyboxBin(t)}, Container: podexec.Container{Name: "inputs"}, WorkingDir: filepath.Join(container, "build")}
	var w warnings
	s := DefaultSettings(testSettings(&w, compressNone).warnf)
	s.IncludeIgnored, s.Agent = true, agent
	if err := UploadInto(ctx, ep, s, local, "repo"); err != nil {
		t.Fatalf("UploadInto: %v (%s)", err, w.b.String())
	}
	repo := filepath.Join(container, "build", "repo")
	if fi, err := os.Lstat(repo); err != nil || !fi.IsDir() {
		t.Fatalf("repo is no longer a plain directory: %v %v", fi, err)
	}
	if got, want := tree(t, repo), tree(t, local); !reflect.DeepEqual(got, want) {
		t.Errorf("uploaded %v, want %v", got, want)
	}
	if entries, _ := os.ReadDir(filepath.Join(container, "build")); len(entries) != 1 {
		t.Errorf("left beside the input: %v", entries)
	}
	dest := filepath.Join(t.TempDir(), "out", "mine")
	if err := DownloadAs(ctx, ep, s, "repo", dest); err != nil {
		t.Fatalf("DownloadAs: %v", err)
	}
	if got, want := tree(t, dest), tree(t, local); !reflect.DeepEqual(got, want) {
		t.Errorf("downloaded %v, want %v", got, want)
	}
}
