package transfer

import (
	"context"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// containerWithout is a container directory of tools (busyboxBin) that
// lacks the named ones. Its sh is dash: busybox's sh runs its own applets
// whatever PATH holds, so only another shell can miss a tool.
func containerWithout(t *testing.T, missing ...string) string {
	t.Helper()
	dash, err := exec.LookPath("dash")
	if err != nil {
		t.Skip("dash not installed")
	}
	var applets []string
	for _, a := range []string{"tar", "gzip", "lzop", "md5sum", "sha256sum", "find", "xargs", "tee", "mkfifo", "mkdir",
		"mv", "rm", "du", "cut", "head", "wc", "dd", "grep", "cat", "rmdir", "ln", "readlink", "sleep"} {
		if !slices.Contains(missing, a) {
			applets = append(applets, a)
		}
	}
	bin := busyboxBin(t, applets...)
	if err := os.Symlink(dash, filepath.Join(bin, "sh")); err != nil {
		t.Fatal(err)
	}
	return bin
}

// scriptArgs returns the arguments of every run of script ex saw.
func scriptArgs(ex *localExecutor, script string) [][]string {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	var runs [][]string
	for _, c := range ex.commands {
		if s, args, ok := podexec.ScriptOf(c); ok && c[0] == "sh" && s == script {
			runs = append(runs, args)
		}
	}
	return runs
}

// Every tool the fast paths use has a fallback: a container without it
// still gets its transfers checked, by the next best means, and a
// corrupted or cut stream still never lands.
func TestFallbacksKeepTheGuarantee(t *testing.T) {
	tests := []struct {
		name    string
		missing []string
		slow    bool   // the link sample is paced to 20 MB/s: the stream is hashed as it arrives, where it can be
		sum     string // the checksum program the files are compared with after tar ("-": none)
		stream  string // the one the stream is hashed with while it arrives ("-": none)
		warning string // "": none
	}{
		{name: "every tool, fast link", sum: "md5sum", stream: "-"},
		{name: "every tool, slow link", slow: true, sum: "-", stream: "md5sum"},
		{name: "no md5sum", missing: []string{"md5sum"}, sum: "sha256sum", stream: "-"},
		{name: "no md5sum, slow link", missing: []string{"md5sum"}, slow: true, sum: "-", stream: "sha256sum"},
		{name: "no mkfifo, slow link", missing: []string{"mkfifo"}, slow: true, sum: "md5sum", stream: "-"},
		{name: "no tee, slow link", missing: []string{"tee"}, slow: true, sum: "md5sum", stream: "-"},
		{name: "no checksum tool", missing: []string{"md5sum", "sha256sum"}, sum: "-", stream: "-", warning: "not verified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Over the slow link, a file above smallTransfer, so that the
			// link is sampled; else one below, so that it is not: a sample
			// of the fast local channel can look slow on a loaded machine.
			size := 64 << 10
			if tt.slow {
				size = 9 << 20
			}
			big := make([]byte, size)
			for i := range big {
				big[i] = byte(i * 7)
			}
			local := filepath.Join(t.TempDir(), "src")
			writeTree(t, local, map[string]string{"big": string(big), "small": "small"})
			container := t.TempDir()
			ex := &localExecutor{bin: containerWithout(t, tt.missing...)}
			if tt.slow {
				ex.outRate = 20e6
			}
			if tt.warning == "" {
				ex.flipAt, ex.flips = 512+512+4096, 1 // one bit of big's data, once
			} else {
				ex.stdinCutAfter, ex.stdinCuts = int64(512+512+size), 1 // src/ and big arrive, then nothing
			}
			rem := &remote{exec: ex, workingDir: container}
			var w warnings
			s := testSettings(&w, compressNone)
			s.retries = 0
			err := upload(context.Background(), rem, local, ".", true, s)
			want := "differ"
			if tt.warning != "" {
				want = "stream was cut"
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("upload of a damaged stream: %v, want %q", err, want)
			}
			if entries, _ := os.ReadDir(container); len(entries) != 0 {
				t.Errorf("a damaged upload left %v", entries)
			}
			// The decision: "go Z MODE SUM NONCE OPTIONS...".
			receives := receiveDecisions(ex)
			wantMode, wantSum := "none", "-"
			switch {
			case tt.stream != "-":
				wantMode, wantSum = "stream", tt.stream
			case tt.sum != "-":
				wantMode, wantSum = "files", tt.sum
			}
			if len(receives) != 1 || len(receives[0]) < 5 || receives[0][2] != wantMode || receives[0][3] != wantSum {
				t.Fatalf("receive runs %q; want one comparing files by %s and the stream by %s", receives, tt.sum, tt.stream)
			}

			ex.flips, ex.stdinCuts, s.retries = 1, 1, 1
			if err := upload(context.Background(), rem, local, ".", true, s); err != nil {
				t.Fatalf("upload with a retry: %v", err)
			}
			if got, want := tree(t, filepath.Join(container, "src")), tree(t, local); !reflect.DeepEqual(got, want) {
				t.Errorf("landed a tree that differs from the source")
			}
			if got := w.b.String(); tt.warning != "" && !strings.Contains(got, tt.warning) || tt.warning == "" && strings.Contains(got, "not verified") {
				t.Errorf("warnings %q, want %q", got, tt.warning)
			}

			back := t.TempDir()
			if err := download(context.Background(), rem, "src", back, s); err != nil {
				t.Fatalf("download: %v", err)
			}
			if got, want := tree(t, filepath.Join(back, "src")), tree(t, local); !reflect.DeepEqual(got, want) {
				t.Errorf("downloaded a tree that differs from the source")
			}
			wantManifest := tt.sum
			if wantManifest == "-" {
				wantManifest = tt.stream
			}
			manifests := scriptArgs(ex, manifestScript)
			if wantManifest == "-" && len(manifests) > 0 || wantManifest != "-" && (len(manifests) == 0 || manifests[len(manifests)-1][2] != wantManifest) {
				t.Errorf("download manifests %q, want them by %s", manifests, wantManifest)
			}
		})
	}
}

// Downloads compress with lzop where the container has it, else with
// gzip, else not at all: the probe measures the ratio with the codec the
// stream would use.
func TestProbeMeasuresTheCodecTheContainerHas(t *testing.T) {
	for _, tt := range []struct {
		missing []string
		codec   string
	}{
		{codec: compressLZOP},
		{missing: []string{"lzop"}, codec: compressGzip},
		{missing: []string{"lzop", "gzip"}, codec: ""},
	} {
		t.Run(strings.Join(append([]string{"without"}, tt.missing...), " "), func(t *testing.T) {
			container := t.TempDir()
			writeTree(t, filepath.Join(container, "src"), map[string]string{"a": strings.Repeat("compressible ", 1<<16)})
			// Over a slow link: over a fast one the ratio is not measured.
			rem := &remote{exec: &localExecutor{bin: containerWithout(t, tt.missing...), outRate: 25e6}, workingDir: container}
			c, err := rem.probeOnly(context.Background(), probeRequest{path: filepath.Join(container, "src"), size: true, ratio: true, sample: sampleBytes})
			if err != nil {
				t.Fatal(err)
			}
			if c.codec != tt.codec || tt.codec != "" && (c.ratio <= 0 || c.ratio > maxRatio) {
				t.Errorf("probe: codec %q ratio %.3f; want %q and a ratio that says it compresses", c.codec, c.ratio, tt.codec)
			}
			if tt.codec == "" {
				return
			}
			back := t.TempDir()
			var w warnings
			if err := download(context.Background(), rem, "src", back, testSettings(&w, tt.codec)); err != nil {
				t.Fatalf("download with %s: %v", tt.codec, err)
			}
			if got, want := tree(t, filepath.Join(back, "src")), tree(t, filepath.Join(container, "src")); !reflect.DeepEqual(got, want) {
				t.Errorf("downloaded with %s a tree that differs from the source", tt.codec)
			}
		})
	}
}
