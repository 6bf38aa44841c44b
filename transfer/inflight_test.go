package transfer

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// A stream cut between two archive entries looks whole to tar (busybox's
// and GNU's exit 0) and, when the connection just drops, to the exec too.
// These tests cut exactly there and report success, and check that the
// check done while the stream passes, not after, catches it: with
// --verify=false too, since the end markers cost nothing.

func TestUploadCutBetweenEntriesNeverLands(t *testing.T) {
	local := filepath.Join(t.TempDir(), "src")
	writeTree(t, local, map[string]string{"a": strings.Repeat("a", 1000), "b": strings.Repeat("b", 1000)})
	// The packer's archive: src/ (one header), a (header and 1024 bytes
	// of data), b, the end entry. The cut leaves src/ and a.
	const cut = 512 + 512 + 1024
	for _, verify := range []bool{true, false} {
		container := t.TempDir()
		writeTree(t, filepath.Join(container, "src"), map[string]string{"old": "old"})
		before := tree(t, container)
		ex := &localExecutor{bin: busyboxBin(t), stdinCutAfter: cut, stdinCuts: 1}
		rem := &remote{exec: ex, workingDir: container}
		var w warnings
		s := testSettings(&w, compressNone)
		s.verify, s.retries = verify, 0
		err := upload(context.Background(), rem, local, ".", true, s)
		if err == nil || !strings.Contains(err.Error(), "stream was cut") {
			t.Fatalf("verify=%v: upload of a cut stream: %v, want the cut named", verify, err)
		}
		if got := tree(t, container); !reflect.DeepEqual(got, before) {
			t.Errorf("verify=%v: a cut upload changed the container: %v", verify, got)
		}
		// One retry resumes and lands the whole tree.
		ex.stdinCuts = 1
		s.retries = 1
		w = warnings{}
		if err := upload(context.Background(), rem, local, ".", true, s); err != nil {
			t.Fatalf("verify=%v: upload with a retry: %v", verify, err)
		}
		if got, want := tree(t, filepath.Join(container, "src")), tree(t, local); !reflect.DeepEqual(got, want) {
			t.Errorf("verify=%v: landed %v, want %v", verify, got, want)
		}
		if !strings.Contains(w.b.String(), "resuming") {
			t.Errorf("verify=%v: no resume reported: %s", verify, w.b.String())
		}
	}
}

func TestDownloadCutBetweenEntriesNeverLands(t *testing.T) {
	container := t.TempDir()
	writeTree(t, filepath.Join(container, "out"), map[string]string{"a": strings.Repeat("a", 1000), "b": strings.Repeat("b", 1000)})
	// busybox tar's archive: out/, then a and b (in directory order), then
	// the zero blocks; the cut leaves out/ and the first file to the
	// extractor, which never sees the stream's last bytes (where the end
	// marker should be: 22 bytes and a 12-digit nonce).
	const cut = 512 + 512 + 1024 + len(streamEnd) + 12
	for _, verify := range []bool{true, false} {
		dest := t.TempDir()
		writeTree(t, filepath.Join(dest, "out"), map[string]string{"old": "old"})
		before := tree(t, dest)
		ex := &localExecutor{bin: busyboxBin(t), cutAfter: int64(cut), cuts: 1, silent: true}
		rem := &remote{exec: ex, workingDir: container}
		var w warnings
		s := testSettings(&w, compressNone)
		s.verify, s.retries = verify, 0
		err := download(context.Background(), rem, "out", dest, s)
		if err == nil {
			t.Fatalf("verify=%v: download of a silently cut stream succeeded", verify)
		}
		if !verify && !strings.Contains(err.Error(), "end marker") {
			t.Errorf("verify=false: %v, want the missing end marker named", err)
		}
		if got := tree(t, dest); !reflect.DeepEqual(got, before) {
			t.Errorf("verify=%v: a cut download changed the destination: %v", verify, got)
		}
		if entries, _ := os.ReadDir(dest); len(entries) != 1 {
			t.Errorf("verify=%v: leftovers beside the destination: %v", verify, entries)
		}
		ex.cuts = 1
		s.retries = 1
		if err := download(context.Background(), rem, "out", dest, s); err != nil {
			t.Fatalf("verify=%v: download with a retry: %v", verify, err)
		}
		if got, want := tree(t, filepath.Join(dest, "out")), tree(t, filepath.Join(container, "out")); !reflect.DeepEqual(got, want) {
			t.Errorf("verify=%v: landed %v, want %v", verify, got, want)
		}
	}
}

// A stream corrupted on the way, whole and well formed (one bit of a
// file's data), is caught and resent, never landed: by the files' sums
// after tar over a fast link, by the stream's own sum while it arrives
// over a slow one (the probe's link sample is paced here to 20 MB/s).
func TestUploadCorruptedStreamNeverLands(t *testing.T) {
	for _, slow := range []bool{false, true} {
		// Over the slow link, a file above smallTransfer, so that the link
		// is sampled; else one below, so that it is not: a sample of the
		// fast local channel can look slow on a loaded machine.
		big := make([]byte, 64<<10)
		if slow {
			big = make([]byte, 9<<20)
		}
		for i := range big {
			big[i] = byte(i * 7)
		}
		local := filepath.Join(t.TempDir(), "src")
		writeTree(t, local, map[string]string{"big": string(big), "small": "small"})
		container := t.TempDir()
		ex := &localExecutor{bin: busyboxBin(t), flipAt: 512 + 512 + 4096, flips: 1}
		if slow {
			ex.outRate = 20e6
		}
		rem := &remote{exec: ex, workingDir: container}
		var w warnings
		s := testSettings(&w, compressNone)
		s.retries = 0
		err := upload(context.Background(), rem, local, ".", true, s)
		if err == nil || !strings.Contains(err.Error(), "differ") {
			t.Fatalf("slow=%v: upload of a corrupted stream: %v, want a checksum mismatch", slow, err)
		}
		if slow != strings.Contains(err.Error(), "the stream the container received") {
			t.Errorf("slow=%v: checked the wrong way: %v", slow, err)
		}
		if entries, _ := os.ReadDir(container); len(entries) != 0 {
			t.Errorf("slow=%v: a corrupted upload left %v", slow, entries)
		}
		ex.flips = 1
		s.retries = 1
		if err := upload(context.Background(), rem, local, ".", true, s); err != nil {
			t.Fatalf("slow=%v: upload with a retry: %v", slow, err)
		}
		if got, want := tree(t, filepath.Join(container, "src")), tree(t, local); !reflect.DeepEqual(got, want) {
			t.Errorf("slow=%v: landed a tree that differs from the source", slow)
		}
	}
}
