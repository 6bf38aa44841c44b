package workdir

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// A failed benchmark keeps its cluster's logs, and says where; a
// successful one leaves nothing.
func TestRemoveKeepingLogs(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	for _, failed := range []bool{false, true} {
		d, err := New(t.TempDir(), "bench-")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(d.Cluster, "logs"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d.Cluster, "logs", "kube-apiserver.log"), []byte("why"), 0o644); err != nil {
			t.Fatal(err)
		}
		var result error
		if failed {
			result = errors.New("a contender failed")
		}
		d.RemoveKeepingLogs(&result)
		if _, err := os.Stat(d.Path); !os.IsNotExist(err) {
			t.Errorf("failed=%v: %s is still there (%v)", failed, d.Path, err)
		}
		if !failed {
			if result != nil {
				t.Errorf("a success became %v", result)
			}
			continue
		}
		m := regexp.MustCompile(`logs are in (\S+)\)$`).FindStringSubmatch(result.Error())
		if m == nil {
			t.Fatalf("the error does not say where the logs went: %v", result)
		}
		if got, err := os.ReadFile(filepath.Join(m[1], "kube-apiserver.log")); err != nil || string(got) != "why" {
			t.Errorf("kept log: %q, %v", got, err)
		}
	}
}

// A failed benchmark whose cluster wrote no logs leaves no empty directory
// for them.
func TestRemoveKeepingLogsWithoutLogs(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	d, err := New(t.TempDir(), "bench-")
	if err != nil {
		t.Fatal(err)
	}
	result := errors.New("the cluster did not start")
	d.RemoveKeepingLogs(&result)
	if result.Error() != "the cluster did not start" {
		t.Errorf("the error names logs that were not kept: %v", result)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
