package transfer

// The execs started before they are needed (awaited): the commit and the
// checksum listing overlap the transfer, and never act untold.

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// scriptRuns counts the sessions that ran script.
func scriptRuns(ex *localExecutor, script string) int {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	n := 0
	for _, c := range ex.commands {
		if slices.Contains(c, script) {
			n++
		}
	}
	return n
}

// An upload takes two execs, which overlap: the first probes and
// receives, the commit's starts beside it and lands when told.
func TestUploadLandsThroughTheCommitStartedWithIt(t *testing.T) {
	local := filepath.Join(t.TempDir(), "src")
	writeTree(t, local, sampleTree)
	container := t.TempDir()
	ex := &localExecutor{bin: busyboxBin(t)}
	var w warnings
	if err := upload(context.Background(), &remote{exec: ex, workingDir: container}, local, ".", true, testSettings(&w, compressNone)); err != nil {
		t.Fatal(err)
	}
	if got, want := tree(t, filepath.Join(container, "src")), tree(t, local); !reflect.DeepEqual(got, want) {
		t.Errorf("landed %v, want %v", got, want)
	}
	if n := ex.running.Load(); n != 0 {
		t.Errorf("%d execs outlived the upload", n)
	}
	ex.mu.Lock()
	execs := len(ex.commands)
	ex.mu.Unlock()
	if execs != 2 || scriptRuns(ex, uploadScript) != 1 || scriptRuns(ex, awaitedCommitScript) != 1 {
		t.Errorf("%d execs, %d of them the upload's and %d the awaited commit's; want 2: one each", execs,
			scriptRuns(ex, uploadScript), scriptRuns(ex, awaitedCommitScript))
	}
}

// A commit exec that ended before it was needed (a dropped idle
// connection) landed nothing: an exec of its own lands the tree.
func TestUploadCommitsAgainWhenTheWaitingCommitEnded(t *testing.T) {
	local := filepath.Join(t.TempDir(), "src")
	writeTree(t, local, sampleTree)
	container := t.TempDir()
	ex := &localExecutor{bin: busyboxBin(t), endAtOnce: awaitedCommitScript}
	var w warnings
	if err := upload(context.Background(), &remote{exec: ex, workingDir: container}, local, ".", true, testSettings(&w, compressNone)); err != nil {
		t.Fatal(err)
	}
	if got, want := tree(t, filepath.Join(container, "src")), tree(t, local); !reflect.DeepEqual(got, want) {
		t.Errorf("landed %v, want %v", got, want)
	}
	if n := scriptRuns(ex, commitScript); n != 1 {
		t.Errorf("%d commits of their own, want 1", n)
	}
}

// A commit whose answer is lost while its exec reports success may or may
// not have landed: the upload says so instead of claiming it did.
func TestUploadSaysWhenTheCommitsAnswerIsLost(t *testing.T) {
	local := filepath.Join(t.TempDir(), "src")
	writeTree(t, local, sampleTree)
	container := t.TempDir()
	for _, script := range []string{awaitedCommitScript, commitScript} {
		ex := &localExecutor{bin: busyboxBin(t), loseOutput: script}
		if script == commitScript {
			ex.endAtOnce = awaitedCommitScript
		}
		var w warnings
		err := upload(context.Background(), &remote{exec: ex, workingDir: container}, local, ".", true, testSettings(&w, compressNone))
		if err == nil || !strings.Contains(err.Error(), "whether the upload landed is unknown") {
			t.Errorf("answer of %.30q lost: %v, want an error saying the outcome is unknown", script, err)
		}
	}
}

// An interrupted upload's waiting commit ends with it, having landed
// nothing.
func TestUploadInterruptedNeverLands(t *testing.T) {
	local := filepath.Join(t.TempDir(), "src")
	writeTree(t, local, map[string]string{"big": strings.Repeat("x", 9<<20)})
	container := t.TempDir()
	ex := &localExecutor{bin: busyboxBin(t), outRate: 4 << 20} // the sample takes a while
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var w warnings
	s := testSettings(&w, compressNone)
	done := make(chan error, 1)
	go func() { done <- upload(ctx, &remote{exec: ex, workingDir: container}, local, ".", true, s) }()
	for scriptRuns(ex, uploadScript) == 0 {
		select {
		case err := <-done:
			t.Fatalf("upload ended before it was interrupted: %v", err)
		default:
		}
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("an interrupted upload succeeded")
	}
	if _, err := os.Lstat(filepath.Join(container, "src")); !os.IsNotExist(err) {
		t.Errorf("the interrupted upload landed: %v", err)
	}
	if n := ex.running.Load(); n != 0 {
		t.Errorf("%d execs outlived the upload", n)
	}
}

// A download takes two execs, which overlap: the first probes and streams,
// the checksum listing's starts beside it and lists the tree it is told
// to, here a landed upload's version behind its link.
func TestDownloadListsThroughTheListingStartedWithIt(t *testing.T) {
	for _, endAtOnce := range []string{"", awaitedManifestScript} {
		local := filepath.Join(t.TempDir(), "src")
		writeTree(t, local, sampleTree)
		container := t.TempDir()
		var w warnings
		if err := upload(context.Background(), &remote{exec: &localExecutor{bin: busyboxBin(t)}, workingDir: container}, local, ".", true, testSettings(&w, compressNone)); err != nil {
			t.Fatal(err)
		}
		ex := &localExecutor{bin: busyboxBin(t), endAtOnce: endAtOnce}
		dest := t.TempDir()
		if err := download(context.Background(), &remote{exec: ex, workingDir: container}, "src", dest, testSettings(&w, compressNone)); err != nil {
			t.Fatalf("ended at once %v: %v", endAtOnce != "", err)
		}
		if got, want := tree(t, filepath.Join(dest, "src")), tree(t, local); !reflect.DeepEqual(got, want) {
			t.Errorf("ended at once %v: downloaded %v, want %v", endAtOnce != "", got, want)
		}
		if n := ex.running.Load(); n != 0 {
			t.Errorf("%d execs outlived the download", n)
		}
		wantOwn := 0
		if endAtOnce != "" {
			wantOwn = 1 // the listing's own exec, after the awaited one ended
		}
		if a, own := scriptRuns(ex, awaitedManifestScript), scriptRuns(ex, manifestScript); a != 1 || own != wantOwn {
			t.Errorf("ended at once %v: %d awaited listings and %d of their own, want 1 and %d", endAtOnce != "", a, own, wantOwn)
		}
	}
}

// Without verification no listing is started.
func TestDownloadWithoutVerifyListsNothing(t *testing.T) {
	container := t.TempDir()
	writeTree(t, filepath.Join(container, "out"), sampleTree)
	ex := &localExecutor{bin: busyboxBin(t)}
	var w warnings
	s := testSettings(&w, compressNone)
	s.verify = false
	if err := download(context.Background(), &remote{exec: ex, workingDir: container}, "out", t.TempDir(), s); err != nil {
		t.Fatal(err)
	}
	ex.mu.Lock()
	execs := len(ex.commands)
	ex.mu.Unlock()
	if execs != 1 {
		t.Errorf("%d execs, want the download's alone", execs)
	}
}
