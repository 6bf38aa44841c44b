package transfer

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runSums runs the sums of an upload's receive (sumFilesParallel, then
// sumFiles) over ./t in dir with the container tools of bin, batches of
// per, and the batch directory ps.
func runSums(t *testing.T, bin, dir, per, ps string) []byte {
	t.Helper()
	script := "cd \"$1\" && sum=md5sum per=$2 ps=$3 && set -- ./t\n" + sumFilesParallel + sumFiles
	cmd := exec.Command(filepath.Join(bin, "sh"), "-c", script, "sh", dir, per, ps)
	cmd.Env = []string{"PATH=" + bin}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sums: %v: %s", err, stderr.Bytes())
	}
	return out
}

// batchCount counts the batches of a listing whose names hold no newline.
func batchCount(t *testing.T, out []byte) int {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(out))
	batches := 0
	for {
		header, err := br.ReadString('\n')
		if err == io.EOF && header == "" {
			return batches
		}
		n, cerr := strconv.Atoi(strings.TrimSuffix(header, "\n"))
		if err != nil || cerr != nil {
			t.Fatalf("batch header %q in %q", header, out)
		}
		for range n {
			if _, err := br.ReadString(0); err != nil {
				t.Fatalf("batch of %d names cut in %q", n, out)
			}
		}
		for range n {
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatalf("batch of %d sums cut in %q", n, out)
			}
		}
		batches++
	}
}

func checkSums(t *testing.T, out []byte, files map[string]string) {
	t.Helper()
	got, err := parseSums(bytes.NewReader(out), "t", digestMD5)
	if err != nil {
		t.Fatalf("parseSums: %v in %q", err, out)
	}
	if len(got) != len(files) {
		t.Errorf("%d sums, want %d", len(got), len(files))
	}
	for name, content := range files {
		h := digestMD5.newHash()
		h.Write([]byte(content))
		if got[strings.TrimPrefix(name, "t/")] != sumOf(h) {
			t.Errorf("sum of %q missing or wrong", name)
		}
	}
}

// An upload's files are hashed on every core the container has, in
// batches that each stay whole whatever order they finish in, and with a
// single md5sum where the container cannot: one core, no xargs -P, or no
// place for the batches.
func TestSumFilesParallelKeepsBatchesWhole(t *testing.T) {
	files := map[string]string{}
	for i := range 40 {
		files[fmt.Sprintf("t/d%d/f%02d", i%3, i)] = strings.Repeat(strconv.Itoa(i), i*1000)
	}
	dir := t.TempDir()
	writeTree(t, dir, files)
	bin := busyboxBin(t)
	ps := filepath.Join(t.TempDir(), "batches")

	out := runSums(t, bin, dir, "3", ps)
	checkSums(t, out, files)
	want := 14 // 40 names in batches of 3
	if runtime.NumCPU() < 2 {
		want = 1 // one core: one md5sum, as sumFiles runs it
	}
	if got := batchCount(t, out); got != want {
		t.Errorf("%d batches, want %d", got, want)
	}
	if _, err := os.Stat(ps); !os.IsNotExist(err) {
		t.Errorf("the batch directory is left behind: %v", err)
	}

	for _, tt := range []struct{ name, bin, per, ps string }{
		{"no batch size", bin, "0", ps},
		{"no place for the batches", bin, "3", filepath.Join(t.TempDir(), "missing", "batches")},
		{"no nproc", containerWithout(t, "nproc"), "3", ps},
	} {
		out := runSums(t, tt.bin, dir, tt.per, tt.ps)
		checkSums(t, out, files)
		if got := batchCount(t, out); got != 1 {
			t.Errorf("%s: %d batches, want sumFiles' one", tt.name, got)
		}
	}
}

// Names with a newline, a backslash, a tab or a CR travel whole through the
// parallel batches, as through sumFiles.
func TestSumFilesParallelWithAwkwardNames(t *testing.T) {
	files := map[string]string{"t/new\nline": "1", "t/tab\tx": "2", "t/back\\slash": "3", "t/cr\r": "4"}
	for i := range 12 {
		files[fmt.Sprintf("t/plain%d", i)] = strconv.Itoa(i)
	}
	dir := t.TempDir()
	writeTree(t, dir, files)
	checkSums(t, runSums(t, busyboxBin(t), dir, "2", filepath.Join(t.TempDir(), "batches")), files)
}

// A tree large enough to be hashed on several cores is still verified
// file by file: a bit flipped on the way is found, nothing lands, and a
// retry lands the tree intact.
func TestUploadOfALargeTreeHashesInBatches(t *testing.T) {
	files := map[string]string{}
	for i := range 300 {
		files[fmt.Sprintf("d%d/f%03d.go", i%7, i)] = strings.Repeat(fmt.Sprintf("package p%d\n", i), 6000)
	}
	local := filepath.Join(t.TempDir(), "src")
	writeTree(t, local, files)
	container := t.TempDir()
	ex := &localExecutor{bin: busyboxBin(t)}
	ex.flipAt, ex.flips = 512+512+512+1000, 1 // src/, src/d0/, then the first file's data, once
	rem := &remote{exec: ex, workingDir: container}
	var w warnings
	s := testSettings(&w, compressNone)
	s.retries = 0
	err := upload(context.Background(), rem, local, ".", true, s)
	if err == nil || !strings.Contains(err.Error(), "differ") {
		t.Fatalf("upload of a corrupted stream: %v, want a difference found", err)
	}
	if _, err := os.Lstat(filepath.Join(container, "src")); !os.IsNotExist(err) {
		t.Fatalf("a corrupted upload landed: %v", err)
	}
	decisions := receiveDecisions(ex)
	if len(decisions) != 1 || len(decisions[0]) < 6 || decisions[0][2] != "files" || decisions[0][4] != "19" {
		t.Fatalf("receive decisions %q; want files compared in batches of 19 (300 files)", decisions)
	}

	s.retries = 1
	ex.flips = 1
	if err := upload(context.Background(), rem, local, ".", true, s); err != nil {
		t.Fatalf("upload with a retry: %v", err)
	}
	if got, want := tree(t, filepath.Join(container, "src")), tree(t, local); !reflect.DeepEqual(got, want) {
		t.Errorf("landed %d entries unlike the %d sent", len(got), len(want))
	}
	// Neither attempt leaves its batches, fifo or pid list behind: the
	// state directory ends with the landed version alone (the old
	// versions' removal runs in the background, hence the wait).
	state := filepath.Join(container, stateDirName, "src")
	var left []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		entries, _ := os.ReadDir(state)
		left = left[:0]
		for _, e := range entries {
			left = append(left, e.Name())
		}
		if (len(left) == 1 && strings.HasPrefix(left[0], "v.")) || time.Now().After(deadline) {
			break
		}
	}
	if len(left) != 1 || !strings.HasPrefix(left[0], "v.") {
		t.Errorf("the state directory holds %q; want the landed version alone", left)
	}
}

func TestSumBatch(t *testing.T) {
	for _, tt := range []struct {
		bytes int64
		files int
		want  int
	}{
		{3 << 20, 200, 0}, // an execute input: one md5sum is as quick
		{256 << 20, 1, 0}, // one file: nothing to share out
		{71 << 20, 5000, 256},
		{20 << 20, 300, 19}, // at least 16 batches
		{1 << 20, 1000, 63}, // many small files: their opening is the work
		{17 << 20, 64, 16},
	} {
		if got := sumBatch(tt.bytes, tt.files); got != tt.want {
			t.Errorf("sumBatch(%d, %d) = %d, want %d", tt.bytes, tt.files, got, tt.want)
		}
	}
}
