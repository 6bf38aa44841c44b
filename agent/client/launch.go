package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/kubectl-concourse/kubectl-concourse/agent/embedded"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// ErrUnavailable is a container the agent cannot run in: no sh, a machine
// it is not built for, no directory that is both writable and executable.
// The error says which; the caller falls back to its scripts.
var ErrUnavailable = errors.New("the agent cannot run in this container")

// Options tune Launch.
type Options struct {
	// Dir is tried first for the agent's binary: the destination's parent
	// is on the file system the transfer writes to, so it is writable.
	Dir string
	// Candidates are tried after Dir; nil means DefaultCandidates. $HOME
	// is tried last.
	Candidates []string
	// Keep, when set, is a directory of the plugin's own (a warm cache's
	// claim) where a copy of the agent stays between sessions: when the
	// copy there is this plugin's agent (its SHA-256, checked in the
	// container), it runs without the binary crossing the link again.
	Keep string
}

// DefaultCandidates are where the agent's binary is written when Dir is
// not writable or not executable.
var DefaultCandidates = []string{"/tmp", "/dev/shm", "/var/tmp"}

// launchLine begins the launcher's first line: the machine, the kept
// copy's SHA-256 and what it did with a binary sent on a guess.
const launchLine = "kubectl-concourse-launch "

// unavailableLine begins the launcher's answer when the agent cannot run.
const unavailableLine = "kubectl-concourse-unavailable: "

// keptPrefix begins the name of the agent's copy in a keep directory; its
// SHA-256 ends it.
const keptPrefix = ".kubectl-concourse-agent.kept-"

// guessArch is the architecture whose agent a launch sends before the
// container has said what it runs on: most clusters' nodes are amd64, and
// the guess saves a round trip through the API server. A wrong guess costs
// the binary's crossing, which the launcher reads and drops.
var guessArch = "amd64"

// launcher runs in the container with the keep directory (or "") and the
// candidate directories as its arguments. It reads the plugin's first
// header: an agent sent on a guess (its size, and the machines it runs on
// as uname -m names them) or a question. It answers with its machine, the
// SHA-256 of the agent kept in the keep directory ("-": none whose content
// is its name), and whether it took the guessed binary (to run it) or
// skipped it (read and dropped). Unless it took it, it then reads the
// plugin's answer (the binary's size, form and SHA-256; 0 kept to run the
// kept one; or 0). Exactly that many bytes go into a new file in the first
// candidate that is a writable directory, and it runs there: when the
// directory does not let it run (noexec: the shell answers 126 without
// running it), the file moves on to the next. take reads exactly the bytes
// it is told to (head, its fallback, may buffer beyond them): the plugin
// sends nothing more until the agent has answered, and nothing after a
// guessed binary until the launcher has said what it did with it. The agent removes its file
// once it runs. It is not exec'd: its exit status tells noexec from a run
// (the agent never exits 126), which saves a trial run per launch. An
// agent written into the keep directory is hard linked there under its
// SHA-256 before it runs (and unlinked again if the directory turns out
// noexec), for the next session.
const launcher = `umask 077
K=$1; shift
# take N copies exactly N bytes of stdin to stdout: with dd, 64 KiB a read,
# where its iflag=fullblock lets it count a pipe's short reads right; else
# with head, which busybox runs a byte at a time (getc): 70 ms of CPU for
# the agent's 3.6 MB, where dd takes under 5.
take() {
	[ -n "$taker" ] || { taker=head; dd if=/dev/null count=0 iflag=fullblock 2>/dev/null && taker=dd; }
	[ "$taker" = dd ] || { head -c "$1"; return; }
	set -- $(( $1 / 65536 )) $(( $1 % 65536 ))
	{ [ "$1" -eq 0 ] || dd bs=65536 count="$1" iflag=fullblock; } 2>/dev/null &&
		{ [ "$2" -eq 0 ] || dd bs="$2" count=1 iflag=fullblock; } 2>/dev/null
}
kept=-
if [ -n "$K" ] && command -v sha256sum >/dev/null 2>&1; then
	for k in "$K"/` + keptPrefix + `*; do
		[ -f "$k" ] && [ ! -L "$k" ] || continue
		s=$(sha256sum <"$k")
		s=${s%% *}
		if [ "$k" = "$K/` + keptPrefix + `$s" ]; then kept=$s; else rm -f -- "$k"; fi
	done
fi
m=$(uname -m)
IFS=' ' read -r n form arg || exit 0
took=-
if [ "$form" = guess ]; then
	case " $arg " in
	*" $m "*) took=took form=raw arg= ;;
	*) take "$n" >/dev/null; took=skipped ;;
	esac
fi
echo "` + launchLine + `$m $kept $took"
if [ "$took" != took ]; then IFS=' ' read -r n form arg || exit 0; fi
sha=$arg
if [ "$form" = kept ]; then
	"$K/` + keptPrefix + `$kept" serve ""
	c=$?
	[ "$c" -eq 126 ] || exit "$c"
	rm -f -- "$K/` + keptPrefix + `$kept"
	exit 126
fi
[ "$n" -gt 0 ] 2>/dev/null || exit 0
f=
for d in "$@" "$HOME"; do
	[ -n "$d" ] && [ -d "$d" ] && [ -w "$d" ] || continue
	t=$d/.kubectl-concourse-agent-$$
	if [ -z "$f" ]; then
		# -w believes the modes, not a read-only mount: try, before any of
		# stdin is read, so that the next candidate still gets the binary.
		( : >"$t" ) 2>/dev/null || continue
		# A short read (the plugin went away) must not run: a cut ELF file
		# is run by sh as a script. Neither dd nor head fails on one, so
		# the file's size is checked, by ls: busybox wc reads the whole file.
		s=
		take "$n" >"$t" && s=$(ls -ln -- "$t") && read -r _ _ _ _ s _ <<EOF
$s
EOF
		[ "$s" = "$n" ] || { rm -f -- "$t"; echo "` + unavailableLine + `cannot write the agent to $d"; exit 0; }
	else
		cp -- "$f" "$t" 2>/dev/null || { rm -f -- "$t"; continue; }
		rm -f -- "$f"
	fi
	f=$t
	chmod 700 "$f" || continue
	keep=
	if [ "$d" = "$K" ] && [ -n "$sha" ] && command -v sha256sum >/dev/null 2>&1; then
		keep=$K/` + keptPrefix + `$sha
		ln -f "$f" "$keep" 2>/dev/null || keep=
	fi
	"$f" serve "$f"
	c=$?
	[ "$c" -eq 126 ] || exit "$c"
	[ -z "$keep" ] || rm -f -- "$keep"
done
[ -z "$f" ] || rm -f -- "$f"
echo "` + unavailableLine + `no writable directory lets a program run (noexec) among: $* $HOME"
`

// Launch starts the agent in c over one exec: the launcher script, then
// the embedded binary for the container's machine on its stdin. ctx bounds
// the session's whole life. A container the agent cannot run in is an
// ErrUnavailable.
func Launch(ctx context.Context, ex podexec.Executor, c podexec.Container, o Options) (*Session, error) {
	candidates := o.Candidates
	if candidates == nil {
		candidates = DefaultCandidates
	}
	if o.Dir != "" {
		candidates = append([]string{o.Dir}, candidates...)
	}
	first, err := o.firstHeader()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	guessed := binarySize(first) // before WriteTo consumes first
	execCtx, cancel := context.WithCancel(ctx)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := podexec.RunBulkScript(execCtx, ex, c, launcher, append([]string{o.Keep}, candidates...), inR, outW)
		outW.Close()
		inR.Close()
		done <- err
	}()
	var once sync.Once
	var execErr error
	wait := func() error {
		once.Do(func() { execErr = <-done; cancel() })
		return execErr
	}
	fail := func(err error) (*Session, error) {
		inW.Close()
		outR.Close()
		cancel()
		wait()
		return nil, err
	}

	// Written while stdout is read, in two parts: the first header (and a
	// guessed binary) at once, then the answer to the launcher's first
	// line when it needs one. A launcher that gives up before it has read
	// the binary says why on stdout, and the exec ends only once that is
	// read.
	answers := make(chan net.Buffers, 1)
	sent := make(chan error, 1)
	go func() {
		_, err := first.WriteTo(inW)
		if rest := <-answers; err == nil {
			_, err = rest.WriteTo(inW)
		}
		sent <- err
	}()
	var answerOnce sync.Once
	answer := func(b net.Buffers) { answerOnce.Do(func() { answers <- b }) }
	defer answer(nil)

	br := bufio.NewReaderSize(outR, 256<<10)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, launchLine) {
		inW.Close()
		if werr := wait(); podexec.ExecutableMissing(werr) {
			return fail(fmt.Errorf("%w: no sh: %v", ErrUnavailable, werr))
		} else if werr != nil {
			return fail(werr)
		}
		return fail(fmt.Errorf("%w: the launcher said %q", ErrUnavailable, line))
	}
	fields := strings.Fields(strings.TrimPrefix(line, launchLine))
	for len(fields) < 3 {
		fields = append(fields, "")
	}
	machine, kept, took := fields[0], fields[1], fields[2]
	crossing, crossed := time.Now(), 0 // the binary's crossing, from here to the hello
	if took == "took" {
		crossed = guessed
	}
	goarch := embedded.Arch(machine)
	if goarch == "" {
		answer(net.Buffers{noAgent})
		return fail(fmt.Errorf("%w: no agent for machine %q", ErrUnavailable, machine))
	}
	var rest net.Buffers // nothing more after a guess the launcher took
	if took != "took" {
		if rest, err = o.answer(goarch, kept); err != nil {
			answer(net.Buffers{noAgent})
			return fail(fmt.Errorf("%w: %v", ErrUnavailable, err))
		}
		crossed = binarySize(rest)
	}
	answer(rest)
	s, err := dial(ctx, inW, br, outR, wait, cancel)
	if err == nil {
		// The agent answers only once take has read all of it, so this
		// does not wait.
		err = <-sent
	}
	if err == nil && crossed > 0 {
		s.BinaryRate = float64(crossed) / time.Since(crossing).Seconds()
	}
	if err == nil {
		var want string
		if want, err = embedded.Digest(goarch); err == nil {
			err = checkSelf(s.Hello.Self, want)
		}
	}
	if err != nil {
		var he *handshakeError
		if errors.As(err, &he) {
			if _, reason, ok := strings.Cut(string(he.noise), unavailableLine); ok {
				reason, _, _ = strings.Cut(reason, "\n")
				return fail(fmt.Errorf("%w: %s", ErrUnavailable, reason))
			}
		}
		return fail(launchErr(inW, outR, wait, err))
	}
	return s, nil
}

// firstHeader is what the plugin sends before the launcher has said a
// word: the agent for guessArch, after a header with the machines it runs
// on; or, when a copy kept in o.Keep may spare the binary's crossing, a
// question.
func (o Options) firstHeader() (net.Buffers, error) {
	if o.Keep != "" {
		return net.Buffers{[]byte("0 ask\n")}, nil
	}
	bin, err := embedded.Binary(guessArch)
	if err != nil {
		return nil, err
	}
	header := fmt.Sprintf("%d guess %s\n", len(bin), strings.Join(embedded.Machines(guessArch), " "))
	return net.Buffers{[]byte(header), bin}, nil
}

// binarySize is the size of the binary after a header: 0 after a
// question or for a kept copy.
func binarySize(b net.Buffers) int {
	n := 0
	for _, p := range b[min(1, len(b)):] {
		n += len(p)
	}
	return n
}

// noAgent is the answer that ends the launcher without running anything.
var noAgent = []byte("0 none\n")

// answer is the plugin's reply to the launcher's first line (the machine's
// goarch and the SHA-256 of the copy it keeps) when it did not take a
// guessed binary: the header line and the binary, or only a header when
// the kept copy is this plugin's agent.
func (o Options) answer(goarch, kept string) (net.Buffers, error) {
	keepAs := ""
	if o.Keep != "" {
		d, err := embedded.Digest(goarch)
		if err != nil {
			return nil, err
		}
		if d == kept {
			return net.Buffers{[]byte("0 kept\n")}, nil
		}
		keepAs = d
	}
	bin, err := embedded.Binary(goarch)
	if err != nil {
		return nil, err
	}
	return net.Buffers{[]byte(fmt.Sprintf("%d raw %s\n", len(bin), keepAs)), bin}, nil
}

// checkSelf compares the running agent's SHA-256 of itself with the
// binary's: a bit flipped on the way may leave a program that still runs.
// The mismatch is an error a new launch may fix.
func checkSelf(self, want string) error {
	if self != want {
		return fmt.Errorf("the agent's binary arrived corrupted (SHA-256 %.12s, sent %.12s)", self, want)
	}
	return nil
}

// launchErr ends the exec and returns its own failure, when it has one
// within a moment, rather than the broken pipe that showed it.
func launchErr(stdin, stdout io.Closer, wait func() error, err error) error {
	stdin.Close()
	stdout.Close()
	w := make(chan error, 1)
	go func() { w <- wait() }()
	select {
	case werr := <-w:
		if werr != nil {
			return fmt.Errorf("start the agent: %w", werr)
		}
	case <-time.After(2 * time.Second):
	}
	return fmt.Errorf("start the agent: %w", err)
}
