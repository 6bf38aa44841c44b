package transfer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/tools/remotecommand"

	"github.com/kubectl-concourse/kubectl-concourse/agent/frame"
	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
	"github.com/kubectl-concourse/kubectl-concourse/transfer/untar"
)

// The container's tree, symlinks leading out of it included, comes back
// as it is through the agent, whatever the codec, and replaces what was
// there.
func TestAgentDownloadRoundTrips(t *testing.T) {
	needAgent(t)
	for _, compress := range []string{compressNone, compressGzip, compressAuto} {
		t.Run(compress, func(t *testing.T) {
			container := t.TempDir()
			src := filepath.Join(container, "work", "src")
			writeTree(t, src, sampleTree)
			dest := t.TempDir()
			writeTree(t, filepath.Join(dest, "src"), map[string]string{"old": "previous"})
			ex := &localExecutor{bin: busyboxBin(t)}
			rem := &remote{exec: ex, workingDir: container}
			var w, verbose warnings
			s := agentSettings(&w, compress)
			s.verbose = verbose.warnf
			if err := download(context.Background(), rem, "work/src", dest, s); err != nil {
				t.Fatalf("download: %v (%s)", err, w.b.String())
			}
			if got, want := tree(t, filepath.Join(dest, "src")), tree(t, src); !reflect.DeepEqual(got, want) {
				t.Fatalf("downloaded %v\nwant %v", got, want)
			}
			if entries, _ := os.ReadDir(dest); len(entries) != 1 {
				t.Errorf("left beside the download: %v", entries)
			}
			if !strings.HasPrefix(verbose.b.String(), "download: through the in-container agent") {
				t.Errorf("-v said %q", verbose.b.String())
			}
			if len(ex.commands) != 1 {
				t.Errorf("%d execs, want the agent's one", len(ex.commands))
			}
			if w.b.Len() != 0 {
				t.Errorf("warnings: %s", w.b.String())
			}
		})
	}
}

// A stream cut on the way, loudly or silently, is sent again by a new
// agent and lands whole; cut every time, the download fails and the old
// destination stays.
func TestAgentDownloadSurvivesCuts(t *testing.T) {
	needAgent(t)
	for _, silent := range []bool{false, true} {
		t.Run(fmt.Sprintf("silent=%v", silent), func(t *testing.T) {
			container := t.TempDir()
			src := filepath.Join(container, "out")
			writeTree(t, src, map[string]string{
				"big1": strings.Repeat("1", 200000), "big2": strings.Repeat("2", 200000), "d/big3": strings.Repeat("3", 200000),
				"d/up": "link:../../../x", "abs": "link:/etc/passwd",
			})
			dest := t.TempDir()
			writeTree(t, filepath.Join(dest, "out"), map[string]string{"old": "previous"})
			before := tree(t, filepath.Join(dest, "out"))

			ex := &localExecutor{bin: busyboxBin(t), cutAfter: 250000, cuts: 100, silent: silent}
			rem := &remote{exec: ex, workingDir: container}
			var w warnings
			s := agentSettings(&w, compressNone)
			s.retries = 1
			err := download(context.Background(), rem, "out", dest, s)
			if err == nil || !strings.Contains(err.Error(), "stream broke before its end") {
				t.Fatalf("a download through an always-cut stream = %v, want an error saying the stream broke", err)
			}
			if got := tree(t, filepath.Join(dest, "out")); !reflect.DeepEqual(got, before) {
				t.Fatalf("a failed download changed the destination: %v", got)
			}

			rem.exec = &localExecutor{bin: busyboxBin(t), cutAfter: 250000, cuts: 2, silent: silent}
			w = warnings{}
			s.retries = 3
			if err := download(context.Background(), rem, "out", dest, s); err != nil {
				t.Fatalf("download: %v (%s)", err, w.b.String())
			}
			if got, want := tree(t, filepath.Join(dest, "out")), tree(t, src); !reflect.DeepEqual(got, want) {
				t.Fatalf("downloaded %v\nwant %v", got, want)
			}
			if n := strings.Count(w.b.String(), "sending the whole tree again"); n != 2 {
				t.Errorf("%d retries said, want 2: %s", n, w.b.String())
			}
			if entries, _ := os.ReadDir(dest); len(entries) != 1 {
				t.Errorf("left beside the download: %v", entries)
			}
		})
	}
}

// A bit flipped on its way from the agent is caught, whatever the codec:
// by zstd's checksum of the whole stream (its blocks of random bytes are
// stored as they are, so only the checksum sees it), else by the files'
// SHA-256; the tree is sent again and lands exact. With --verify=false and
// no zstd, nothing checks the bytes, and the flip lands.
func TestAgentDownloadCatchesAFlippedBit(t *testing.T) {
	needAgent(t)
	rnd := func(n int, seed byte) string {
		b := make([]byte, n)
		rand.NewChaCha8([32]byte{seed}).Read(b)
		return string(b)
	}
	for _, tc := range []struct {
		compress string
		verify   bool
	}{{compressAuto, true}, {compressAuto, false}, {compressNone, true}, {compressGzip, true}, {compressNone, false}} {
		t.Run(fmt.Sprintf("%s verify=%v", tc.compress, tc.verify), func(t *testing.T) {
			container := t.TempDir()
			src := filepath.Join(container, "out")
			writeTree(t, src, map[string]string{"a": rnd(200000, 1), "d/b": rnd(300000, 2), "c": rnd(100, 3)})
			dest := t.TempDir()
			// Past the launcher's line and the agent's hello: in the files.
			ex := &localExecutor{bin: busyboxBin(t), outFlipAt: 250000, flips: 1}
			rem := &remote{exec: ex, workingDir: container}
			var w warnings
			s := agentSettings(&w, tc.compress)
			s.verify = tc.verify
			s.retries = 1
			if err := download(context.Background(), rem, "out", dest, s); err != nil {
				t.Fatalf("download: %v (%s)", err, w.b.String())
			}
			got, want := tree(t, filepath.Join(dest, "out")), tree(t, src)
			if ex.flips != 0 {
				t.Fatal("no byte was flipped")
			}
			if !tc.verify && tc.compress == compressNone {
				if reflect.DeepEqual(got, want) {
					t.Error("the flipped bit did not land: the test flipped nothing that matters")
				}
				return
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("a flipped bit landed: %v", got)
			}
			if n := strings.Count(w.b.String(), "sending the whole tree again"); n != 1 {
				t.Errorf("%d retries said, want 1: %s", n, w.b.String())
			}
		})
	}
}

// What the container does not have is the container's answer, not a
// stream to retry; an output goes through the agent too, its root's mode
// by the local umask.
func TestAgentDownloadAnswers(t *testing.T) {
	needAgent(t)
	container := t.TempDir()
	writeTree(t, filepath.Join(container, "build", "out"), map[string]string{"f": "x", "l": "link:../../.."})
	os.Chmod(filepath.Join(container, "build", "out"), 0o700) // the container's mode: the root takes the umask's instead
	ex := &localExecutor{bin: busyboxBin(t)}
	ep := Endpoint{Executor: ex, Container: podexec.Container{Name: "outputs"}, WorkingDir: filepath.Join(container, "build")}
	var w warnings
	agent := DefaultSettings(w.warnf)
	agent.Agent = agentOnly // a tree this small would go through the scripts
	err := DownloadAs(context.Background(), ep, agent, "missing", filepath.Join(t.TempDir(), "m"))
	if err == nil || !strings.Contains(err.Error(), "missing: no such file or directory in the container") || len(ex.commands) != 1 {
		t.Errorf("DownloadAs of a missing path = %v after %d execs, want the agent's answer at once", err, len(ex.commands))
	}
	dest := filepath.Join(t.TempDir(), "out")
	if err := DownloadAs(context.Background(), ep, agent, "out", dest); err != nil {
		t.Fatalf("DownloadAs: %v", err)
	}
	if target, err := os.Readlink(filepath.Join(dest, "l")); err != nil || target != "../../.." {
		t.Errorf("the output's symlink = %q, %v", target, err)
	}
	local := filepath.Join(t.TempDir(), "mkdir")
	os.Mkdir(local, 0o777)
	want, _ := os.Stat(local)
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != want.Mode().Perm() {
		t.Errorf("the output's root: %v %v, want %v, a local mkdir's (the umask's)", fi.Mode(), err, want.Mode().Perm())
	}

	ex.commands = nil
	scripts := DefaultSettings(w.warnf)
	scripts.Agent = agentOff
	if err := DownloadAs(context.Background(), ep, scripts, "out", filepath.Join(t.TempDir(), "out")); err != nil {
		t.Fatalf("DownloadAs with the scripts: %v", err)
	}
	if launchedAgent(ex) {
		t.Error("DownloadAs with Settings.Agent off launched the agent")
	}
}

// By default a download's probe decides: a small tree goes through the
// scripts (one exec, no binary to send), a tree of as many entries as the
// agent's start pays for through the agent, each said with -v; both land
// the container's tree.
func TestDownloadTakesTheAgentWhereItPays(t *testing.T) {
	needAgent(t)
	container := t.TempDir()
	small := map[string]string{"f": "x", "l": "link:../../.."}
	large := map[string]string{}
	for i := range agentPaysFromEntries {
		large[fmt.Sprintf("d%02d/f%04d", i%40, i)] = strconv.Itoa(i)
	}
	writeTree(t, filepath.Join(container, "small"), small)
	writeTree(t, filepath.Join(container, "large"), large)
	for _, tt := range []struct {
		name, say string
		agent     bool
	}{
		{"small", "download: through the container's shell scripts: 3 entries, ", false},
		{"large", "download: through the in-container agent", true},
	} {
		ex := &localExecutor{bin: busyboxBin(t)}
		ep := Endpoint{Executor: ex, Container: podexec.Container{Name: "main"}, WorkingDir: container}
		var w, verbose warnings
		s := DefaultSettings(w.warnf)
		in := s.internal()
		in.verbose = verbose.warnf
		dest := filepath.Join(t.TempDir(), tt.name)
		if err := downloadTo(t.Context(), &remote{exec: ex, container: ep.Container, workingDir: container}, filepath.Join(container, tt.name), dest, in); err != nil {
			t.Fatalf("%s: download: %v (%s)", tt.name, err, w.b.String())
		}
		if got, want := tree(t, dest), tree(t, filepath.Join(container, tt.name)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: downloaded %d entries unlike the container's %d", tt.name, len(got), len(want))
		}
		if launched := launchedAgent(ex); launched != tt.agent || !strings.HasPrefix(verbose.b.String(), tt.say) {
			t.Errorf("%s: agent launched %v, -v said %q; want %v and %q", tt.name, launched, verbose.b.String(), tt.agent, tt.say)
		}
	}
}

// launchLineForTests is a word only the agent's launcher says.
const launchLineForTests = "kubectl-concourse-launch"

// launchedAgent says whether ex ran the agent's launcher.
func launchedAgent(ex *localExecutor) bool {
	for _, c := range ex.commands {
		if script, _, _ := podexec.ScriptOf(c); strings.Contains(script, launchLineForTests) {
			return true
		}
	}
	return false
}

// A hostile agent (the container is the user's, and so is whatever
// answers there) cannot make the download write outside its destination
// or through a symlink: the extractor refuses, and nothing lands.
func TestAgentDownloadFromHostileAgent(t *testing.T) {
	evil := tarOf(t, tar.Header{Typeflag: tar.TypeDir, Name: "out/"}, tar.Header{Typeflag: tar.TypeReg, Name: "out/ok"},
		tar.Header{Typeflag: tar.TypeSymlink, Name: "out/l", Linkname: "../../../.."}, tar.Header{Typeflag: tar.TypeReg, Name: "out/l/escaped"},
		tar.Header{Typeflag: tar.TypeReg, Name: "/abs"}, tar.Header{Typeflag: tar.TypeReg, Name: "out/../../rel"})
	base := t.TempDir()
	dest := filepath.Join(base, "dest")
	rem := &remote{exec: &fakeAgent{tar: evil}}
	var w warnings
	s := agentSettings(&w, compressNone)
	err := downloadTo(context.Background(), rem, "/out", dest, s)
	if err == nil || !strings.Contains(err.Error(), "unsafe archive entries") {
		t.Fatalf("download from a hostile agent = %v", err)
	}
	if got := tree(t, base); !reflect.DeepEqual(got, map[string]string{".": "dir 755"}) {
		t.Errorf("hostile download left %v", got)
	}
}

// An agent whose manifest is not what it sent fails the check, every time;
// without file sums (zstd's checksum verified the bytes), a file's sum is
// not compared, but what the tree holds still is.
func TestAgentDownloadChecksTheManifest(t *testing.T) {
	good := tarOf(t, tar.Header{Typeflag: tar.TypeDir, Name: "out/"}, tar.Header{Typeflag: tar.TypeReg, Name: "out/a"},
		tar.Header{Typeflag: tar.TypeSymlink, Name: "out/l", Linkname: "/etc"})
	sumA := sha256.Sum256([]byte("out/a"))
	entries := []protocol.Entry{{Path: ".", Kind: protocol.KindDir, Mode: 0o755},
		{Path: "a", Kind: protocol.KindFile, Mode: 0o755, Size: 5, SHA256: hex.EncodeToString(sumA[:])},
		{Path: "l", Kind: protocol.KindSymlink, Mode: 0o777, Link: "/etc"}}
	other := sha256.Sum256([]byte("else"))
	tests := []struct {
		name   string
		change func([]protocol.Entry) []protocol.Entry
		ok     bool
		sums   bool
	}{
		{"same", func(e []protocol.Entry) []protocol.Entry { return e }, true, true},
		{"another sum", func(e []protocol.Entry) []protocol.Entry { e[1].SHA256 = hex.EncodeToString(other[:]); return e }, false, true},
		{"another link", func(e []protocol.Entry) []protocol.Entry { e[2].Link = "/"; return e }, false, true},
		{"a file more", func(e []protocol.Entry) []protocol.Entry {
			return append(e, protocol.Entry{Path: "b", Kind: protocol.KindFile, SHA256: e[1].SHA256})
		}, false, true},
		// What the manifest lacks is what the source no longer has (an
		// earlier attempt brought it): removed, not a difference.
		{"a link less", func(e []protocol.Entry) []protocol.Entry { return e[:2] }, true, true},
		{"no sums, same", func(e []protocol.Entry) []protocol.Entry { e[1].SHA256 = ""; return e }, true, false},
		{"no sums, another link", func(e []protocol.Entry) []protocol.Entry { e[2].Link = "/"; return e }, false, false},
		{"no sums, a file more", func(e []protocol.Entry) []protocol.Entry {
			return append(e, protocol.Entry{Path: "b", Kind: protocol.KindFile})
		}, false, false},
		{"no sums, the file a directory", func(e []protocol.Entry) []protocol.Entry { e[1].Kind = protocol.KindDir; return e }, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, err := os.OpenRoot(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			ex := untar.New(root, "data", "out", untar.Options{NewHash: sha256.New})
			if err := ex.Extract(bytes.NewReader(good)); err != nil {
				t.Fatal(err)
			}
			err = checkAgainst(ex, tt.change(append([]protocol.Entry(nil), entries...)), tt.sums)
			if tt.ok != (err == nil) {
				t.Errorf("checkAgainst = %v, want ok %v", err, tt.ok)
			}
			if got, want := len(ex.Links()), countKind(tt.change(append([]protocol.Entry(nil), entries...)), protocol.KindSymlink); tt.ok && got != want {
				t.Errorf("%d symlinks held, want the manifest's %d", got, want)
			}
		})
	}
}

func countKind(entries []protocol.Entry, kind string) int {
	n := 0
	for _, e := range entries {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func TestDownloadCodec(t *testing.T) {
	for _, tt := range []struct {
		compress   string
		binaryRate float64
		want       string
	}{
		{compressAuto, 0, protocol.CodecZstd},
		{compressAuto, 10e6, protocol.CodecZstd},
		{compressAuto, 24e6, protocol.CodecS2},
		{compressNone, 24e6, protocol.CodecNone},
		{compressGzip, 24e6, protocol.CodecGzip},
	} {
		if got := downloadCodec(tt.compress, tt.binaryRate); got != tt.want {
			t.Errorf("downloadCodec(%s, %v) = %q, want %q", tt.compress, tt.binaryRate, got, tt.want)
		}
	}
	for codec, want := range map[string]bool{protocol.CodecZstd: false, protocol.CodecS2: false, protocol.CodecGzip: true, protocol.CodecNone: true} {
		if got := fileSums(codec, true); got != want {
			t.Errorf("fileSums(%q, verify) = %v, want %v", codec, got, want)
		}
	}
}

// fakeAgent answers the launcher as an agent would, and sends tar, with a
// manifest of it, for any send.
type fakeAgent struct{ tar []byte }

func (f *fakeAgent) Exec(_ context.Context, _ podexec.Request, s podexec.Streams, _ remotecommand.TerminalSizeQueue) error {
	in := bufio.NewReader(s.In)
	header, err := in.ReadString('\n') // the binary, guessed for x86_64
	if err != nil {
		return err
	}
	var n int64
	if _, err := fmt.Sscanf(header, "%d guess", &n); err != nil {
		return err
	}
	fmt.Fprintf(s.Out, "%s x86_64 - took\n", launchLineForTests)
	self := sha256.New() // as the agent hashes itself
	if _, err := io.CopyN(self, in, n); err != nil {
		return err
	}
	out := bufio.NewWriter(s.Out)
	defer out.Flush()
	if err := frame.WriteHandshake(out); err != nil {
		return err
	}
	fw := frame.NewWriter(out)
	hello, _ := json.Marshal(protocol.Hello{Arch: "amd64", Self: hex.EncodeToString(self.Sum(nil))})
	fw.Write(frame.Control, hello)
	out.Flush()
	if _, _, err := frame.NewReader(in).Next(); err != nil {
		return err
	}
	dw := frame.NewDataWriter(fw)
	dw.Write(f.tar)
	dw.Close()
	entries := []protocol.Entry{{Path: ".", Kind: protocol.KindDir, Mode: 0o755}}
	mw := frame.NewDataWriter(fw)
	protocol.WriteManifest(mw, entries)
	mw.Close()
	reply, _ := json.Marshal(protocol.Reply{Digest: protocol.ManifestDigest(entries)})
	fw.Write(frame.Control, reply)
	out.Flush()
	io.Copy(io.Discard, in) // until the plugin ends the session
	return nil
}

func TestChangedUnderAgent(t *testing.T) {
	tests := []struct {
		msg  string
		want bool
	}{
		{"open d/f: no such file or directory", true},
		{"d/f shrank while it was sent", true},
		{"open d/f: permission denied", false},
		{`send: "x" is not an absolute path`, false},
	}
	for _, tt := range tests {
		if got := changedUnderAgent(tt.msg); got != tt.want {
			t.Errorf("changedUnderAgent(%q) = %v, want %v", tt.msg, got, tt.want)
		}
	}
}
