package untar

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"go/build"
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
			got, err := EntryPath(tt.in, "out")
			if tt.unsafe {
				if !errors.Is(err, errUnsafe) {
					t.Fatalf("EntryPath(%q) = %q, %v; want unsafe", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("EntryPath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
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

// sandbox is a directory holding the extractor's root (stage/) beside a
// victim directory with one file, which no archive may change.
type sandbox struct {
	base, victim string
}

const victimFile = "keep"

func newSandbox(t testing.TB) sandbox {
	t.Helper()
	s := sandbox{base: t.TempDir()}
	s.victim = filepath.Join(s.base, "victim")
	for _, d := range []string{s.victim, filepath.Join(s.base, "stage")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.victim, victimFile), []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // a read-only directory would stop t.TempDir's removal
		filepath.WalkDir(s.base, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	return s
}

// top is where the extractor lands the archive's "out".
func (s sandbox) top() string { return filepath.Join(s.base, "stage", "data") }

// archive is archive() with "$VICTIM" in names and link targets replaced
// by the victim directory's absolute path.
func (s sandbox) archive(t testing.TB, entries ...entry) []byte {
	t.Helper()
	for i := range entries {
		h := &entries[i].h
		h.Name = strings.ReplaceAll(h.Name, "$VICTIM", s.victim)
		h.Linkname = strings.ReplaceAll(h.Linkname, "$VICTIM", s.victim)
	}
	return archive(t, entries...)
}

// extractor is an extractor of the archive's "out" into stage/data; its
// root closes with the test.
func (s sandbox) extractor(t testing.TB, o Options) *Extractor {
	t.Helper()
	root, err := os.OpenRoot(filepath.Join(s.base, "stage"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return New(root, "data", "out", o)
}

// extract runs one extractor over streams, one after the other as a
// download's retries do, then Finish; it returns the first error (a
// stream's or Finish's) and the warnings.
func (s sandbox) extract(t testing.TB, streams ...[]byte) (warnings string, err error) {
	t.Helper()
	var warn strings.Builder
	e := s.extractor(t, Options{Warnf: func(f string, a ...any) { fmt.Fprintf(&warn, f, a...) }})
	for _, data := range streams {
		if xerr := e.Extract(bytes.NewReader(data)); xerr != nil && err == nil {
			err = xerr
		}
	}
	if ferr := e.Finish(); err == nil {
		err = ferr
	}
	return warn.String(), err
}

// assertContained fails when anything was written outside stage/data: in
// the sandbox beside stage/, into the victim, or beside data in stage/.
func (s sandbox) assertContained(t testing.TB) {
	t.Helper()
	names := func(dir string) []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, e := range entries {
			n = append(n, e.Name())
		}
		return n
	}
	if got := names(s.base); len(got) != 2 || got[0] != "stage" || got[1] != "victim" {
		t.Errorf("written beside the destination: %q", got)
	}
	if got := names(s.victim); len(got) != 1 || got[0] != victimFile {
		t.Errorf("written into the victim directory: %q", got)
	}
	fi, err := os.Lstat(filepath.Join(s.victim, victimFile))
	if b, _ := os.ReadFile(filepath.Join(s.victim, victimFile)); err != nil || string(b) != "untouched" || fi.Mode() != 0o644 {
		t.Errorf("the victim's file changed: %q, %v, %v", b, fi, err)
	}
	if got := names(filepath.Join(s.base, "stage")); len(got) > 1 || len(got) == 1 && got[0] != "data" {
		t.Errorf("written beside the top entry: %q", got)
	}
}

// A symlink leads anywhere; what is refused is any write through one, from
// the same stream or a later one, in every form an entry can take.
func TestExtractHostile(t *testing.T) {
	out := dir("out/")
	tests := []struct {
		name    string
		streams [][]entry
		named   string // what the warning must name
	}{
		{name: "absolute name", streams: [][]entry{{out, file("/tmp/x", "evil")}}, named: "/tmp/x"},
		{name: "dotdot name", streams: [][]entry{{out, file("out/../victim/x", "evil")}}, named: "out/../victim/x"},
		{name: "outside the prefix", streams: [][]entry{{out, file("victim/x", "evil")}}, named: "victim/x"},
		{name: "file through an escaping symlink", streams: [][]entry{{out, symlink("out/l", "../../victim"), file("out/l/x", "evil")}}, named: "../../victim"},
		{name: "file through an absolute symlink", streams: [][]entry{{out, symlink("out/l", "$VICTIM"), file("out/l/x", "evil")}}, named: "out/l/x"},
		{name: "file through an in-tree symlink", streams: [][]entry{{out, dir("out/d/"), symlink("out/l", "d"), file("out/l/x", "evil")}}, named: "out/l/x"},
		{name: "file deep through a symlink", streams: [][]entry{{out, symlink("out/l", "$VICTIM"), file("out/l/a/b/x", "evil")}}, named: "out/l/a/b/x"},
		{name: "file through a chain", streams: [][]entry{{out, symlink("out/a", "b"), symlink("out/b", "$VICTIM"), file("out/a/x", "evil")}}, named: "out/a/x"},
		{name: "directory through a symlink", streams: [][]entry{{out, symlink("out/l", "$VICTIM"), dir("out/l/sub/")}}, named: "out/l/sub"},
		{name: "symlink through a symlink", streams: [][]entry{{out, symlink("out/l", "$VICTIM"), symlink("out/l/m", "x")}}, named: "out/l/m"},
		{name: "hardlink through a symlink", streams: [][]entry{{out, file("out/f", "x"), symlink("out/l", "$VICTIM"), hardlink("out/l/h", "out/f")}}, named: "out/l/h"},
		{name: "file over a symlink", streams: [][]entry{{out, symlink("out/l", "$VICTIM/"+victimFile), file("out/l", "evil")}}, named: "out/l"},
		{name: "directory over a symlink", streams: [][]entry{{out, symlink("out/l", "$VICTIM"), dir("out/l/")}}, named: "out/l"},
		{name: "symlink over a directory", streams: [][]entry{{out, dir("out/d/"), symlink("out/d", "$VICTIM")}}, named: "out/d"},
		{name: "symlink over a file", streams: [][]entry{{out, file("out/f", "x"), symlink("out/f", "$VICTIM/"+victimFile)}}, named: "out/f"},
		{name: "retry: file through an earlier stream's symlink", streams: [][]entry{{out, symlink("out/l", "$VICTIM")}, {file("out/l/x", "evil")}}, named: "out/l/x"},
		{name: "retry: file over an earlier stream's symlink", streams: [][]entry{{out, symlink("out/l", "$VICTIM/"+victimFile)}, {file("out/l", "evil")}}, named: "out/l"},
		{name: "retry: escaping symlink, then a file deep through it", streams: [][]entry{{out, symlink("out/l", "../../victim")}, {out, file("out/l/sub/x", "evil")}}, named: "out/l/sub/x"},
		{name: "hardlink to outside", streams: [][]entry{{out, hardlink("out/h", "/etc/passwd")}}, named: "/etc/passwd"},
		{name: "hardlink to the victim", streams: [][]entry{{out, hardlink("out/h", "$VICTIM/"+victimFile)}}, named: "out/h"},
		{name: "hardlink via dotdot", streams: [][]entry{{out, hardlink("out/h", "out/../../victim/keep")}}, named: "out/h"},
		{name: "hardlink to a symlink", streams: [][]entry{{out, symlink("out/l", "$VICTIM/"+victimFile), hardlink("out/h", "out/l")}}, named: "out/h"},
		{name: "symlink named with dotdot", streams: [][]entry{{out, symlink("out/../l", "/")}}, named: "out/../l"},
		{name: "collision after cleaning", streams: [][]entry{{out, file("out/a", "1"), file("out//a", "2")}}, named: "out//a"},
		{name: "top is a symlink", streams: [][]entry{{symlink("out", "/")}}, named: "top entry"},
		{name: "file under a file", streams: [][]entry{{file("out", "x"), file("out/a", "y")}}, named: "out/a"},
		{name: "sparse", streams: [][]entry{{out, paxHeader("GNU.sparse.major=1", "GNU.sparse.minor=0",
			"GNU.sparse.name=out/s", "GNU.sparse.realsize=1099511627776"), file("out/s", "1\n0\n1\n"+strings.Repeat("\x00", 506)+"X")}}, named: "sparse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSandbox(t)
			var streams [][]byte
			for _, entries := range tt.streams {
				streams = append(streams, s.archive(t, entries...))
			}
			warn, err := s.extract(t, streams...)
			if err == nil {
				t.Fatalf("extract succeeded, want a refusal (warnings %q)", warn)
			}
			if !strings.Contains(warn, "refused") || !strings.Contains(warn, strings.ReplaceAll(tt.named, "$VICTIM", s.victim)) {
				t.Errorf("warnings %q do not name the refused %q", warn, tt.named)
			}
			s.assertContained(t)
		})
	}
}

// Symlinks are data: wherever they point, they land as the archive has
// them, and nothing is written through them.
func TestExtractKeepsSymlinksWhereverTheyPoint(t *testing.T) {
	tests := []struct {
		name  string
		links map[string]string // tree path → target
	}{
		{name: "absolute", links: map[string]string{"l": "/etc/passwd"}},
		{name: "absolute to the victim", links: map[string]string{"l": "$VICTIM/" + victimFile}},
		{name: "root", links: map[string]string{"l": "/"}},
		{name: "up out of the top", links: map[string]string{"l": ".."}},
		{name: "deep up out", links: map[string]string{"a/b/l": "../../../../victim"}},
		{name: "chain climbing out", links: map[string]string{"sub/l": "..", "x": "sub/l/../.."}},
		{name: "chain through absolute", links: map[string]string{"a": "/tmp", "x": "a/y"}},
		{name: "chain inside", links: map[string]string{"a": "d/e", "x": "a/../f"}},
		{name: "loop", links: map[string]string{"a": "b", "b": "a"}},
		{name: "dangling", links: map[string]string{"l": "missing/x"}},
		{name: "in a read-only directory", links: map[string]string{"ro/l": "/etc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSandbox(t)
			entries := []entry{dir("out/"), file("out/f", "data")}
			for rel, target := range tt.links {
				entries = append(entries, symlink("out/"+rel, target))
			}
			if _, ok := tt.links["ro/l"]; ok {
				ro := dir("out/ro/")
				ro.h.Mode = 0o555
				entries = append(entries[:2], append([]entry{ro}, entries[2:]...)...)
			}
			warn, err := s.extract(t, s.archive(t, entries...))
			if err != nil || warn != "" {
				t.Fatalf("extract = %v, warnings %q; want success", err, warn)
			}
			for rel, target := range tt.links {
				want := strings.ReplaceAll(target, "$VICTIM", s.victim)
				if got, err := os.Readlink(filepath.Join(s.top(), rel)); err != nil || got != want {
					t.Errorf("symlink %s = %q, %v; want %q", rel, got, err, want)
				}
			}
			if b, err := os.ReadFile(filepath.Join(s.top(), "f")); err != nil || string(b) != "data" {
				t.Errorf("file f = %q, %v", b, err)
			}
			s.assertContained(t)
		})
	}
}

// A retry sends again what broke: files are rewritten, a symlink sent
// again with the same target is the same entry.
func TestExtractRetryRewritesFilesAndKeepsLinks(t *testing.T) {
	s := newSandbox(t)
	first := s.archive(t, dir("out/"), file("out/a", "first"), symlink("out/l", "$VICTIM"), symlink("out/up", "../.."))
	second := s.archive(t, dir("out/"), file("out/a", "second"), symlink("out/l", "$VICTIM"))
	if warn, err := s.extract(t, first, second); err != nil {
		t.Fatalf("extract: %v (%s)", err, warn)
	}
	if b, err := os.ReadFile(filepath.Join(s.top(), "a")); err != nil || string(b) != "second" {
		t.Errorf("a = %q, %v; want the retry's", b, err)
	}
	for rel, want := range map[string]string{"l": s.victim, "up": "../.."} {
		if got, err := os.Readlink(filepath.Join(s.top(), rel)); err != nil || got != want {
			t.Errorf("symlink %s = %q, %v; want %q", rel, got, err, want)
		}
	}
	s.assertContained(t)
}

// Once Finish has created the symlinks, nothing more is written: a later
// stream could otherwise go through one.
func TestExtractAfterFinishWritesNothing(t *testing.T) {
	s := newSandbox(t)
	e := s.extractor(t, Options{})
	if err := e.Extract(bytes.NewReader(s.archive(t, dir("out/"), symlink("out/l", "$VICTIM")))); err != nil {
		t.Fatal(err)
	}
	if err := e.Finish(); err != nil {
		t.Fatal(err)
	}
	later := s.archive(t, file("out/l/x", "evil"), file("out/l/"+victimFile, "evil"))
	if err := e.Extract(bytes.NewReader(later)); !errors.Is(err, errFinished) {
		t.Errorf("Extract after Finish = %v, want %v", err, errFinished)
	}
	if err := e.Prune(func(string) bool { return false }); !errors.Is(err, errFinished) {
		t.Errorf("Prune after Finish = %v, want %v", err, errFinished)
	}
	s.assertContained(t)
}

// Prune drops what the source no longer has, symlinks included, so that a
// retry may bring an entry of another kind under the same name.
func TestExtractPruneThenRetry(t *testing.T) {
	s := newSandbox(t)
	e := s.extractor(t, Options{})
	if err := e.Extract(bytes.NewReader(s.archive(t, dir("out/"), symlink("out/l", "$VICTIM"), file("out/gone", "x")))); err != nil {
		t.Fatal(err)
	}
	if err := e.Prune(func(rel string) bool { return rel != "l" && rel != "gone" }); err != nil {
		t.Fatal(err)
	}
	if err := e.Extract(bytes.NewReader(s.archive(t, dir("out/l/"), file("out/l/x", "now a directory")))); err != nil {
		t.Fatal(err)
	}
	if err := e.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(s.top(), "l", "x")); err != nil || string(b) != "now a directory" {
		t.Errorf("l/x = %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(s.top(), "gone")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pruned file still there: %v", err)
	}
	s.assertContained(t)
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain name", "plain name"},
		{"\x1b]0;title\x07", "^[]0;title\x07"},
		{"over\rwrite", `over\rwrite`},
	}
	for _, tt := range tests {
		if got := escape(tt.in); got != tt.want {
			t.Errorf("escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
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
	s := newSandbox(t)
	warn, err := s.extract(t, data)
	if err != nil {
		t.Fatalf("extract: %v", err)
	}
	top := s.top()
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
}

func TestExtractConcatenatedArchives(t *testing.T) {
	a := archive(t, dir("out/"), file("out/a", "1"))
	b := archive(t, file("out/b", "2"))
	s := newSandbox(t)
	if _, err := s.extract(t, append(append(a, make([]byte, 10240)...), b...)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a", "b"} {
		if _, err := os.Stat(filepath.Join(s.top(), f)); err != nil {
			t.Error(err)
		}
	}
}

// FuzzExtract feeds the extractor two streams, as a download and its
// retry, and checks after Finish that nothing was written outside the
// destination: beside it, into a sibling directory (which escaping and
// absolute symlinks name), or through a symlink the first stream left.
func FuzzExtract(f *testing.F) {
	f.Add(archive(f, dir("out/"), file("out/a", "x"), symlink("out/l", "a")), []byte(nil))
	f.Add(archive(f, dir("out/"), symlink("out/l", ".."), file("out/l/x", "evil")), []byte(nil))
	f.Add(archive(f, dir("out/"), symlink("out/l", "../../victim"), file("out/l/keep", "evil")), []byte(nil))
	f.Add(archive(f, dir("out/"), symlink("out/l", "../../victim")), archive(f, file("out/l/x", "evil"), dir("out/l/d/")))
	f.Add(archive(f, dir("out/"), symlink("out/a", "b"), symlink("out/b", "../../victim")), archive(f, hardlink("out/a/h", "out/b")))
	f.Add(archive(f, dir("out/"), hardlink("out/h", "/etc/passwd"), file("/abs", "x")), archive(f, file("out/h", "x")))
	f.Add(archive(f, file("out", "x"), symlink("out/../l", "/")), []byte(nil))
	f.Fuzz(func(t *testing.T, first, second []byte) {
		s := newSandbox(t)
		s.extract(t, first, second)
		s.assertContained(t)
		// What landed is a directory or a regular file at the top, and
		// below it only those and symlinks, with no setuid or setgid bit.
		if fi, err := os.Lstat(s.top()); err == nil && !fi.IsDir() && !fi.Mode().IsRegular() {
			t.Fatalf("the top entry is a %v", fi.Mode().Type())
		}
		filepath.WalkDir(s.top(), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				t.Fatal(err)
			}
			if m := fi.Mode(); m&(fs.ModeSetuid|fs.ModeSetgid) != 0 || m.Type()&^(fs.ModeDir|fs.ModeSymlink) != 0 {
				t.Fatalf("%s landed with mode %v", p, m)
			}
			return nil
		})
	})
}

// BenchmarkExtractRealTree lands a real tree, the module cache's
// client-go (about 1,900 files in 420 directories), as a download does.
func BenchmarkExtractRealTree(b *testing.B) {
	src := filepath.Join(build.Default.GOPATH, "pkg/mod/k8s.io/client-go@v0.37.2")
	if env := os.Getenv("GOMODCACHE"); env != "" {
		src = filepath.Join(env, "k8s.io/client-go@v0.37.2")
	}
	if _, err := os.Stat(src); err != nil {
		b.Skipf("no module tree: %v (go mod download)", err)
	}
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(filepath.Dir(src), p)
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		hdr.Mode |= 0o200 // the module cache's are read-only: b.TempDir removes these
		if err := tw.WriteHeader(hdr); err != nil || !fi.Mode().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err == nil {
			_, err = tw.Write(data)
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	tw.Close()
	dir := b.TempDir()
	b.SetBytes(int64(tarball.Len()))
	for i := 0; b.Loop(); i++ {
		d := filepath.Join(dir, fmt.Sprint(i))
		if err := os.Mkdir(d, 0o700); err != nil {
			b.Fatal(err)
		}
		root, err := os.OpenRoot(d)
		if err != nil {
			b.Fatal(err)
		}
		e := New(root, "data", filepath.Base(src), Options{})
		if err := e.Extract(bytes.NewReader(tarball.Bytes())); err != nil {
			b.Fatal(err)
		}
		if err := e.Finish(); err != nil {
			b.Fatal(err)
		}
		root.Close()
	}
}
