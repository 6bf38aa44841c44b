package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestSemver(t *testing.T) {
	tests := []struct {
		version string
		want    bool
	}{
		{"v1.2.3", true},
		{"v0.0.0-test", true},
		{"v1.0.0-rc.1+build.5", true},
		{"1.2.3", false},
		{"v1.2", false},
		{"v01.2.3", false},
		{"dev", false},
	}
	for _, tt := range tests {
		if got := semver.MatchString(tt.version); got != tt.want {
			t.Errorf("semver.MatchString(%q) = %v, want %v", tt.version, got, tt.want)
		}
	}
}

func TestArchiveName(t *testing.T) {
	tests := []struct {
		p    platform
		want string
	}{
		{platform{"linux", "amd64"}, "kubectl-concourse_v1.2.3_linux_amd64.tar.gz"},
		{platform{"darwin", "arm64"}, "kubectl-concourse_v1.2.3_darwin_arm64.tar.gz"},
		{platform{"windows", "arm64"}, "kubectl-concourse_v1.2.3_windows_arm64.zip"},
	}
	for _, tt := range tests {
		if got := archiveName("v1.2.3", tt.p); got != tt.want {
			t.Errorf("archiveName(v1.2.3, %s) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestParsePlatforms(t *testing.T) {
	got, err := parsePlatforms(defaultPlatforms)
	if err != nil || len(got) != 6 {
		t.Fatalf("parsePlatforms(default) = %v, %v; want 6 platforms", got, err)
	}
	for _, bad := range []string{"linux", "linux/", "/amd64", "linux/amd64,"} {
		if _, err := parsePlatforms(bad); err == nil {
			t.Errorf("parsePlatforms(%q) = nil error, want one", bad)
		}
	}
}

// archived is what a reader finds in an archive: content and permission bits.
type archived struct {
	data string
	mode os.FileMode
}

func TestWriteArchive(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	doc := filepath.Join(dir, "doc")
	if err := os.WriteFile(bin, []byte("binary"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(doc, []byte("text"), 0o600); err != nil {
		t.Fatal(err)
	}
	entries := []entry{{name: "kubectl-concourse", src: bin, mode: 0o755}, {name: "LICENSE", src: doc, mode: 0o644}}
	mtime := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	want := map[string]archived{"kubectl-concourse": {"binary", 0o755}, "LICENSE": {"text", 0o644}}

	for _, name := range []string{"a.tar.gz", "a.zip"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := writeArchive(path, entries, mtime); err != nil {
				t.Fatal(err)
			}
			var got map[string]archived
			if strings.HasSuffix(name, ".zip") {
				got = readZip(t, path, mtime)
			} else {
				got = readTarGz(t, path, mtime)
			}
			if len(got) != len(want) {
				t.Fatalf("entries = %v, want %v", got, want)
			}
			for n, w := range want {
				if got[n] != w {
					t.Errorf("entry %s = %+v, want %+v", n, got[n], w)
				}
			}
			leftovers, _ := filepath.Glob(filepath.Join(dir, ".partial-*"))
			if len(leftovers) > 0 {
				t.Errorf("temporary files left: %v", leftovers)
			}
		})
	}
}

func readTarGz(t *testing.T, path string, mtime time.Time) map[string]archived {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]archived{}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if !hdr.ModTime.Equal(mtime) || hdr.Uid != 0 || hdr.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d, want %v, 0, 0", hdr.Name, hdr.ModTime, hdr.Uid, hdr.Gid, mtime)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = archived{string(data), hdr.FileInfo().Mode().Perm()}
	}
}

func readZip(t *testing.T, path string, mtime time.Time) map[string]archived {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := map[string]archived{}
	for _, f := range zr.File {
		if !f.Modified.Equal(mtime) {
			t.Errorf("%s: mtime %v, want %v", f.Name, f.Modified, mtime)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = archived{string(data), f.Mode().Perm()}
	}
	return out
}

func TestWriteChecksums(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"b.zip": "b", "a.tar.gz": "a"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sums := filepath.Join(dir, "checksums.txt")
	if err := writeChecksums(sums, []string{filepath.Join(dir, "b.zip"), filepath.Join(dir, "a.tar.gz")}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(sums)
	if err != nil {
		t.Fatal(err)
	}
	// sha256("a") and sha256("b"), sorted by file name as sha256sum -c reads them.
	want := "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb  a.tar.gz\n" +
		"3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d  b.zip\n"
	if string(got) != want {
		t.Errorf("checksums.txt = %q, want %q", got, want)
	}
}

// A release builds, by default, exactly the platforms .krew.yaml lists (the
// e2e test cross-compiles one per OS).
func TestDefaultPlatformsAreTheKrewManifests(t *testing.T) {
	manifest, err := os.ReadFile(filepath.Join("..", "..", ".krew.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, m := range regexp.MustCompile(`os: (\w+)\s+arch: (\w+)`).FindAllStringSubmatch(string(manifest), -1) {
		listed = append(listed, m[1]+"/"+m[2])
	}
	if got := strings.Join(listed, ","); got != defaultPlatforms {
		t.Errorf(".krew.yaml lists %s; the release builds %s", got, defaultPlatforms)
	}
}
