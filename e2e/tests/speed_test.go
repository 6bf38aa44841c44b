package tests

import (
	"bytes"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Transfers at the speed of the channel, checked while they stream: a cut
// the exec reports as a success, at the one place tar cannot see it (between
// two archive entries), never lands, whatever --verify says.

const (
	annotationCutAfter      = "testcluster.kubectl-concourse.dev/exec-cut-after-bytes"
	annotationCutStdinAfter = "testcluster.kubectl-concourse.dev/exec-cut-stdin-after-bytes"
	annotationCutTimes      = "testcluster.kubectl-concourse.dev/exec-cut-times"
	annotationCutSilently   = "testcluster.kubectl-concourse.dev/exec-cut-silently"
	annotationCutCountsFrom = "testcluster.kubectl-concourse.dev/exec-cut-counts-from"

	// The cuts count from the archive's first byte: past the plugin's
	// decision, the first line of an upload's stdin, and past the probe's
	// answers, which end a download's first exec's stdout before the
	// archive.
	decisionEnd = "\n"
	probeEnd    = "decide\n"
)

// twoFiles is a tree of two 100,000-byte files: in a tar archive, a
// 512-byte header and 100,352 bytes of data each, after the directory's
// header.
func twoFiles() map[string]string {
	return map[string]string{"a": strings.Repeat("a", 100000), "b": strings.Repeat("b", 100000)}
}

func TestTransfersSilentCutUploadNeverLands(t *testing.T) {
	// The faults are placed in the scripts' stream (the fallback's); the
	// agent's cuts are its own tests'.
	forceAgent(t, "off")
	ns := testCluster.Namespace(t)
	// The plugin's archive: up/, up/a, up/b, its end entry. The container
	// receives up/ and up/a, then its stdin just ends.
	createPod(t, artifactsPod(ns, "silentup", "busybox", map[string]string{
		annotationCutStdinAfter: fmt.Sprint(512 + 512 + 100352),
		annotationCutCountsFrom: decisionEnd,
		annotationCutTimes:      "1",
		annotationCutSilently:   "true",
	}), running)
	src := filepath.Join(t.TempDir(), "up")
	treeOf(t, src, twoFiles())
	kubectl(t, "exec", "-n", ns, "silentup", "--", "sh", "-c", "mkdir -p /data/up && echo old >/data/up/old")
	before := remoteFiles(t, ns, "silentup", "/data/up")

	r := concourse(t, "upload", ns, "silentup", "--verify=false", "--retries", "0", src, "/data")
	if r.exitCode != 1 || !strings.Contains(r.stderr, "the stream was cut") {
		t.Fatalf("upload of a silently cut stream: exit %d, want 1 naming the cut:\n%s", r.exitCode, r.stderr)
	}
	if got := remoteFiles(t, ns, "silentup", "/data/up"); !reflect.DeepEqual(got, before) {
		t.Errorf("the cut upload changed the destination: %v", got)
	}
	if left := leftovers(t, ns, "silentup", "/data"); len(left) > 0 {
		t.Errorf("left in the container: %q", left)
	}

	// One more cut, with the defaults: resumed and landed whole.
	kubectl(t, "annotate", "-n", ns, "pod", "silentup", "--overwrite", annotationCutTimes+"=2")
	r = concourse(t, "upload", ns, "silentup", src, "/data")
	if r.exitCode != 0 || !strings.Contains(r.stderr, "resuming") {
		t.Fatalf("upload through one silent cut: exit %d, want 0 after a resume:\n%s", r.exitCode, r.stderr)
	}
	if got := remoteFiles(t, ns, "silentup", "/data/up"); !reflect.DeepEqual(got, twoFiles()) {
		t.Errorf("landed %d files, want a and b whole", len(got))
	}
}

func TestTransfersSilentCutDownloadNeverLands(t *testing.T) {
	// The faults are placed in the scripts' stream (the fallback's); the
	// agent's are TestAgentDownloadThroughACut's.
	forceAgent(t, "off")
	ns := testCluster.Namespace(t)
	// busybox tar's archive of ./out: out/, one file, the other, zero
	// blocks, then the plugin's end marker (22 bytes and a 12-digit nonce).
	// The plugin receives out/ and the first file as a whole archive, and
	// the exec ends as a success.
	createPod(t, artifactsPod(ns, "silentdown", "busybox", map[string]string{
		annotationCutAfter:      fmt.Sprint(512 + 512 + 100352 + 34),
		annotationCutCountsFrom: probeEnd,
		annotationCutTimes:      "1",
		annotationCutSilently:   "true",
	}), running)
	var gen bytes.Buffer
	for name, content := range twoFiles() {
		fmt.Fprintf(&gen, "head -c %d /dev/zero | tr '\\0' %s >/data/out/%s; ", len(content), name, name)
	}
	kubectl(t, "exec", "-n", ns, "silentdown", "--", "sh", "-c", "mkdir -p /data/out && "+gen.String())
	dest := t.TempDir()
	treeOf(t, filepath.Join(dest, "out"), map[string]string{"old": "old"})
	before := localTree(t, dest)

	r := concourse(t, "download", ns, "silentdown", "--verify=false", "--retries", "0", "--compress", "none", "/data/out", dest)
	if r.exitCode != 1 || !strings.Contains(r.stderr, "end marker") {
		t.Fatalf("download of a silently cut stream: exit %d, want 1 naming the missing end marker:\n%s", r.exitCode, r.stderr)
	}
	if got := localTree(t, dest); !reflect.DeepEqual(got, before) {
		t.Errorf("the cut download changed the destination: %v", got)
	}

	kubectl(t, "annotate", "-n", ns, "pod", "silentdown", "--overwrite", annotationCutTimes+"=2")
	r = concourse(t, "download", ns, "silentdown", "--compress", "none", "/data/out", dest)
	if r.exitCode != 0 || !strings.Contains(r.stderr, "resuming") {
		t.Fatalf("download through one silent cut: exit %d, want 0 after a resume:\n%s", r.exitCode, r.stderr)
	}
	src := filepath.Join(t.TempDir(), "out")
	treeOf(t, src, twoFiles())
	want := localTree(t, src)
	if got := localTree(t, filepath.Join(dest, "out")); !reflect.DeepEqual(got, want) {
		t.Errorf("landed %v, want %v", got, want)
	}
}
