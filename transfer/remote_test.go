package transfer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	utilexec "k8s.io/client-go/util/exec"

	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

func TestParseSums(t *testing.T) {
	sum := func(s string) [32]byte { return sha256.Sum256([]byte(s)) }
	hexOf := func(s string) string { h := sum(s); return hex.EncodeToString(h[:]) }
	batch := func(names []string, lines ...string) string {
		return fmt.Sprintf("%d\n%s\x00%s", len(names), strings.Join(names, "\x00"), strings.Join(lines, ""))
	}
	tests := []struct {
		name    string
		in      string
		want    manifest
		wantErr string
	}{
		{"busybox prints names as they are, newlines too",
			batch([]string{"./t/a", "./t/new\nline"}, hexOf("a")+"  ./t/a\n", hexOf("n")+"  ./t/new\nline\n"),
			manifest{"a": sum("a"), "new\nline": sum("n")}, ""},
		{"GNU escapes backslash and newline, and says so with a leading backslash",
			batch([]string{"./t/w\\x", "./t/n\nl"}, "\\"+hexOf("w")+"  ./t/w\\\\x\n", "\\"+hexOf("n")+"  ./t/n\\nl\n"),
			manifest{"w\\x": sum("w"), "n\nl": sum("n")}, ""},
		{"GNU 9 escapes carriage returns too",
			batch([]string{"./t/c\r"}, "\\"+hexOf("c")+"  ./t/c\\r\n"),
			manifest{"c\r": sum("c")}, ""},
		{"two batches", batch([]string{"./t/a"}, hexOf("a")+"  ./t/a\n") + batch([]string{"./t/b"}, hexOf("b")+" *./t/b\n"),
			manifest{"a": sum("a"), "b": sum("b")}, ""},
		{"a name the line does not match", batch([]string{"./t/a"}, hexOf("a")+"  ./t/b\n"), nil, `no sha256 for "./t/a"`},
		{"sha256sum skipped an unreadable file", batch([]string{"./t/a", "./t/b"}, hexOf("b")+"  ./t/b\n"), nil, `no sha256 for "./t/a"`},
		{"a name outside the tree", batch([]string{"./u/a"}, hexOf("a")+"  ./u/a\n"), nil, "not under"},
		{"truncated", "2\n./t/a\x00", nil, "ends in the middle"},
		{"empty", "", manifest{}, ""},
	}
	md5sum := func(s string) [32]byte { h := digestMD5.newHash(); h.Write([]byte(s)); return sumOf(h) }
	md5hex := func(s string) string { h := md5sum(s); return hex.EncodeToString(h[:16]) }
	got, err := parseSums(strings.NewReader(batch([]string{"./t/a", "./t/b c"}, md5hex("a")+"  ./t/a\n", "\\"+md5hex("b")+"  ./t/b c\n")), "t", digestMD5)
	if want := (manifest{"a": md5sum("a"), "b c": md5sum("b")}); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parseSums(md5) = %v, %v; want %v", got, err, want)
	}
	if _, err := parseSums(strings.NewReader(batch([]string{"./t/a"}, hexOf("a")+"  ./t/a\n")), "t", digestMD5); err == nil || !strings.Contains(err.Error(), "no md5") {
		t.Errorf("parseSums(md5) of a sha256 line: %v, want a refusal", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSums(strings.NewReader(tt.in), "t", digestSHA256)
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("parseSums() error = %v, want %q", err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("parseSums() error = %v", err)
			case fmt.Sprint(got) != fmt.Sprint(tt.want):
				t.Errorf("parseSums() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTransient(t *testing.T) {
	exited := func(code int, stderr string) error {
		return &podexec.ScriptError{Code: code, Stderr: stderr, Err: utilexec.CodeExitError{Err: errors.New("x"), Code: code}}
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"the stream broke", &podexec.ScriptError{Code: -1, Err: errors.New("connection lost")}, true},
		{"a check failed", fmt.Errorf("3 files %w", errMismatch), true},
		{"the archive ended early", fmt.Errorf("receive: %w", &streamError{errors.New("unexpected EOF")}), true},
		{"tar saw its input cut", exited(1, "tar: short read"), true},
		{"no space in the container", exited(1, "tar: write error: No space left on device"), false},
		{"a read-only volume", exited(1, "mkdir: can't create directory '/ro/x': Read-only file system"), false},
		{"a local failure", errors.New("write x: no space left on device"), false},
	}
	for _, tt := range tests {
		if got := transient(tt.err); got != tt.want {
			t.Errorf("%s: transient(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
	if got := withRemedy(exited(1, "mkdir: can't create directory '/ro/.x': Read-only file system")).Error(); !strings.Contains(got, "writable volume") {
		t.Errorf("withRemedy() = %q", got)
	}
}

// TestSumFilesWithTheSystemTools runs sumFiles with this machine's own
// find and sha256sum (GNU coreutils here), whose escaping differs from
// busybox's, over names holding a newline, a tab, a backslash and a CR.
func TestSumFilesWithTheSystemTools(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"t/new\nline": "1", "t/tab\tx": "2", "t/back\\slash": "3", "t/cr\r": "4", "t/plain": "5"}
	writeTree(t, dir, files)
	for _, d := range []*digest{digestMD5, digestSHA256} {
		cmd := exec.Command("sh", "-c", "cd \"$1\" && sum=$2 && set -- ./t && "+sumFiles, "sh", dir, d.tool)
		out, err := cmd.Output()
		if err != nil {
			t.Skipf("no POSIX tools here: %v", err)
		}
		got, err := parseSums(strings.NewReader(string(out)), "t", d)
		if err != nil {
			t.Fatalf("%s: parseSums(%q) = %v", d.tool, out, err)
		}
		for name, content := range files {
			h := d.newHash()
			h.Write([]byte(content))
			if got[strings.TrimPrefix(name, "t/")] != sumOf(h) {
				t.Errorf("%s: sum of %q missing or wrong in %v", d.tool, name, got)
			}
		}
	}
}

// The probe measures only what can decide something. Data whose first 64
// KiB do not compress gets no link sample (42 ms of a 25 MB/s link for
// nothing) and no ratio run, nor does a tree counted as large enough for
// the agent; over a link slow enough for compression to pay (25 MB/s
// here), the rest gets both, and the compressor is timed.
func TestProbeMeasuresOnlyWhatCanDecide(t *testing.T) {
	dir := t.TempDir()
	text := strings.Repeat("func f() error { return nil } // compressible source text\n", 40000)
	noise := make([]byte, 2<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	writeTree(t, dir, map[string]string{"text": text, "noise": string(noise), "tree/a": text, "tree/b": text})
	rem := &remote{exec: &localExecutor{bin: busyboxBin(t), outRate: 25e6}, workingDir: dir}
	for _, tt := range []struct {
		path       string
		compresses bool
	}{
		{"./text", true},
		{"./tree", true},
		{"./noise", false},
	} {
		c, err := rem.probeOnly(context.Background(), probeRequest{path: path.Join(dir, tt.path), size: true, ratio: true, sample: sampleBytes})
		if err != nil {
			t.Fatalf("probe %s: %v", tt.path, err)
		}
		if compresses := c.ratio > 0 && c.ratio <= maxRatio; compresses != tt.compresses {
			t.Errorf("probe %s: ratio %.2f (%s), want compressible %v", tt.path, c.ratio, c.codec, tt.compresses)
		}
		if sampled := c.linkBytesPerSec > 0; sampled != tt.compresses {
			t.Errorf("probe %s: link sampled at %.0f B/s, want a sample %v", tt.path, c.linkBytesPerSec, tt.compresses)
		}
		if tt.compresses && c.compressRate <= 0 {
			t.Errorf("probe %s: the compressor was not timed", tt.path)
		}
	}
	// A tree of as many entries as the count asks for goes to the agent,
	// which needs neither; one entry fewer is sampled, and so is a symlink
	// to the tree, which stays with the scripts (agentPays).
	if err := os.Symlink("tree", filepath.Join(dir, "treelink")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path    string
		count   int
		sampled bool
	}{{"tree", 3, false}, {"tree", 4, true}, {"treelink", 3, true}} {
		c, err := rem.probeOnly(context.Background(), probeRequest{path: path.Join(dir, tt.path), size: true, ratio: true, sample: sampleBytes, count: tt.count})
		if err != nil {
			t.Fatalf("probe ./%s counting to %d: %v", tt.path, tt.count, err)
		}
		if sampled := c.linkBytesPerSec > 0 || c.ratio > 0; sampled != tt.sampled || c.count != min(tt.count, 3) {
			t.Errorf("probe ./%s counting to %d: count %d, link %.0f B/s, ratio %.2f; want a sample and a ratio %v",
				tt.path, tt.count, c.count, c.linkBytesPerSec, c.ratio, tt.sampled)
		}
	}
}

// The probe sizes what the transfer sends: the path named, followed when
// it is a symlink, but not the symlinks inside a tree, which are sent as
// symlinks (and a link to / would have it walk the container's disk).
func TestProbeSizesWithoutFollowingLinksInTheTree(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"elsewhere/big": strings.Repeat("x", 4<<20),
		"tree/a":        strings.Repeat("a", 64<<10),
		"tree/big":      "link:../elsewhere",
		"tree/abs":      "link:" + filepath.Join(dir, "elsewhere", "big"),
		"tree/root":     "link:/",
		"to-tree":       "link:tree",
		"to-big":        "link:elsewhere/big",
	})
	rem := &remote{exec: &localExecutor{bin: busyboxBin(t)}, workingDir: dir}
	tests := []struct {
		path     string
		min, max int64
	}{
		{"tree", 64 << 10, 1 << 20},
		{"to-tree", 64 << 10, 1 << 20},
		{"to-big", 4 << 20, 5 << 20},
	}
	for _, tt := range tests {
		c, err := rem.probeOnly(context.Background(), probeRequest{path: path.Join(dir, tt.path), size: true})
		if err != nil {
			t.Fatalf("probe %s: %v", tt.path, err)
		}
		if c.size < tt.min || c.size > tt.max {
			t.Errorf("probe %s: size %d, want %d to %d", tt.path, c.size, tt.min, tt.max)
		}
	}
}

// A fast link leaves no room for a codec, a slow one does, and no codec
// never wins. Pure, so that the loopback case is not left to how fast a
// loaded machine's pipe happens to be.
func TestCompressionCanWinOnlyOverASlowLink(t *testing.T) {
	for _, tt := range []struct {
		codec string
		rate  float64
		want  bool
	}{
		{compressLZOP, 25e6, true},
		{compressGzip, 25e6, true},
		{compressLZOP, 2e9, false}, // loopback
		{compressGzip, 2e9, false},
		{"", 25e6, false},
		{compressLZOP, 0, false}, // not sampled
	} {
		if got := compressionCanWin(false, tt.codec, tt.rate); got != tt.want {
			t.Errorf("compressionCanWin(download, %q, %.0f MB/s) = %v, want %v", tt.codec, tt.rate/1e6, got, tt.want)
		}
	}
}

// After the link sample the plugin tells the script whether to measure
// the ratio: only when the link is slow enough for the codec's
// decompressor to outrun it twice over (compressionCanWin), and never
// when the container has no codec. Only paced samples: pacing bounds the
// rate from above, so a loaded machine can only make them slower.
func TestProbeAsksForTheRatioOnlyOverASlowLink(t *testing.T) {
	for _, tt := range []struct {
		name  string
		tools string
		rate  int64 // pace of the sample
		want  string
	}{
		{"25 MB/s link, lzop", "has tar\nhas lzop\n", 25e6, "ratio\n"},
		{"25 MB/s link, gzip", "has tar\nhas gzip\n", 25e6, "ratio\n"},
		{"no codec", "has tar\n", 25e6, "skip\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const sample = 4 * sampleBlock
			pr, pw := io.Pipe()
			out := &pacedWriter{w: pw, rate: tt.rate}
			go func() {
				_, _ = io.WriteString(out, tt.tools+"type dir\nsize 9000\nsample ask\n")
				for range sample / sampleBlock { // as dd writes it
					_, _ = out.Write(make([]byte, sampleBlock))
				}
				pw.Close()
			}()
			var answer strings.Builder
			var c caps
			if _, err := parseProbe(bufio.NewReader(pr), &c, sample, &answer); err != nil {
				t.Fatal(err)
			}
			if c.linkBytesPerSec <= 0 {
				t.Fatal("the sample was not timed")
			}
			if answer.String() != tt.want {
				t.Errorf("sample at %.0f MB/s: answered %q, want %q", c.linkBytesPerSec/1e6, answer.String(), tt.want)
			}
		})
	}
}

// The script measures the ratio when, and only when, the plugin answers
// "ratio" after the sample; a plugin that says nothing (stdin ends) skips it.
func TestProbeScriptMeasuresTheRatioOnlyWhenAsked(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"tree/a": strings.Repeat("compressible ", 1<<16)})
	rem := &remote{exec: &localExecutor{bin: busyboxBin(t)}, workingDir: dir}
	args := []string{path.Join(dir, "tree"), "size", "ratio", strconv.Itoa(sampleBlock), "0", "80"}
	for _, tt := range []struct {
		answer  string
		measure bool
	}{
		{"ratio\n", true},
		{"skip\n", false},
		{"", false},
	} {
		var out bytes.Buffer
		if err := rem.run(context.Background(), probeOnlyScript, args, strings.NewReader(tt.answer), &out); err != nil {
			t.Fatalf("answer %q: %v", tt.answer, err)
		}
		if !strings.Contains(out.String(), "\nsample ask\n") {
			t.Fatalf("answer %q: no sample in %q", tt.answer, out.String())
		}
		if measured := strings.Contains(out.String(), "\nratio "); measured != tt.measure {
			t.Errorf("answer %q: measured the ratio %v, want %v", tt.answer, measured, tt.measure)
		}
	}
}

func TestCompressorRate(t *testing.T) {
	const mib = 1 << 20
	ms := time.Millisecond
	tests := []struct {
		name               string
		readOnly, compress time.Duration
		want               float64
	}{
		{"the read-only run's start-up is taken out", 20 * ms, 30 * ms, mib / 0.010},
		{"a compressor slower than reading counts whole but the read", 5 * ms, 45 * ms, mib / 0.040},
		{"noise: never more than 4x the uncorrected rate", 30 * ms, 28 * ms, mib / 0.007},
		{"not timed", 0, 0, 0},
	}
	for _, tt := range tests {
		if got := compressorRate(mib, tt.readOnly, tt.compress); math.Abs(got-tt.want) > 1 {
			t.Errorf("%s: compressorRate(1 MiB, %v, %v) = %.0f, want %.0f", tt.name, tt.readOnly, tt.compress, got, tt.want)
		}
	}
}
