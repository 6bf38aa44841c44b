package images

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestName(t *testing.T) {
	tests := []struct{ ref, want string }{
		{"busybox", "busybox"},
		{"busybox:1.36", "busybox"},
		{"docker.io/library/busybox:1.36", "busybox"},
		{"localhost:5000/team/bash:5@sha256:abcd", "bash"},
		{"gcr.io/distroless/static-debian12:nonroot", "static-debian12"},
		{"Distroless", "distroless"},
		{"ghcr.io/x/busybox@sha256:0123", "busybox"},
	}
	for _, tt := range tests {
		if got := Name(tt.ref); got != tt.want {
			t.Errorf("Name(%q) = %q, want %q", tt.ref, got, tt.want)
		}
	}
}

func TestEnsureAndLookup(t *testing.T) {
	if _, err := os.Stat(BusyboxBinary); err != nil {
		t.Skip("busybox-static not installed")
	}
	if _, err := os.Stat(BashBinary); err != nil {
		t.Skip("bash-static not installed")
	}
	dir := t.TempDir()
	pause := filepath.Join(t.TempDir(), "pause")
	if err := os.WriteFile(pause, []byte("#!pause"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(dir, pause); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	for _, name := range []string{"busybox", "bash"} {
		img, err := Lookup(dir, "docker.io/library/"+name+":latest")
		if err != nil {
			t.Fatalf("Lookup(%s): %v", name, err)
		}
		for _, p := range []string{"bin/sh", "bin/tar", "usr/bin/env", "bin/busybox", "etc/passwd"} {
			if _, err := os.Lstat(filepath.Join(img.Rootfs, p)); err != nil {
				t.Errorf("image %s lacks %s: %v", name, p, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bash", "rootfs", "bin", "bash")); err != nil {
		t.Errorf("bash image lacks /bin/bash: %v", err)
	}
	img, err := Lookup(dir, "distroless")
	if err != nil {
		t.Fatalf("Lookup(distroless): %v", err)
	}
	if _, err := os.Lstat(filepath.Join(img.Rootfs, "bin", "sh")); err == nil {
		t.Errorf("distroless image has a shell")
	}
	if got := img.Config.Entrypoint; len(got) != 1 || got[0] != "/pause" {
		t.Errorf("distroless entrypoint = %v, want [/pause]", got)
	}

	// A second Ensure keeps the images; a changed input rebuilds only its image.
	marker := filepath.Join(dir, "busybox", "rootfs", "marker")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pause, []byte("#!pause v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(dir, pause); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("up-to-date busybox image was rebuilt")
	}
	got, err := os.ReadFile(filepath.Join(dir, "distroless", "rootfs", "pause"))
	if err != nil || string(got) != "#!pause v2" {
		t.Errorf("stale distroless image not rebuilt: %q, %v", got, err)
	}

	if _, err := Lookup(dir, "quay.io/nope/unknown:1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := Lookup(dir, ".."); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup(..) error = %v, want ErrNotFound", err)
	}
}
