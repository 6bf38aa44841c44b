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
