package nodeagent

import (
	"os"
	"path/filepath"
	"testing"
)

func TestUnescapeMountPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{`/plain/path`, "/plain/path"},
		{`/with\040space`, "/with space"},
		{`/tab\011and\134backslash`, "/tab\tand\\backslash"},
		{`/trailing\04`, `/trailing\04`},
	}
	for _, tt := range tests {
		if got := unescapeMountPath(tt.in); got != tt.want {
			t.Errorf("unescapeMountPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestBindMounts needs root, as the node agent does.
func TestBindMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "keep"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	pod := t.TempDir()
	var m mountTable
	rw := filepath.Join(pod, "rootfs", "data")
	ro := filepath.Join(pod, "rootfs", "ro")
	if err := m.bind(data, rw, false); err != nil {
		t.Fatalf("bind: %v", err)
	}
	t.Cleanup(func() { _ = unmountUnder(pod) })
	if err := m.bind(data, ro, true); err != nil {
		t.Fatalf("bind read-only: %v", err)
	}
	if err := os.WriteFile(filepath.Join(rw, "new"), []byte("x"), 0o644); err != nil {
		t.Errorf("write through a read-write bind: %v", err)
	}
	if err := os.WriteFile(filepath.Join(ro, "other"), []byte("x"), 0o644); err == nil {
		t.Error("write through a read-only bind succeeded")
	}

	// Removing the pod while its mounts are in place must not touch the data.
	if err := removeUnmounted(pod); err == nil {
		t.Fatal("removeUnmounted removed a directory with mounts below it")
	}
	if err := m.unmountAll(); err != nil {
		t.Fatalf("unmountAll: %v", err)
	}
	if points, _ := mountPointsUnder(pod); len(points) != 0 {
		t.Fatalf("mounts left after unmountAll: %v", points)
	}
	if err := removeUnmounted(pod); err != nil {
		t.Fatalf("removeUnmounted: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(data, "keep")); err != nil || string(b) != "precious" {
		t.Errorf("volume data after pod removal = %q, %v", b, err)
	}
}
