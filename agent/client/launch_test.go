package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/kubectl-concourse/kubectl-concourse/agent/embedded"
	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// localExecutor runs the command on this machine, as the container would,
// over os/exec pipes.
type localExecutor struct {
	env []string
}

func (l localExecutor) Exec(ctx context.Context, r podexec.Request, s podexec.Streams, _ remotecommand.TerminalSizeQueue) error {
	cmd := exec.CommandContext(ctx, r.Command[0], r.Command[1:]...)
	cmd.Env = append(os.Environ(), l.env...)
	cmd.Stdout, cmd.Stderr = s.Out, s.ErrOut
	cmd.WaitDelay = time.Second
	// As client-go does, stdin is copied by a goroutine nobody waits for:
	// the exec ends when the process does, not when the plugin's stdin
	// does.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		io.Copy(stdin, s.In)
		stdin.Close()
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return utilexec.CodeExitError{Err: err, Code: ee.ExitCode()}
	}
	return err
}

// shells are the sh the launcher is tried with: this machine's; this
// machine's with a dd that has no iflag=fullblock (the launcher falls back
// on head); and busybox's, with busybox's dd and head, as in a busybox
// image, when busybox is installed.
func shells(t *testing.T) map[string]string {
	out := map[string]string{"sh": "", "sh without dd's fullblock": withPath(t, map[string]string{"dd": "#!/bin/sh\nexit 1\n"}, "sh")}
	if bb, err := exec.LookPath("busybox"); err == nil {
		applets := t.TempDir()
		for _, name := range []string{"sh", "dd", "head"} {
			// Named so, busybox runs that applet.
			if err := os.Symlink(bb, filepath.Join(applets, name)); err != nil {
				t.Fatal(err)
			}
		}
		out["busybox sh"] = withPath(t, nil, filepath.Join(applets, "sh"))
	}
	return out
}

// withPath is a sh that runs shell with a PATH whose first directory
// holds programs (name to script) and, for a busybox shell, its applets.
func withPath(t *testing.T, programs map[string]string, shell string) string {
	dir := t.TempDir()
	for name, script := range programs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	first := dir
	if filepath.IsAbs(shell) {
		first += ":" + filepath.Dir(shell)
	}
	wrapper := filepath.Join(t.TempDir(), "sh")
	script := fmt.Sprintf("#!/bin/sh\nPATH=%s:$PATH\nexport PATH\nexec %s \"$@\"\n", first, shell)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper
}

func needAgent(t *testing.T) {
	if embedded.Arch(machine(t)) == "" {
		t.Skipf("no agent for this machine")
	}
}

func machine(t *testing.T) string {
	out, err := exec.Command("uname", "-m").Output()
	if err != nil {
		t.Skip(err)
	}
	return strings.TrimSpace(string(out))
}

func TestLaunchRunsTheAgentAndLeavesNothing(t *testing.T) {
	needAgent(t)
	for name, shell := range shells(t) {
		// The binary sent on a guess, before the launcher says what the
		// machine is; and a wrong guess, read and dropped, then the right
		// binary sent.
		for _, guess := range []string{embedded.Arch(machine(t)), otherArch(t)} {
			t.Run(name+" guessing "+guess, func(t *testing.T) {
				setGuess(t, guess)
				dir := t.TempDir()
				var sent atomic.Int64
				c := podexec.Container{Namespace: "ns", Pod: "p", Name: "c", Shell: shell}
				s, err := Launch(t.Context(), countingExecutor{sent: &sent}, c, Options{Dir: dir, Candidates: []string{}})
				if err != nil {
					t.Fatalf("Launch: %v", err)
				}
				if s.Hello.UID != os.Getuid() {
					t.Errorf("hello = %+v", s.Hello)
				}
				if s.BinaryRate <= 0 {
					t.Errorf("BinaryRate = %v after a binary crossed", s.BinaryRate)
				}
				if got, _ := os.ReadDir(dir); len(got) != 0 {
					t.Errorf("the agent's binary stayed: %v", got)
				}
				binaries := int64(len(mustBinary(t, embedded.Arch(machine(t)))))
				if guess != embedded.Arch(machine(t)) {
					binaries += int64(len(mustBinary(t, guess)))
				}
				if got := sent.Load(); got < binaries || got > binaries+1024 {
					t.Errorf("sent %d bytes before the session, want the binaries' %d and headers", got, binaries)
				}
				r, err := s.Receive(t.Context(), protocol.Request{Dest: protocol.Name(filepath.Join(dir, "x"))}, bytes.NewReader(oneFileTar(t)))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.Commit(t.Context(), protocol.Name(filepath.Join(dir, "x")), r.Staging); err != nil {
					t.Fatal(err)
				}
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				if got, _ := os.ReadDir(dir); len(got) != 1 || got[0].Name() != "x" {
					t.Errorf("beside the destination: %v", got)
				}
			})
		}
	}
}

// setGuess makes launches in t guess goarch.
func setGuess(t testing.TB, goarch string) {
	old := guessArch
	guessArch = goarch
	t.Cleanup(func() { guessArch = old })
}

// otherArch is an architecture with an agent that is not this machine's.
func otherArch(t testing.TB) string {
	if embedded.Arch(runtime.GOARCH) == "amd64" {
		return "arm64"
	}
	return "amd64"
}

func mustBinary(t testing.TB, goarch string) []byte {
	b, err := embedded.Binary(goarch)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func oneFileTar(t *testing.T) []byte {
	var b bytes.Buffer
	tw := newTarWriter(&b)
	tw.file("x", "hello")
	tw.close(t)
	return b.Bytes()
}

func TestLaunchUnavailable(t *testing.T) {
	tests := []struct {
		name  string
		ex    podexec.Executor
		shell string
		want  string
	}{
		{"no sh", localExecutor{}, "/nonexistent/sh", "no sh"},
		{"another machine", localExecutor{env: []string{"PATH=" + fakeUname(t, "riscv64")}}, "", `no agent for machine "riscv64"`},
		{"no writable directory", localExecutor{}, "", "noexec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needAgent(t)
			o := Options{Candidates: []string{"/nonexistent"}}
			t.Setenv("HOME", "/nonexistent")
			_, err := Launch(t.Context(), tt.ex, podexec.Container{Shell: tt.shell}, o)
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Launch = %v, want ErrUnavailable saying %q", err, tt.want)
			}
		})
	}
}

// fakeUname is a PATH whose uname says machine.
func fakeUname(t *testing.T, machine string) string {
	d := t.TempDir()
	os.WriteFile(filepath.Join(d, "uname"), []byte("#!/bin/sh\necho "+machine+"\n"), 0o755)
	return d + ":" + os.Getenv("PATH")
}

func TestArchTable(t *testing.T) {
	tests := []struct{ machine, want string }{
		{"x86_64", "amd64"}, {"amd64", "amd64"}, {"aarch64", "arm64"}, {"arm64", "arm64"}, {"armv8l", "arm64"},
		{"armv7l", ""}, {"i686", ""}, {"riscv64", ""}, {"s390x", ""}, {"", ""},
	}
	for _, tt := range tests {
		if got := embedded.Arch(tt.machine); got != tt.want {
			t.Errorf("Arch(%q) = %q, want %q", tt.machine, got, tt.want)
		}
	}
}

// BenchmarkLaunchAndUpload1MB is the agent's own cost on a small transfer:
// the launcher through a local sh, the binary over a pipe, then a 1 MB file
// received, committed, and the agent's exit.
func BenchmarkLaunchAndUpload1MB(b *testing.B) {
	if embedded.Arch(runtime.GOARCH) == "" {
		b.Skip("no agent for this machine")
	}
	var tarball bytes.Buffer
	tw := newTarWriter(&tarball)
	tw.file("x", strings.Repeat("0123456789abcdef", 1<<16))
	tw.tw.Close()
	dir := b.TempDir()
	for _, stage := range []string{"launch", "launch+1MB", "launch+1MB after a wrong guess"} {
		b.Run(stage, func(b *testing.B) {
			if strings.HasSuffix(stage, "wrong guess") {
				setGuess(b, otherArch(b))
			}
			o := Options{Dir: dir}
			for i := 0; b.Loop(); i++ {
				s, err := Launch(b.Context(), localExecutor{}, podexec.Container{}, o)
				if err != nil {
					b.Fatal(err)
				}
				if stage != "launch" {
					dest := protocol.Name(filepath.Join(dir, "x"))
					r, err := s.Receive(b.Context(), protocol.Request{Dest: dest}, bytes.NewReader(tarball.Bytes()))
					if err != nil {
						b.Fatal(err)
					}
					if _, err := s.Commit(b.Context(), dest, r.Staging); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// countingExecutor counts what the plugin sends into the exec.
type countingExecutor struct {
	localExecutor
	sent *atomic.Int64
}

func (c countingExecutor) Exec(ctx context.Context, r podexec.Request, s podexec.Streams, q remotecommand.TerminalSizeQueue) error {
	s.In = io.TeeReader(s.In, writerFunc(func(p []byte) (int, error) { c.sent.Add(int64(len(p))); return len(p), nil }))
	return c.localExecutor.Exec(ctx, r, s, q)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// slowExecutor lets the exec's stdin through at most rate bytes a second.
type slowExecutor struct {
	localExecutor
	rate int
}

func (x slowExecutor) Exec(ctx context.Context, r podexec.Request, s podexec.Streams, q remotecommand.TerminalSizeQueue) error {
	in := s.In
	s.In = readerFunc(func(p []byte) (int, error) {
		n, err := in.Read(p[:min(len(p), 32<<10)])
		time.Sleep(time.Duration(n) * time.Second / time.Duration(x.rate))
		return n, err
	})
	return x.localExecutor.Exec(ctx, r, s, q)
}

// BinaryRate measures the link the binary crossed: through stdin let
// through at 20 MB/s, never above about that, however fast the machine
// (the sleeps bound it; what the launcher read before its first line, at
// most a pipe's buffer, adds a few percent). Its 32 KiB reads also make
// every one of dd's reads short: without iflag=fullblock, take would cut
// the binary.
func TestLaunchMeasuresTheLink(t *testing.T) {
	needAgent(t)
	const rate = 20e6
	c := podexec.Container{Namespace: "ns", Pod: "p", Name: "c", Shell: "sh"}
	s, err := Launch(t.Context(), slowExecutor{rate: rate}, c, Options{Dir: t.TempDir(), Candidates: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.BinaryRate <= 0 || s.BinaryRate > 1.5*rate {
		t.Errorf("BinaryRate = %.1f MB/s through a %.0f MB/s link", s.BinaryRate/1e6, rate/1e6)
	}
}

// A launch into a keep directory leaves a copy of the agent there, and
// the next one runs that copy without sending the binary again; a copy
// whose content is not this plugin's agent is removed and never run.
func TestLaunchKeepsACopyForTheNextSession(t *testing.T) {
	needAgent(t)
	digest, err := embedded.Digest(embedded.Arch(machine(t)))
	if err != nil {
		t.Fatal(err)
	}
	for name, shell := range shells(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			kept := filepath.Join(dir, keptPrefix+digest)
			c := podexec.Container{Namespace: "ns", Pod: "p", Name: "c", Shell: shell}
			launch := func(step string) int64 {
				t.Helper()
				var sent atomic.Int64
				s, err := Launch(t.Context(), countingExecutor{sent: &sent}, c, Options{Dir: dir, Keep: dir, Candidates: []string{}})
				if err != nil {
					t.Fatalf("%s: Launch: %v", step, err)
				}
				if _, err := s.Receive(t.Context(), protocol.Request{Dest: protocol.Name(filepath.Join(dir, "x"))}, bytes.NewReader(oneFileTar(t))); err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				if err := s.Close(); err != nil {
					t.Errorf("%s: Close: %v", step, err)
				}
				if crossed := sent.Load() >= 1<<20; crossed != (s.BinaryRate > 0) {
					t.Errorf("%s: BinaryRate = %v; the binary crossed: %v", step, s.BinaryRate, crossed)
				}
				ents, _ := os.ReadDir(dir)
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				if len(names) != 1 || names[0] != keptPrefix+digest {
					t.Errorf("%s: the keep directory holds %v, want only the kept copy", step, names)
				}
				return sent.Load()
			}
			if sent := launch("first"); sent < 1<<20 {
				t.Errorf("first launch sent %d bytes: not the binary", sent)
			}
			if sent := launch("second"); sent > 64<<10 {
				t.Errorf("second launch sent %d bytes: the binary again", sent)
			}
			// Another program under the kept name: removed, the binary sent.
			if err := os.WriteFile(kept, []byte("#!/bin/sh\necho tampered >&2\nexit 7\n"), 0o700); err != nil {
				t.Fatal(err)
			}
			if sent := launch("tampered"); sent < 1<<20 {
				t.Errorf("a launch after tampering sent %d bytes: the tampered copy ran", sent)
			}
		})
	}
}

// flippingExecutor flips one bit of the byte at offset at of the exec's
// stdin: a binary corrupted on the way, whole and of the right size.
type flippingExecutor struct {
	localExecutor
	at int64
}

func (f flippingExecutor) Exec(ctx context.Context, r podexec.Request, s podexec.Streams, q remotecommand.TerminalSizeQueue) error {
	var read int64
	in := s.In
	s.In = readerFunc(func(p []byte) (int, error) {
		n, err := in.Read(p)
		if f.at >= read && f.at < read+int64(n) {
			p[f.at-read] ^= 0x20
		}
		read += int64(n)
		return n, err
	})
	return f.localExecutor.Exec(ctx, r, s, q)
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// An agent whose binary arrived with a bit flipped where it still runs
// (its usage text) is caught by the SHA-256 it reports of itself, and
// ended: the launch fails, for a retry to send it again.
func TestLaunchRefusesACorruptedBinary(t *testing.T) {
	needAgent(t)
	goarch := embedded.Arch(machine(t))
	setGuess(t, goarch)
	bin := mustBinary(t, goarch)
	usage := bytes.Index(bin, []byte("usage: kubectl-concourse-agent"))
	if usage < 0 {
		t.Fatal("the agent's usage text is not in its binary")
	}
	header := int64(len(fmt.Sprintf("%d guess %s\n", len(bin), strings.Join(embedded.Machines(goarch), " "))))
	dir := t.TempDir()
	ex := flippingExecutor{at: header + int64(usage) + len64("usage: ")}
	_, err := Launch(t.Context(), ex, podexec.Container{Namespace: "ns", Pod: "p", Name: "c"}, Options{Dir: dir, Candidates: []string{}})
	if err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "arrived corrupted") {
		t.Fatalf("Launch of a corrupted binary: %v; want it refused as corrupted", err)
	}
	if got, _ := os.ReadDir(dir); len(got) != 0 {
		t.Errorf("the corrupted agent left %v", got)
	}
}

func len64(s string) int64 { return int64(len(s)) }

// cuttingExecutor ends the exec's stdin after its first n bytes, as a
// plugin that went away mid-binary.
type cuttingExecutor struct {
	localExecutor
	n int64
}

func (c cuttingExecutor) Exec(ctx context.Context, r podexec.Request, s podexec.Streams, q remotecommand.TerminalSizeQueue) error {
	s.In = io.LimitReader(s.In, c.n)
	return c.localExecutor.Exec(ctx, r, s, q)
}

// A binary cut on the way is never run (sh would run a cut ELF file as a
// script): the launcher says it could not write the agent, and nothing of
// it stays. Cut inside the ELF header, and far into the program.
func TestLaunchNeverRunsACutBinary(t *testing.T) {
	needAgent(t)
	goarch := embedded.Arch(machine(t))
	setGuess(t, goarch)
	header := int64(len(fmt.Sprintf("%d guess %s\n", len(mustBinary(t, goarch)), strings.Join(embedded.Machines(goarch), " "))))
	for name, shell := range shells(t) {
		for _, cut := range []int64{10, 1 << 20} {
			t.Run(fmt.Sprintf("%s cut at %d", name, cut), func(t *testing.T) {
				dir := t.TempDir()
				c := podexec.Container{Namespace: "ns", Pod: "p", Name: "c", Shell: shell}
				_, err := Launch(t.Context(), cuttingExecutor{n: header + cut}, c, Options{Dir: dir, Candidates: []string{}})
				if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "cannot write the agent to "+dir) {
					t.Errorf("Launch = %v, want ErrUnavailable saying it cannot write the agent", err)
				}
				if got, _ := os.ReadDir(dir); len(got) != 0 {
					t.Errorf("the cut binary stayed: %v", got)
				}
			})
		}
	}
}
