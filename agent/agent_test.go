//go:build linux

package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/build"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-concourse/kubectl-concourse/agent/client"
	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
	"github.com/kubectl-concourse/kubectl-concourse/treeroot"
)

// serve starts an agent on pipes and dials it.
func serve(t testing.TB) *client.Session {
	t.Helper()
	return serveWith(t, Options{StagingGrace: 20 * time.Millisecond})
}

func serveWith(t testing.TB, opts Options) *client.Session {
	t.Helper()
	return serveThrough(t, opts, func(w io.Writer) io.Writer { return w })
}

// serveThrough is serveWith with the agent's stdout passed through wrap on
// its way to the plugin: a link that damages it.
func serveThrough(t testing.TB, opts Options, wrap func(io.Writer) io.Writer) *client.Session {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		opts.Stderr = &stderr
		err := Serve(inR, wrap(outW), opts)
		outW.Close()
		inR.Close()
		done <- err
	}()
	var once sync.Once
	var serveErr error
	wait := func() error {
		once.Do(func() { serveErr = <-done })
		return serveErr
	}
	s, err := client.Dial(t.Context(), inW, outR, wait, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// entry is one entry of a test archive.
type entry struct {
	name string
	typ  byte
	body string
	link string
	mode int64
}

func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func file(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, body: body, mode: 0o644}
}
func symlink(name, to string) entry {
	return entry{name: name, typ: tar.TypeSymlink, link: to, mode: 0o777}
}
func hardlink(name, to string) entry {
	return entry{name: name, typ: tar.TypeLink, link: to, mode: 0o644}
}

func archive(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Size: int64(len(e.body)),
			ModTime: time.Unix(1700000000, 0)}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// upload receives and commits one archive at dest.
func upload(t *testing.T, s *client.Session, dest string, tarball []byte, codec string) protocol.Reply {
	t.Helper()
	r, err := s.Receive(t.Context(), protocol.Request{Dest: protocol.Name(dest), Codec: codec}, bytes.NewReader(tarball))
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	c, err := s.Commit(t.Context(), protocol.Name(dest), r.Staging)
	if err != nil || !c.Landed {
		t.Fatalf("Commit = %+v, %v", c, err)
	}
	return c
}

// tree lists a directory as "path kind content" lines: file contents,
// link targets.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+" -> "+target)
		case fi.IsDir():
			out = append(out, rel+"/")
		default:
			b, _ := os.ReadFile(p)
			out = append(out, rel+" = "+string(b))
		}
		return nil
	})
	return out
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func equal(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

func TestUploadKeepsSymlinksAsData(t *testing.T) {
	for _, codec := range []string{protocol.CodecNone, protocol.CodecGzip, protocol.CodecZstd} {
		t.Run("codec "+codec, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "repo")
			s := serve(t)
			upload(t, s, dest, archive(t,
				dir("repo"), dir("repo/sub"), file("repo/sub/a.go", "package a"),
				symlink("repo/abs", "/etc/passwd"), symlink("repo/sub/up", "../../.."), symlink("repo/sub/sib", "a.go"),
			), codec)
			s.Close() // the agent removes its staging before it exits
			want := []string{".", "abs -> /etc/passwd", "sub/", "sub/a.go = package a", "sub/sib -> a.go", "sub/up -> ../../.."}
			want[0] = "./"
			if got := tree(t, dest); !equal(got, want) {
				t.Errorf("tree = %q, want %q", got, want)
			}
			if fi, err := os.Lstat(dest); err != nil || !fi.IsDir() {
				t.Errorf("destination is not a real directory: %v, %v", fi, err)
			}
			if got := names(t, parent); !equal(got, []string{"repo"}) {
				t.Errorf("beside the destination: %q", got)
			}
		})
	}
}

func TestReplaceGivesExactlyTheNewTree(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dest string)
		how   string
	}{
		{"over nothing", func(*testing.T, string) {}, "noreplace"},
		{"over a directory", func(t *testing.T, dest string) {
			os.MkdirAll(filepath.Join(dest, "old/deep"), 0o755)
			os.WriteFile(filepath.Join(dest, "b"), []byte("old b"), 0o644)
		}, "exchange"},
		{"over a file", func(t *testing.T, dest string) { os.WriteFile(dest, []byte("x"), 0o644) }, "exchange"},
		{"over a script-landed symlink", func(t *testing.T, dest string) {
			store := filepath.Join(filepath.Dir(dest), ".kubectl-concourse/repo/v.1a2b/repo")
			os.MkdirAll(store, 0o755)
			os.WriteFile(filepath.Join(store, "old"), []byte("old"), 0o644)
			os.Symlink(".kubectl-concourse/repo/v.1a2b/repo", dest)
		}, "exchange"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "repo")
			tt.setup(t, dest)
			s := serve(t)
			c := upload(t, s, dest, archive(t, dir("repo"), file("repo/b", "new b"), dir("repo/c"), file("repo/c/d", "d")), "")
			if c.How != tt.how {
				t.Errorf("landed by %q, want %q", c.How, tt.how)
			}
			s.Close() // the agent removes what it replaced before it exits
			want := []string{"./", "b = new b", "c/", "c/d = d"}
			if got := tree(t, dest); !equal(got, want) {
				t.Errorf("tree = %q, want %q", got, want)
			}
			if got := names(t, parent); !equal(got, []string{"repo"}) {
				t.Errorf("beside the destination: %q", got)
			}
		})
	}
}

func TestSingleFileUpload(t *testing.T) {
	parent := t.TempDir()
	dest := filepath.Join(parent, "notes.txt")
	s := serve(t)
	upload(t, s, dest, archive(t, file("notes.txt", "hello")), "")
	if b, err := os.ReadFile(dest); err != nil || string(b) != "hello" {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
}

func TestMountPointIsRefusedWithTheRemedy(t *testing.T) {
	if !isMountPoint(-100, "/proc", nil) { // AT_FDCWD
		t.Skip("/proc is not a mount point here")
	}
	s := serve(t)
	r, err := s.Receive(t.Context(), protocol.Request{Dest: "/proc"}, bytes.NewReader(archive(t, dir("proc"))))
	if err != nil {
		t.Skipf("cannot stage beside /proc: %v", err)
	}
	_, err = s.Commit(t.Context(), "/proc", r.Staging)
	if err == nil || !strings.Contains(err.Error(), "upload into it instead") {
		t.Errorf("Commit over a mount point = %v", err)
	}
}

// cutReader yields n bytes of b, then fails: the plugin's side of a
// broken stream.
type cutReader struct {
	r io.Reader
}

func (c *cutReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		return n, errors.New("cut")
	}
	return n, err
}

func TestInterruptLeavesNothing(t *testing.T) {
	big := strings.Repeat("x", 3<<20)
	tarball := archive(t, dir("repo"), file("repo/a", "a"), file("repo/big", big), file("repo/z", "z"))
	for _, keep := range []bool{false, true} {
		for _, at := range []int{10, 2048, 1 << 20, len(tarball) - 1024} {
			parent := t.TempDir()
			dest := filepath.Join(parent, "repo")
			grace := 50 * time.Millisecond
			if !keep {
				grace = time.Hour // not waited for
			}
			s := serveWith(t, Options{StagingGrace: grace})
			_, err := s.Receive(t.Context(), protocol.Request{Dest: protocol.Name(dest), KeepOnEOF: keep},
				&cutReader{bytes.NewReader(tarball[:at])})
			if err == nil {
				t.Fatalf("cut at %d: Receive succeeded", at)
			}
			s.Close()

			if got := names(t, parent); len(got) != 0 {
				t.Errorf("keep %v, cut at %d: left %q", keep, at, got)
			}
		}
	}
}

func TestRetryReusesTheStaging(t *testing.T) {
	parent := t.TempDir()
	dest := filepath.Join(parent, "repo")
	staging := protocol.NewStagingName()
	first := archive(t, dir("repo"), file("repo/a", "a"), file("repo/b", strings.Repeat("b", 2<<20)))
	s := serveWith(t, Options{StagingGrace: 5 * time.Second})
	req := protocol.Request{Dest: protocol.Name(dest), KeepOnEOF: true, Staging: staging}
	if _, err := s.Receive(t.Context(), req, &cutReader{bytes.NewReader(first[:len(first)-4096])}); err == nil {
		t.Fatal("cut Receive succeeded")
	}
	// The first agent lingers with its staging, as in a container whose
	// exec broke; the retry's agent starts beside it.
	time.Sleep(100 * time.Millisecond)
	s = serve(t)
	entries, _, err := s.Manifest(t.Context(), staging)
	if err == nil {
		t.Fatalf("Manifest of a staging this agent does not hold = %v", entries)
	}
	// The retry sends what the first attempt did not land whole.
	r, err := s.Receive(t.Context(), req, bytes.NewReader(archive(t, dir("repo"), file("repo/b", "short b"))))
	if err != nil || !r.Reused || r.Files != 2 {
		t.Fatalf("retry Receive = %+v, %v; want it reused with 2 files", r, err)
	}
	if _, err := s.Commit(t.Context(), protocol.Name(dest), staging); err != nil {
		t.Fatal(err)
	}
	if got, want := tree(t, dest), []string{"./", "a = a", "b = short b"}; !equal(got, want) {
		t.Errorf("tree = %q, want %q", got, want)
	}
}

func TestConcurrentCommitsNeitherNestNorMix(t *testing.T) {
	parent := t.TempDir()
	dest := filepath.Join(parent, "repo")
	trees := [][]byte{
		archive(t, dir("repo"), file("repo/one", "1"), dir("repo/d"), file("repo/d/x", "one")),
		archive(t, dir("repo"), file("repo/two", "2"), dir("repo/d"), file("repo/d/y", "two")),
	}
	wants := [][]string{{"./", "d/", "d/x = one", "one = 1"}, {"./", "d/", "d/y = two", "two = 2"}}
	for round := range 10 {
		var wg sync.WaitGroup
		for i := range trees {
			wg.Go(func() {
				s := serve(t)
				upload(t, s, dest, trees[i], "")
				s.Close()
			})
		}
		wg.Wait()
		got := tree(t, dest)
		if !equal(got, wants[0]) && !equal(got, wants[1]) {
			t.Fatalf("round %d: tree = %q", round, got)
		}
		if got := names(t, parent); !equal(got, []string{"repo"}) {
			t.Fatalf("round %d: beside the destination: %q", round, got)
		}
	}
}

func TestStaleStagingIsSwept(t *testing.T) {
	parent := t.TempDir()
	stale := filepath.Join(parent, protocol.StagingPrefix+"0123456789abcdef")
	os.MkdirAll(filepath.Join(stale, "t/x"), 0o755) // its agent was killed: its flock is free
	s := serve(t)
	upload(t, s, filepath.Join(parent, "repo"), archive(t, dir("repo")), "")
	s.Close()
	if got := names(t, parent); !equal(got, []string{"repo"}) {
		t.Errorf("beside the destination: %q", got)
	}
}

func TestOddNamesRoundTrip(t *testing.T) {
	odd := []string{"with space", "mod@v1.2.3+incompatible", "new\nline", "caf\xe9", "-dash", "tab\there"}
	entries := []entry{dir("repo")}
	for _, n := range odd {
		entries = append(entries, dir("repo/"+n), file("repo/"+n+"/"+n, n), symlink("repo/"+n+"/l", n))
	}
	parent := t.TempDir()
	dest := filepath.Join(parent, "repo")
	s := serve(t)
	upload(t, s, dest, archive(t, entries...), protocol.CodecZstd)
	for _, n := range odd {
		if b, err := os.ReadFile(filepath.Join(dest, n, n)); err != nil || string(b) != n {
			t.Errorf("%q: %q, %v", n, b, err)
		}
	}
	// And back: sent as they are, verified on arrival.
	var got bytes.Buffer
	sent, err := s.Send(t.Context(), protocol.Name(dest), protocol.CodecZstd, &got)
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1+3*len(odd) {
		t.Errorf("sent %d entries, want %d", len(sent), 1+3*len(odd))
	}
	tr := tar.NewReader(&got)
	var gotNames []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		gotNames = append(gotNames, h.Name)
	}
	for _, n := range odd {
		found := false
		for _, g := range gotNames {
			found = found || g == "repo/"+n+"/"+n
		}
		if !found {
			t.Errorf("%q not sent as it is; sent %q", n, gotNames)
		}
	}
}

func TestHostileArchiveCannotWriteOutside(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
	}{
		{"dot dot", []entry{dir("repo"), file("repo/../escape", "x")}},
		{"absolute", []entry{dir("repo"), file("/tmp/escape", "x")}},
		{"outside the top", []entry{dir("repo"), file("escape", "x")}},
		{"through a symlink", []entry{dir("repo"), symlink("repo/l", "../.."), file("repo/l/escape", "x")}},
		{"through an absolute symlink", []entry{dir("repo"), symlink("repo/l", "OUTSIDE"), file("repo/l/escape", "x")}},
		{"symlink then directory", []entry{dir("repo"), symlink("repo/l", "OUTSIDE"), dir("repo/l"), file("repo/l/escape", "x")}},
		{"hard link out", []entry{dir("repo"), hardlink("repo/h", "../escape")}},
		{"hard link to an outside file", []entry{dir("repo"), hardlink("repo/h", "OUTSIDE/victim")}},
		{"device", []entry{dir("repo"), {name: "repo/dev", typ: tar.TypeChar}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			outside := t.TempDir()
			os.WriteFile(filepath.Join(outside, "victim"), []byte("safe"), 0o644)
			for i := range tt.entries {
				tt.entries[i].name = strings.ReplaceAll(tt.entries[i].name, "OUTSIDE", outside)
				tt.entries[i].link = strings.ReplaceAll(tt.entries[i].link, "OUTSIDE", outside)
			}
			dest := filepath.Join(parent, "repo")
			s := serve(t)
			r, err := s.Receive(t.Context(), protocol.Request{Dest: protocol.Name(dest)}, bytes.NewReader(archive(t, tt.entries...)))
			if err == nil {
				s.Commit(t.Context(), protocol.Name(dest), r.Staging)
			}
			s.Close()
			if got := names(t, outside); !equal(got, []string{"victim"}) {
				t.Errorf("outside holds %q", got)
			}
			if b, _ := os.ReadFile(filepath.Join(outside, "victim")); string(b) != "safe" {
				t.Errorf("victim = %q", b)
			}
			if _, err := os.Lstat(filepath.Join(parent, "escape")); err == nil {
				t.Error("escape written beside the destination")
			}
			if _, err := os.Lstat("/tmp/escape"); err == nil {
				t.Error("/tmp/escape written")
			}
			for _, n := range names(t, parent) {
				if n != "repo" {
					t.Errorf("left beside the destination: %q", n)
				}
			}
		})
	}
}

func TestSessionEndsWithItsContext(t *testing.T) {
	parent := t.TempDir()
	s := serve(t)
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	tarball := archive(t, dir("repo"), file("repo/big", strings.Repeat("x", 4<<20)))
	go func() {
		pw.Write(tarball[:1024])
		cancel()
		pw.Write(tarball[1024:]) // the session refuses it, so Receive returns
		pw.Close()
	}()
	_, err := s.Receive(ctx, protocol.Request{Dest: protocol.Name(filepath.Join(parent, "repo"))}, pr)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Receive = %v, want context.Canceled", err)
	}
	pr.Close()
	s.Close()
	if got := names(t, parent); len(got) != 0 {
		t.Errorf("left %q", got)
	}
}

// moduleTree is a real tree from the module cache: thousands of files,
// names with @ and +, what users upload.
func moduleTree(t testing.TB) string {
	mod := filepath.Join(build.Default.GOPATH, "pkg/mod/k8s.io/client-go@v0.37.2")
	if env := os.Getenv("GOMODCACHE"); env != "" {
		mod = filepath.Join(env, "k8s.io/client-go@v0.37.2")
	}
	if _, err := os.Stat(mod); err != nil {
		t.Skipf("no module tree to send: %v (go mod download)", err)
	}
	return mod
}

func TestRealTreeRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("sends a real tree")
	}
	src := moduleTree(t)
	cases := []struct {
		codec    string
		maxRoots int
	}{
		{protocol.CodecZstd, treeroot.Max},
		{protocol.CodecNone, treeroot.Max},
		// Past treeroot.Max open directories, names resolve from the root.
		{protocol.CodecZstd, 3},
	}
	for _, c := range cases {
		codec := c.codec
		t.Run(fmt.Sprintf("codec %q, %d directories open", codec, c.maxRoots), func(t *testing.T) {
			old := treeroot.Max
			t.Cleanup(func() { treeroot.Max = old }) // after the agents' own
			treeroot.Max = c.maxRoots
			dest := filepath.Join(t.TempDir(), filepath.Base(src))
			sender, receiver := serve(t), serve(t)
			pr, pw := io.Pipe()
			var sent []protocol.Entry
			var sendErr error
			go func() {
				sent, sendErr = sender.Send(t.Context(), protocol.Name(src), codec, pw)
				pw.CloseWithError(sendErr)
			}()
			r, err := receiver.Receive(t.Context(), protocol.Request{Dest: protocol.Name(dest), Codec: codec}, pr)
			if err != nil || sendErr != nil {
				t.Fatalf("Receive: %v; Send: %v", err, sendErr)
			}
			if r.Digest != protocol.ManifestDigest(sent) {
				t.Errorf("the received tree's digest differs from the sent one's")
			}
			if _, err := receiver.Commit(t.Context(), protocol.Name(dest), r.Staging); err != nil {
				t.Fatal(err)
			}
			receiver.Close()
			files := 0
			err = filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(src, p)
				got, err := os.Lstat(filepath.Join(dest, rel))
				if err != nil {
					return err
				}
				if got.Mode() != fi.Mode() || !got.ModTime().Equal(fi.ModTime().Truncate(time.Second)) {
					t.Errorf("%s: %v %v, want %v %v", rel, got.Mode(), got.ModTime(), fi.Mode(), fi.ModTime())
				}
				if fi.Mode().IsRegular() {
					files++
					a, _ := os.ReadFile(p)
					b, _ := os.ReadFile(filepath.Join(dest, rel))
					if !bytes.Equal(a, b) {
						t.Errorf("%s differs", rel)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if int64(files) != r.Files || files < 1000 {
				t.Errorf("%d files in the source, %d received", files, r.Files)
			}
		})
	}
}

// BenchmarkReceiveRealTree lands a real tree (the module cache's
// client-go) with a few sizes of writer pool: measured, not assumed.
func BenchmarkReceiveRealTree(b *testing.B) {
	src := moduleTree(b)
	var tarball bytes.Buffer
	s := serveWith(b, Options{})
	if _, err := s.Send(b.Context(), protocol.Name(src), "", &tarball); err != nil {
		b.Fatal(err)
	}
	for _, workers := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			s := serveWith(b, Options{Workers: workers})
			dir := b.TempDir()
			b.SetBytes(int64(tarball.Len()))
			for i := 0; b.Loop(); i++ {
				dest := filepath.Join(dir, strconv.Itoa(i))
				r, err := s.Receive(b.Context(), protocol.Request{Dest: protocol.Name(dest)}, bytes.NewReader(tarball.Bytes()))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Commit(b.Context(), protocol.Name(dest), r.Staging); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSendRealTree sends a real tree (the module cache's client-go)
// as a download asks it of the agent: S2, no file sums. What it measures
// is mostly the agent's reading of the tree; the session's own end only
// decodes and drops the stream.
func BenchmarkSendRealTree(b *testing.B) {
	src := moduleTree(b)
	s := serveWith(b, Options{})
	req := protocol.Request{Path: protocol.Name(src), Codec: protocol.CodecS2, NoFileSums: true}
	for b.Loop() {
		if _, err := s.SendTo(b.Context(), req, func(tr io.Reader) error {
			_, err := io.Copy(io.Discard, tr)
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestLaterEntriesWin(t *testing.T) {
	parent := t.TempDir()
	dest := filepath.Join(parent, "repo")
	s := serve(t)
	upload(t, s, dest, archive(t, dir("repo"), dir("repo/a"), file("repo/a/x", "x"), dir("repo/a/sub"), file("repo/a/sub/z", "z"),
		file("repo/a", "now a file"), dir("repo/b"), file("repo/b", "b"),
		dir("repo/a"), file("repo/a/y", "y"), file("repo/f", "1"), file("repo/f", "2")), "")
	want := []string{"./", "a/", "a/y = y", "b = b", "f = 2"}
	if got := tree(t, dest); !equal(got, want) {
		t.Errorf("tree = %q, want %q", got, want)
	}
}

func TestSendOneFileAndAFailure(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "notes.txt")
	os.WriteFile(p, []byte("hello"), 0o640)
	s := serve(t)
	var b bytes.Buffer
	sent, err := s.Send(t.Context(), protocol.Name(p), "", &b)
	if err != nil || len(sent) != 1 || sent[0].Path != "." || sent[0].Size != 5 || sent[0].Mode != 0o640 {
		t.Fatalf("Send = %+v, %v", sent, err)
	}
	h, err := tar.NewReader(&b).Next()
	if err != nil || h.Name != "notes.txt" {
		t.Errorf("first entry = %v, %v", h, err)
	}
	// A path that is not there: the agent says so, and the session goes on.
	if _, err := s.Send(t.Context(), protocol.Name(filepath.Join(dir, "missing")), "", io.Discard); err == nil {
		t.Error("Send of a missing path succeeded")
	}
	if _, err := s.Send(t.Context(), protocol.Name(p), protocol.CodecGzip, io.Discard); err != nil {
		t.Errorf("Send after a failure: %v", err)
	}
}

// A send asked for no file sums (zstd's checksum covers the stream) hashes
// nothing; by default every file's SHA-256 is in the manifest.
func TestSendNoFileSums(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "notes.txt")
	os.WriteFile(p, []byte("hello"), 0o640)
	s := serve(t)
	for _, noSums := range []bool{false, true} {
		sent, err := s.SendTo(t.Context(), protocol.Request{Path: protocol.Name(p), Codec: protocol.CodecZstd, NoFileSums: noSums},
			func(tr io.Reader) error { _, err := io.Copy(io.Discard, tr); return err })
		if err != nil || len(sent) != 1 {
			t.Fatalf("SendTo = %+v, %v", sent, err)
		}
		if want, _ := protocol.ContentSHA256(strings.NewReader("hello")); noSums && sent[0].SHA256 != "" || !noSums && sent[0].SHA256 != want {
			t.Errorf("NoFileSums %v: SHA-256 %q", noSums, sent[0].SHA256)
		}
	}
}

// A bit flipped in a zstd send without file sums is caught by zstd's
// checksum, even for a caller that reads the tar only to its end (SendTo
// reads on to the codec's end, where the checksum is, should the tar's
// end come before the frame's last block).
func TestSendToChecksTheStreamPastTheTar(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "blob")
	b := make([]byte, 300<<10)
	rand.NewChaCha8([32]byte{1}).Read(b) // stored as it is by zstd: only its checksum sees a flip
	os.WriteFile(p, b, 0o644)
	s := serveThrough(t, Options{}, func(w io.Writer) io.Writer { return &flipAt{w: w, at: 200 << 10} })
	_, err := s.SendTo(t.Context(), protocol.Request{Path: protocol.Name(p), Codec: protocol.CodecZstd, NoFileSums: true},
		func(r io.Reader) error {
			tr := tar.NewReader(r)
			for {
				if _, err := tr.Next(); err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
			}
		})
	if err == nil {
		t.Fatal("SendTo passed a stream with a flipped bit")
	}
}

// flipAt flips a bit of the byte at offset at on its way to w.
type flipAt struct {
	w       io.Writer
	at, off int
}

func (f *flipAt) Write(p []byte) (int, error) {
	if f.at >= f.off && f.at < f.off+len(p) {
		p = bytes.Clone(p)
		p[f.at-f.off] ^= 0x20
	}
	f.off += len(p)
	return f.w.Write(p)
}

func TestAbortRemovesTheStagingAtOnce(t *testing.T) {
	parent := t.TempDir()
	dest := filepath.Join(parent, "repo")
	s := serveWith(t, Options{StagingGrace: time.Hour})
	if _, err := s.Receive(t.Context(), protocol.Request{Dest: protocol.Name(dest), KeepOnEOF: true}, bytes.NewReader(archive(t, dir("repo")))); err != nil {
		t.Fatal(err)
	}
	if err := s.Abort(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := names(t, parent); len(got) != 0 {
		t.Errorf("left %q", got)
	}
}

func TestReceiveInPlace(t *testing.T) {
	parent := t.TempDir()
	dest := filepath.Join(parent, "input")
	os.Mkdir(dest, 0o777) // a volume's empty mount point
	tarball := archive(t, dir("input"), file("input/a", "a"), dir("input/c"), file("input/c/d", "d"), symlink("input/l", "a"))
	s := serve(t)
	r, err := s.Receive(t.Context(), protocol.Request{Dest: protocol.Name(dest), InPlace: true}, bytes.NewReader(tarball))
	if err != nil {
		t.Fatalf("Receive = %v", err)
	}
	m, digest, err := s.Manifest(t.Context(), "")
	if err != nil || digest != r.Digest || r.Files != 2 {
		t.Fatalf("Manifest = %v, %q, %v; Receive said %+v", m, digest, err, r)
	}
	if _, err := s.Commit(t.Context(), protocol.Name(dest), ""); err == nil {
		t.Error("Commit after an in-place receive succeeded")
	}
	s.Close()
	if got, want := tree(t, dest), []string{"./", "a = a", "c/", "c/d = d", "l -> a"}; !equal(got, want) {
		t.Errorf("tree = %q, want %q", got, want)
	}
	if got := names(t, parent); !equal(got, []string{"input"}) {
		t.Errorf("beside the destination: %q", got)
	}
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("the top's mode = %v, %v; want the archive's 0755", fi.Mode(), err)
	}
}

func TestInPlaceRetryWaitsForTheEarlierAgentAndWritesOverIt(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "input")
	first := archive(t, dir("input"), file("input/a", "a"), file("input/b", strings.Repeat("b", 2<<20)))
	s := serve(t)
	req := protocol.Request{Dest: protocol.Name(dest), InPlace: true}
	if _, err := s.Receive(t.Context(), req, &cutReader{bytes.NewReader(first[:len(first)-4096])}); err == nil {
		t.Fatal("cut Receive succeeded")
	}
	s.Close()
	s = serve(t)
	r, err := s.Receive(t.Context(), req, bytes.NewReader(archive(t, dir("input"), file("input/b", "short b"))))
	if err != nil || !r.Reused || r.Files != 2 {
		t.Fatalf("retry Receive = %+v, %v; want it reused with 2 files", r, err)
	}
	if got, want := tree(t, dest), []string{"./", "a = a", "b = short b"}; !equal(got, want) {
		t.Errorf("tree = %q, want %q", got, want)
	}
}
