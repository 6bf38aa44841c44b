package artifacts

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEntryPath(t *testing.T) {
	tests := []struct {
		name, in, want string
		unsafe         bool
	}{
		{name: "top", in: "out", want: ""},
		{name: "top with slash", in: "out/", want: ""},
		{name: "dot prefix", in: "./out/a/b", want: "a/b"},
		{name: "double slash", in: "out//a", want: "a"},
		{name: "absolute", in: "/etc/passwd", unsafe: true},
		{name: "absolute under prefix", in: "/out/a", unsafe: true},
		{name: "dotdot", in: "out/../x", unsafe: true},
		{name: "dotdot inside", in: "out/a/../b", unsafe: true},
		{name: "other top", in: "outside/a", unsafe: true},
		{name: "prefix as substring", in: "outx/a", unsafe: true},
		{name: "empty", in: "", unsafe: true},
		{name: "nul", in: "out/a\x00b", unsafe: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := entryPath(tt.in, "out")
			if tt.unsafe {
				if !errors.Is(err, errUnsafe) {
					t.Fatalf("entryPath(%q) = %q, %v; want unsafe", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("entryPath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestResolveInTree(t *testing.T) {
	tests := []struct {
		name   string
		links  map[string]string
		rel    string
		unsafe bool
	}{
		{name: "sibling", links: map[string]string{"a/l": "../b"}, rel: "a/l"},
		{name: "dangling inside", links: map[string]string{"l": "missing/x"}, rel: "l"},
		{name: "absolute", links: map[string]string{"l": "/etc"}, rel: "l", unsafe: true},
		{name: "up out of top", links: map[string]string{"l": ".."}, rel: "l", unsafe: true},
		{name: "deep up out", links: map[string]string{"a/b/l": "../../../x"}, rel: "a/b/l", unsafe: true},
		{name: "chain climbing out", links: map[string]string{"sub/l": "..", "x": "sub/l/../.."}, rel: "x", unsafe: true},
		{name: "chain through absolute", links: map[string]string{"a": "/tmp", "x": "a/y"}, rel: "x", unsafe: true},
		{name: "chain inside", links: map[string]string{"a": "d/e", "x": "a/../f"}, rel: "x"},
		{name: "loop", links: map[string]string{"a": "b", "b": "a"}, rel: "a", unsafe: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := resolveInTree(tt.links, tt.rel, tt.links[tt.rel])
			if tt.unsafe != errors.Is(err, errUnsafe) {
				t.Fatalf("resolveInTree(%q) = %v, want unsafe %v", tt.rel, err, tt.unsafe)
			}
		})
	}
}

type entry struct {
	h    tar.Header
	body string
}

func archive(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := e.h
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
		if h.Name == paxMarker {
			tw.Flush()
			patchTypeflag(b.Bytes()[b.Len()-int(roundBlock(h.Size))-512:], tar.TypeXHeader)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func roundBlock(n int64) int64 { return (n + 511) / 512 * 512 }

// patchTypeflag sets the typeflag of the header block hdr and its checksum.
func patchTypeflag(hdr []byte, flag byte) {
	hdr[156] = flag
	copy(hdr[148:156], "        ")
	sum := 0
	for _, c := range hdr[:512] {
		sum += int(c)
	}
	copy(hdr[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

func dir(name string) entry {
	return entry{h: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}
func file(name, body string) entry {
	return entry{h: tar.Header{Typeflag: tar.TypeReg, Name: name}, body: body}
}
func symlink(name, target string) entry {
	return entry{h: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target}}
}
func hardlink(name, target string) entry {
	return entry{h: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

// paxHeader is a raw PAX extended header (typeflag x) holding records,
// which archive/tar's writer refuses to emit for GNU.sparse keys. It is
// written as a regular file whose typeflag is then patched.
func paxHeader(records ...string) entry {
	var body strings.Builder
	for _, r := range records {
		n := len(r) + 3 // " " and "\n" and at least one digit
		for len(fmt.Sprint(n))+len(r)+2 != n {
			n = len(fmt.Sprint(n)) + len(r) + 2
		}
		fmt.Fprintf(&body, "%d %s\n", n, r)
	}
	return entry{h: tar.Header{Typeflag: tar.TypeReg, Name: paxMarker}, body: body.String()}
}

const paxMarker = "PaxHeaders.0/patch-me"

// extractAll runs the extractor on data into a fresh directory beside a
// "victim" directory and returns the root's parent, the error and warnings.
func extractAll(t testing.TB, data []byte) (base, warnings string, err error) {
	t.Helper()
	base = t.TempDir()
	if err := os.Mkdir(filepath.Join(base, "victim"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(base, "stage"), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(filepath.Join(base, "stage"))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var warn strings.Builder
	e := newExtractor(root, "data", "out", false, func(f string, a ...any) { warn.WriteString(f) }, nil)
	err = e.extract(bytes.NewReader(data))
	if err == nil {
		err = e.finish()
	}
	return base, warn.String(), err
}

// assertContained fails when anything exists in base outside stage/.
func assertContained(t testing.TB, base string) {
	t.Helper()
	entries, err := os.ReadDir(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "stage" && e.Name() != "victim" {
			t.Errorf("written outside the destination: %s", e.Name())
		}
	}
	victim, _ := os.ReadDir(filepath.Join(base, "victim"))
	if len(victim) != 0 {
		t.Errorf("written into a sibling directory: %v", victim)
	}
}

func TestExtractHostile(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
	}{
		{name: "absolute", entries: []entry{dir("out/"), file("/tmp/x", "evil")}},
		{name: "dotdot", entries: []entry{dir("out/"), file("out/../victim/x", "evil")}},
		{name: "outside prefix", entries: []entry{dir("out/"), file("victim/x", "evil")}},
		{name: "symlink then write through it", entries: []entry{dir("out/"), symlink("out/l", "../../victim"), file("out/l/x", "evil")}},
		{name: "in-tree symlink then write through it", entries: []entry{dir("out/"), dir("out/d/"), symlink("out/l", "d"), file("out/l/x", "evil")}},
		{name: "symlink to absolute", entries: []entry{dir("out/"), symlink("out/l", "/etc")}},
		{name: "symlink chain out", entries: []entry{dir("out/"), dir("out/sub/"), symlink("out/sub/l", ".."), symlink("out/x", "sub/l/../..")}},
		{name: "hardlink to outside", entries: []entry{dir("out/"), hardlink("out/h", "/etc/passwd")}},
		{name: "hardlink via dotdot", entries: []entry{dir("out/"), hardlink("out/h", "out/../../victim/x")}},
		{name: "hardlink to symlink", entries: []entry{dir("out/"), symlink("out/l", "x"), hardlink("out/h", "out/l")}},
		{name: "collision after cleaning", entries: []entry{dir("out/"), file("out/a", "1"), file("out//a", "2")}},
		{name: "symlink replaces directory", entries: []entry{dir("out/"), dir("out/d/"), symlink("out/d", "/tmp")}},
		{name: "top is a symlink", entries: []entry{symlink("out", "/")}},
		{name: "file under file", entries: []entry{file("out", "x"), file("out/a", "y")}},
		{name: "sparse", entries: []entry{dir("out/"), paxHeader("GNU.sparse.major=1", "GNU.sparse.minor=0",
			"GNU.sparse.name=out/s", "GNU.sparse.realsize=1099511627776"), file("out/s", "1\n0\n1\n"+strings.Repeat("\x00", 506)+"X")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, warn, err := extractAll(t, archive(t, tt.entries...))
			if err == nil {
				t.Fatalf("extract succeeded, want refusal (warnings %q)", warn)
			}
			if !strings.Contains(warn, "refused") {
				t.Errorf("warnings %q do not name the refused entry", warn)
			}
			assertContained(t, base)
		})
	}
}

func TestExtractKeepsTreeAndDropsDangerousBits(t *testing.T) {
	setuid := file("out/suid", "x")
	setuid.h.Mode = 0o4755
	exe := file("out/bin/run", "#!/bin/sh\n")
	exe.h.Mode = 0o755
	fifo := entry{h: tar.Header{Typeflag: tar.TypeFifo, Name: "out/fifo"}}
	dev := entry{h: tar.Header{Typeflag: tar.TypeChar, Name: "out/null", Devmajor: 1, Devminor: 3}}
	ro := dir("out/ro/")
	ro.h.Mode = 0o555
	data := archive(t, dir("out/"), dir("out/empty/"), exe, setuid, fifo, dev,
		ro, file("out/ro/f", "r"), symlink("out/bin/link", "run"), symlink("out/up", "bin/../ro/f"),
		hardlink("out/hard", "out/bin/run"))
	base, warn, err := extractAll(t, data)
	if err != nil {
		t.Fatalf("extract: %v", err)
	}
	top := filepath.Join(base, "stage", "data")
	checks := []struct {
		rel  string
		mode fs.FileMode
	}{
		{"empty", fs.ModeDir | 0o755}, {"bin/run", 0o755}, {"suid", 0o755}, {"ro", fs.ModeDir | 0o555},
		{"bin/link", fs.ModeSymlink}, {"hard", 0o755},
	}
	for _, c := range checks {
		fi, err := os.Lstat(filepath.Join(top, c.rel))
		if err != nil {
			t.Fatalf("lstat %s: %v", c.rel, err)
		}
		got := fi.Mode()
		if c.mode == fs.ModeSymlink {
			got &= fs.ModeSymlink // a symlink's permission bits mean nothing on Linux
		}
		if got != c.mode {
			t.Errorf("mode of %s = %v, want %v", c.rel, fi.Mode(), c.mode)
		}
	}
	for _, gone := range []string{"fifo", "null"} {
		if _, err := os.Lstat(filepath.Join(top, gone)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s was created: %v", gone, err)
		}
	}
	if !strings.Contains(warn, "setuid") || !strings.Contains(warn, "fifo") {
		t.Errorf("warnings %q should name the setuid bit and the fifo", warn)
	}
	if b, err := os.ReadFile(filepath.Join(top, "up")); err != nil || string(b) != "r" {
		t.Errorf("read through in-tree symlink = %q, %v", b, err)
	}
	os.Chmod(filepath.Join(top, "ro"), 0o755) // let t.TempDir clean up
}

func TestExtractConcatenatedArchives(t *testing.T) {
	a := archive(t, dir("out/"), file("out/a", "1"))
	b := archive(t, file("out/b", "2"))
	base, _, err := extractAll(t, append(append(a, make([]byte, 10240)...), b...))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a", "b"} {
		if _, err := os.Stat(filepath.Join(base, "stage", "data", f)); err != nil {
			t.Error(err)
		}
	}
}

func FuzzExtract(f *testing.F) {
	f.Add(archive(f, dir("out/"), file("out/a", "x"), symlink("out/l", "a")))
	f.Add(archive(f, dir("out/"), symlink("out/l", ".."), file("out/l/x", "evil")))
	f.Add(archive(f, dir("out/"), hardlink("out/h", "/etc/passwd"), file("/abs", "x")))
	f.Add(archive(f, file("out", "x"), symlink("out/../l", "/")))
	f.Fuzz(func(t *testing.T, data []byte) {
		base, _, _ := extractAll(t, data)
		assertContained(t, base)
		// Whatever landed must be inside stage/data, and every symlink in
		// it must resolve inside stage/data.
		top := filepath.Join(base, "stage", "data")
		stage, _ := os.ReadDir(filepath.Join(base, "stage"))
		for _, e := range stage {
			if e.Name() != "data" {
				t.Fatalf("entry %q created beside the top", e.Name())
			}
		}
		filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				return nil // dangling inside the tree
			}
			if real != top && !strings.HasPrefix(real, top+string(filepath.Separator)) {
				t.Fatalf("symlink %s resolves to %s, outside %s", p, real, top)
			}
			return nil
		})
		filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
}
