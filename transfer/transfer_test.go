package transfer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"k8s.io/client-go/tools/remotecommand"

	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

type warnings struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *warnings) warnf(format string, a ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(&w.b, format, a...)
}

// testSettings are the scripts' (agentupload_test.go tests the agent's way).
func testSettings(w *warnings, compress string) settings {
	return settings{compress: compress, verify: true, retries: 3, warnf: w.warnf, agent: agentOff}
}

var sampleTree = map[string]string{
	"a.txt":               "hello\n",
	"bin/run.sh":          "exe:#!/bin/sh\necho hi\n",
	"empty":               "dir",
	"deep/er/still/x":     strings.Repeat("x", 300000),
	"link-to-a":           "link:a.txt",
	"deep/up":             "link:../bin",
	"deep/er/out":         "link:../../../../outside", // symlinks are data, wherever they point
	"abs-link":            "link:/etc/passwd",
	"name with spaces":    "s",
	"-dash":               "d",
	"deep/er/weird\\name": "w",
	"new\nline":           "n",
	"tab\there\r":         "t",
}

func TestRoundTrip(t *testing.T) {
	for _, compress := range []string{compressNone, compressGzip, compressAuto} {
		t.Run(compress, func(t *testing.T) {
			ctx := context.Background()
			local := filepath.Join(t.TempDir(), "src")
			writeTree(t, local, sampleTree)
			container := t.TempDir()
			rem := &remote{exec: &localExecutor{bin: busyboxBin(t)}, workingDir: container}
			var w warnings
			if err := upload(ctx, rem, local, "work", true, testSettings(&w, compress)); err != nil {
				t.Fatalf("upload: %v (%s)", err, w.b.String())
			}
			want := tree(t, local)
			if got := tree(t, filepath.Join(container, "work", "src")); !reflect.DeepEqual(got, want) {
				t.Fatalf("uploaded tree = %v\nwant %v", got, want)
			}
			back := t.TempDir()
			down := testSettings(&w, compress)
			if compress == compressAuto {
				down.compress = compressLZOP // what auto picks on a slow link; lzop compresses nothing up
			}
			if err := download(ctx, rem, "work/src", back, down); err != nil {
				t.Fatalf("download: %v (%s)", err, w.b.String())
			}
			if got := tree(t, filepath.Join(back, "src")); !reflect.DeepEqual(got, want) {
				t.Fatalf("downloaded tree = %v\nwant %v", got, want)
			}
			if entries, _ := os.ReadDir(back); len(entries) != 1 {
				t.Errorf("leftovers beside the download: %v", entries)
			}
			// Beside the landed symlink, only its state directory, which
			// holds only the one version it names.
			if entries, _ := os.ReadDir(filepath.Join(container, "work")); len(entries) != 2 {
				t.Errorf("leftovers beside the upload: %v", entries)
			}
			if entries, _ := os.ReadDir(filepath.Join(container, "work", stateDirName, "src")); len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), "v.") {
				t.Errorf("leftovers in the upload's state directory: %v", entries)
			}
			if w.b.Len() != 0 {
				t.Errorf("warnings: %s", w.b.String())
			}
		})
	}
}

func TestDownloadReplacesAtomicallyAndResumes(t *testing.T) {
	ctx := context.Background()
	container := t.TempDir()
	writeTree(t, filepath.Join(container, "out"), map[string]string{
		"big1": strings.Repeat("1", 200000), "big2": strings.Repeat("2", 200000), "d/big3": strings.Repeat("3", 200000),
	})
	dest := t.TempDir()
	writeTree(t, filepath.Join(dest, "out"), map[string]string{"old": "previous"})
	before := tree(t, filepath.Join(dest, "out"))

	// A stream cut after 250 kB every time: retries exhausted, old tree intact.
	ex := &localExecutor{bin: busyboxBin(t), cutAfter: 250000, cuts: 100}
	rem := &remote{exec: ex, workingDir: container}
	var w warnings
	s := testSettings(&w, compressNone)
	s.retries = 1
	if err := download(ctx, rem, "out", dest, s); err == nil {
		t.Fatal("download through a always-cut stream succeeded")
	}
	if got := tree(t, filepath.Join(dest, "out")); !reflect.DeepEqual(got, before) {
		t.Fatalf("failed download changed the destination: %v", got)
	}
	if entries, _ := os.ReadDir(dest); len(entries) != 1 {
		t.Errorf("leftovers beside the destination: %v", entries)
	}

	// Cut twice: resumed with only the missing files, verified, landed.
	ex = &localExecutor{bin: busyboxBin(t), cutAfter: 250000, cuts: 2}
	rem.exec = ex
	w = warnings{}
	s.retries = 3
	if err := download(ctx, rem, "out", dest, s); err != nil {
		t.Fatalf("download: %v (%s)", err, w.b.String())
	}
	if got, want := tree(t, filepath.Join(dest, "out")), tree(t, filepath.Join(container, "out")); !reflect.DeepEqual(got, want) {
		t.Fatalf("resumed download = %v, want %v", got, want)
	}
	if !strings.Contains(w.b.String(), "missing entries") {
		t.Errorf("retry was not a resume: %s", w.b.String())
	}
}

func TestDownloadInterruptedLeavesNothing(t *testing.T) {
	container := t.TempDir()
	writeTree(t, filepath.Join(container, "out"), map[string]string{"f": strings.Repeat("z", 1<<20)})
	dest := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rem := &remote{exec: &localExecutor{bin: busyboxBin(t)}, workingDir: container}
	var w warnings
	if err := download(ctx, rem, "out", dest, testSettings(&w, compressNone)); err == nil {
		t.Fatal("cancelled download succeeded")
	}
	if entries, _ := os.ReadDir(dest); len(entries) != 0 {
		t.Errorf("cancelled download left %v", entries)
	}
}

func TestUploadFailureKeepsOldDestination(t *testing.T) {
	ctx := context.Background()
	local := filepath.Join(t.TempDir(), "src")
	writeTree(t, local, map[string]string{"new": "new"})
	container := t.TempDir()
	writeTree(t, filepath.Join(container, "src"), map[string]string{"old": "old"})
	// A container whose tar always fails after reading its input.
	bin := fakeTarBin(t, "cat >/dev/null; exit 3")
	rem := &remote{exec: &localExecutor{bin: bin}, workingDir: container}
	var w warnings
	if err := upload(ctx, rem, local, ".", true, testSettings(&w, compressNone)); err == nil {
		t.Fatal("upload through a failing tar succeeded")
	}
	if got := tree(t, container); len(got) != 3 || got["src/old"] == "" {
		t.Fatalf("container after failed upload = %v", got)
	}
}

func TestUploadSelectsLikeFly(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	ctx := context.Background()
	local := filepath.Join(t.TempDir(), "repo")
	writeTree(t, local, map[string]string{
		"tracked": "t", "deleted": "d", ".gitignore": "*.log\nbuild/\n", "keep.log": "tracked though ignored",
		"untracked": "u", "noise.log": "n", "build/out": "o",
	})
	git(t, local, "init", "-q")
	git(t, local, "add", "tracked", "deleted", ".gitignore")
	git(t, local, "add", "-f", "keep.log")
	os.Remove(filepath.Join(local, "deleted"))
	container := t.TempDir()
	rem := &remote{exec: &localExecutor{bin: busyboxBin(t)}, workingDir: container}
	var w warnings
	if err := upload(ctx, rem, local, ".", false, testSettings(&w, compressNone)); err != nil {
		t.Fatalf("upload: %v", err)
	}
	var got []string
	for rel, kind := range tree(t, filepath.Join(container, "repo")) {
		if strings.HasPrefix(kind, "file") {
			got = append(got, rel)
		}
	}
	want := []string{".gitignore", "keep.log", "tracked", "untracked"}
	if sortStrings(got); !reflect.DeepEqual(got, want) {
		t.Errorf("uploaded %v, want %v", got, want)
	}
}

func git(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
}

func sortStrings(s []string) { sort.Strings(s) }

// fakeTarBin returns a busybox bin directory whose tar is a script with
// body, run by the system's /bin/sh (busybox sh would prefer its own tar
// applet to anything in PATH).
func fakeTarBin(t testing.TB, body string) string {
	t.Helper()
	bin := busyboxBin(t)
	for _, n := range []string{"sh", "tar"} {
		os.Remove(filepath.Join(bin, n))
	}
	if err := os.Symlink("/bin/sh", filepath.Join(bin, "sh")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "tar"), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// tarOf is an archive of headers, each regular file holding its own name.
func tarOf(t testing.TB, headers ...tar.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range headers {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Name))
		}
		h.Mode = 0o755
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, h.Name)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDownloadFromHostileTar(t *testing.T) {
	evil := filepath.Join(t.TempDir(), "evil.tar")
	os.WriteFile(evil, tarOf(t, tar.Header{Typeflag: tar.TypeDir, Name: "out/"}, tar.Header{Typeflag: tar.TypeReg, Name: "out/ok"},
		tar.Header{Typeflag: tar.TypeSymlink, Name: "out/l", Linkname: "../../../.."}, tar.Header{Typeflag: tar.TypeReg, Name: "out/l/escaped"},
		tar.Header{Typeflag: tar.TypeReg, Name: "/abs"}, tar.Header{Typeflag: tar.TypeReg, Name: "out/../../rel"},
		tar.Header{Typeflag: tar.TypeLink, Name: "out/h", Linkname: "/etc/passwd"}), 0o644)
	container := t.TempDir()
	writeTree(t, filepath.Join(container, "out"), map[string]string{"ok": "out/ok"})
	base := t.TempDir()
	dest := filepath.Join(base, "dest")
	rem := &remote{exec: &localExecutor{bin: fakeTarBin(t, "cat "+evil)}, workingDir: container}
	var w warnings
	s := testSettings(&w, compressNone)
	s.retries = 0
	err := download(context.Background(), rem, "out", dest, s)
	if err == nil {
		t.Fatal("download of a hostile archive succeeded")
	}
	if got := tree(t, base); !reflect.DeepEqual(got, map[string]string{".": "dir 755", "dest": "dir 755"}) {
		t.Errorf("hostile download left %v", got)
	}
	for _, want := range []string{"../../../..", "/abs", "out/../../rel", "/etc/passwd"} {
		if !strings.Contains(w.b.String(), want) {
			t.Errorf("warnings do not name %q: %s", want, w.b.String())
		}
	}
}

// cancellingReader cancels the transfer once n bytes went to the container.
type cancellingReader struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if c.n -= int64(n); c.n < 0 {
		c.cancel()
	}
	return n, err
}

type cancelAfterStdin struct {
	*localExecutor
	n      int64
	cancel context.CancelFunc
}

func (e cancelAfterStdin) Exec(ctx context.Context, r podexec.Request, s podexec.Streams, q remotecommand.TerminalSizeQueue) error {
	if s.In != nil {
		s.In = &cancellingReader{r: s.In, n: e.n, cancel: e.cancel}
	}
	return e.localExecutor.Exec(ctx, r, s, q)
}

func TestUploadCancelledMidStreamLeavesNoStaging(t *testing.T) {
	local := filepath.Join(t.TempDir(), "src")
	writeTree(t, local, map[string]string{"a": strings.Repeat("a", 1<<20), "b": strings.Repeat("b", 1<<20)})
	container := t.TempDir()
	writeTree(t, filepath.Join(container, "src"), map[string]string{"old": "old"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rem := &remote{exec: cancelAfterStdin{&localExecutor{bin: busyboxBin(t)}, 300000, cancel}, workingDir: container}
	var w warnings
	if err := upload(ctx, rem, local, ".", true, testSettings(&w, compressNone)); err == nil {
		t.Fatal("cancelled upload succeeded")
	}
	if got := tree(t, container); !reflect.DeepEqual(got, map[string]string{".": got["."], "src": got["src"], "src/old": got["src/old"]}) || len(got) != 3 {
		t.Errorf("container after a cancelled upload = %v", got)
	}
}

func TestSingleFileRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"run.sh": "exe:#!/bin/sh\n"})
	container := t.TempDir()
	rem := &remote{exec: &localExecutor{bin: busyboxBin(t)}, workingDir: container}
	var w warnings
	if err := upload(ctx, rem, filepath.Join(dir, "run.sh"), "bin", false, testSettings(&w, compressAuto)); err != nil {
		t.Fatalf("upload: %v", err)
	}
	back := t.TempDir()
	writeTree(t, back, map[string]string{"run.sh/old": "a directory in the way is replaced whole"})
	if err := download(ctx, rem, filepath.Join(container, "bin", "run.sh"), back, testSettings(&w, compressAuto)); err != nil {
		t.Fatalf("download: %v", err)
	}
	if got, want := tree(t, back), tree(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("single file round trip = %v, want %v", got, want)
	}
}

// TestSelectionEqualsGitOnGeneratedTrees checks gitFiles against a second
// oracle: every file on disk that `git check-ignore` does not ignore
// (check-ignore never reports tracked files, so force-added ones count).
func TestSelectionEqualsGitOnGeneratedTrees(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			dir := t.TempDir()
			exts := []string{".go", ".o", ".log", ".tmp", ".txt"}
			var all []string
			for i := 0; i < 300; i++ {
				p := fmt.Sprintf("d%d/e%d/f%d%s", r.IntN(6), r.IntN(4), i, exts[r.IntN(len(exts))])
				if r.IntN(5) == 0 {
					p = fmt.Sprintf("build/out%d%s", i, exts[r.IntN(len(exts))])
				}
				all = append(all, p)
				writeTree(t, dir, map[string]string{p: "x"})
			}
			writeTree(t, dir, map[string]string{
				".gitignore": "*.o\nbuild/\n!d1/**/*.o\n/d2/e1/\n", "d3/.gitignore": "*.tmp\n!keep*.tmp\n", "d4/e2/.gitignore": "*\n!*.go\n",
			})
			git(t, dir, "init", "-q")
			git(t, dir, "add", ".")
			git(t, dir, "add", "-f", all[0], all[1]) // tracked though maybe ignored
			os.Remove(filepath.Join(dir, all[2]))    // tracked, then deleted
			got, err := gitFiles(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			var onDisk []string
			filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if d.IsDir() && d.Name() == ".git" {
					return filepath.SkipDir
				}
				if !d.IsDir() {
					rel, _ := filepath.Rel(dir, p)
					onDisk = append(onDisk, filepath.ToSlash(rel))
				}
				return nil
			})
			cmd := exec.Command("git", "check-ignore", "-z", "--stdin")
			cmd.Dir, cmd.Stdin = dir, strings.NewReader(strings.Join(onDisk, "\x00")+"\x00")
			out, _ := cmd.Output() // exit 1 when nothing is ignored
			ignored := map[string]bool{}
			for _, f := range strings.Split(string(out), "\x00") {
				ignored[f] = true
			}
			var want []string
			for _, f := range onDisk {
				if !ignored[f] {
					want = append(want, f)
				}
			}
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("gitFiles = %d files, oracle %d; first difference at %v", len(got), len(want), firstDiff(got, want))
			}
		})
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[i] + " vs " + b[i]
		}
	}
	return "the end"
}

// TestUploadReportsTheLocalCause: a local file that cannot be read breaks
// the container's tar too; the local error is the cause and the one
// reported (the remote tar's exit once hid it).
func TestUploadReportsTheLocalCause(t *testing.T) {
	local := filepath.Join(t.TempDir(), "src")
	writeTree(t, local, map[string]string{"big": strings.Repeat("b", 1<<20), "x": "a file, not a directory"})
	container := t.TempDir()
	rem := &remote{exec: &localExecutor{bin: busyboxBin(t)}, workingDir: container}
	var w warnings
	// "x/y" cannot be read (x is a file): what a file the plugin may not
	// read does, reproducible as root.
	p := newPacker(local, "src", []string{"big", "x/y"}, false, testSettings(&w, compressNone).warnf, nil)
	u := &uploader{rem: rem, p: p, base: "src", dest: container, staging: filepath.Join(container, ".staging"), tarOpts: []string{"-o"}}
	_, err := u.stream(context.Background(), nil)
	if !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("stream() = %v, want the local ENOTDIR", err)
	}
}

// writeCounter counts the writes it is given.
type writeCounter struct{ writes, bytes int }

func (c *writeCounter) Write(b []byte) (int, error) {
	c.writes++
	c.bytes += len(b)
	return len(b), nil
}

// Every write of the packer becomes an exec frame and a write(2): a tree of
// small files must go out in large pieces, not a header, the data and the
// padding apiece (which made a 20,000-file upload twice as slow).
func TestPackWritesLargePieces(t *testing.T) {
	files := map[string]string{}
	for i := range 500 {
		files[fmt.Sprintf("d%d/f%03d", i%5, i)] = strings.Repeat("x", 100+i)
	}
	local := filepath.Join(t.TempDir(), "src")
	writeTree(t, local, files)
	var w warnings
	p := newPacker(local, "src", nil, false, testSettings(&w, compressNone).warnf, nil)
	var c writeCounter
	if err := p.pack(&c, nil, endEntry{name: ".end", content: "x"}); err != nil {
		t.Fatal(err)
	}
	if most := c.bytes/(128<<10) + 2; c.writes > most {
		t.Errorf("pack wrote %d bytes in %d writes, want at most %d", c.bytes, c.writes, most)
	}
}

// A retry after a cut upload sends only what the staging directory does
// not already hold intact: the file that arrived whole before the cut is
// left out, the one cut in the middle is sent again, and what lands is
// the whole tree. The cut either looks like success (the exec reports
// it) or breaks the exec while the plugin still sends.
func TestUploadRetryLeavesOutWhatArrivedIntact(t *testing.T) {
	local := filepath.Join(t.TempDir(), "src")
	const size = 100_000
	writeTree(t, local, map[string]string{"a": strings.Repeat("a", size), "b": strings.Repeat("b", size), "c": "c"})
	// The packer's archive: src/ (one header), a (header and data padded
	// to 512), b, c, the end entry. The cut leaves src/, a and half of b.
	padded := (size + 511) / 512 * 512
	cut := int64(512 + 512 + padded + 512 + padded/2)
	for _, breaks := range []bool{false, true} {
		container := t.TempDir()
		ex := &localExecutor{bin: busyboxBin(t), stdinCutAfter: cut, stdinCuts: 1, stdinCutBreaks: breaks}
		rem := &remote{exec: ex, workingDir: container}
		var w warnings
		s := testSettings(&w, compressNone)
		s.retries = 1
		if err := upload(context.Background(), rem, local, ".", true, s); err != nil {
			t.Fatalf("breaks=%v: upload with a retry: %v", breaks, err)
		}
		if got, want := tree(t, filepath.Join(container, "src")), tree(t, local); !reflect.DeepEqual(got, want) {
			t.Errorf("breaks=%v: landed %v, want %v", breaks, got, want)
		}
		var sent []int64
		for _, session := range ex.stdinRead {
			if slices.Contains(session.command, uploadScript) || slices.Contains(session.command, receiveScript) {
				sent = append(sent, session.n.Load())
			}
		}
		if len(sent) != 2 {
			t.Fatalf("breaks=%v: %d receive sessions, want the cut one and its retry", breaks, len(sent))
		}
		// The retry: headers and end blocks (a few KiB), b's data, not a's.
		if retry := sent[1]; retry < int64(padded) || retry >= int64(padded)+16*512 {
			t.Errorf("breaks=%v: the retry sent %d bytes; want b's %d and headers, without a", breaks, retry, padded)
		}
	}
}
