package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	// GzipBinary sends the binary gzipped (1.5 MB instead of 3.5) when the
	// container has gzip: it pays on a link slower than about 100 MB/s.
	// gunzip costs the container about 30 ms of CPU, which over loopback
	// doubles the agent's launch (60 ms against 30).
	GzipBinary bool
	// Keep, when set, is a directory of the plugin's own (a warm cache's
	// claim) where a copy of the agent stays between sessions: when the
	// copy there is this plugin's agent (its SHA-256, checked in the
	// container), it runs without the binary crossing the link again.
	Keep string
}

// DefaultCandidates are where the agent's binary is written when Dir is
// not writable or not executable.
var DefaultCandidates = []string{"/tmp", "/dev/shm", "/var/tmp"}

// launchLine begins the launcher's first line: the machine and whether the
// container can gunzip.
const launchLine = "kubectl-concourse-launch "

// unavailableLine begins the launcher's answer when the agent cannot run.
const unavailableLine = "kubectl-concourse-unavailable: "

// keptPrefix begins the name of the agent's copy in a keep directory; its
// SHA-256 ends it.
const keptPrefix = ".kubectl-concourse-agent.kept-"

// launcher runs in the container with the keep directory (or "") and the
// candidate directories as its arguments. It says what the machine is,
// whether it can gunzip and the SHA-256 of the agent kept in the keep
// directory ("-": none whose content is its name), reads the plugin's
// answer (the binary's size, form and SHA-256; 0 kept to run the kept one;
// or 0), then exactly that
// many bytes into a new file in the first candidate that is a writable
// directory, and runs it there: when the directory does not let it run
// (noexec: the shell answers 126 without running it), it moves the file on
// to the next. head reads exactly the bytes it is told to, but may buffer
// beyond them: the plugin sends nothing more until the agent has answered.
// The agent removes its file once it runs. It is not exec'd: its exit
// status tells noexec from a run (the agent never exits 126), which saves
// a trial run per launch. An agent written into the keep directory is hard
// linked there under its SHA-256 before it runs (and unlinked again if the
// directory turns out noexec), for the next session.
const launcher = `umask 077
K=$1; shift
z=raw; command -v gzip >/dev/null 2>&1 && z=gz
kept=-
if [ -n "$K" ] && command -v sha256sum >/dev/null 2>&1; then
	for k in "$K"/` + keptPrefix + `*; do
		[ -f "$k" ] && [ ! -L "$k" ] || continue
		s=$(sha256sum <"$k")
		s=${s%% *}
		if [ "$k" = "$K/` + keptPrefix + `$s" ]; then kept=$s; else rm -f -- "$k"; fi
	done
fi
echo "` + launchLine + `$(uname -m) $z $kept"
IFS=' ' read -r n form sha || exit 0
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
		# is run by sh as a script. gzip -dc fails on a cut stream; head
		# does not, so its count is checked.
		if [ "$form" = gz ]; then head -c "$n" | gzip -dc >"$t"; else head -c "$n" >"$t" && [ "$(wc -c <"$t")" -eq "$n" ]; fi || {
			rm -f -- "$t"; echo "` + unavailableLine + `cannot write the agent to $d"; exit 0; }
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
	machine, form, kept := fields[0], fields[1], fields[2]
	goarch := embedded.Arch(machine)
	if goarch == "" {
		io.WriteString(inW, "0 none\n")
		return fail(fmt.Errorf("%w: no agent for machine %q", ErrUnavailable, machine))
	}
	header, bin, want, err := o.answer(goarch, form, kept)
	if err != nil {
		io.WriteString(inW, "0 none\n")
		return fail(fmt.Errorf("%w: %v", ErrUnavailable, err))
	}
	// Written while stdout is read: a launcher that gives up before it has
	// read the binary says why there, and the exec ends only once that is
	// read.
	sent := make(chan error, 1)
	go func() {
		_, err := io.WriteString(inW, header)
		if err == nil && bin != nil {
			_, err = io.Copy(inW, bin)
		}
		sent <- err
	}()
	s, err := dial(ctx, inW, br, outR, wait, cancel)
	if err == nil {
		// The agent answers only once head has read all of it, so this
		// does not wait.
		err = <-sent
	}
	if err == nil {
		err = checkSelf(s.Hello.Self, want)
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

// answer is the plugin's reply to the launcher's first line (the machine's
// goarch, whether it can gunzip, the SHA-256 of the copy it keeps): the
// header line, then the binary to send after it, or none when the kept
// copy is this plugin's agent; and the SHA-256 the agent that runs must
// report, known once the binary is sent.
func (o Options) answer(goarch, form, kept string) (header string, bin io.Reader, want func() (string, error), err error) {
	digest := func() (string, error) { return embedded.Digest(goarch) }
	var keptDigest string
	if o.Keep != "" {
		if d, err := embedded.Digest(goarch); err == nil {
			if d == kept {
				return "0 kept\n", nil, digest, nil
			}
			keptDigest = d
		}
	}
	if form == "gz" && o.GzipBinary {
		gz, err := embedded.Gzipped(goarch)
		if err != nil {
			return "", nil, nil, err
		}
		return fmt.Sprintf("%d gz %s\n", len(gz), keptDigest), bytes.NewReader(gz), digest, nil
	}
	r, size, err := embedded.Binary(goarch)
	if err != nil {
		return "", nil, nil, err
	}
	// Hashed as it is sent: no second decompression.
	h := sha256.New()
	sent := func() (string, error) { return hex.EncodeToString(h.Sum(nil)), nil }
	return fmt.Sprintf("%d raw %s\n", size, keptDigest), io.TeeReader(r, h), sent, nil
}

// checkSelf compares the running agent's SHA-256 of itself with the
// binary's: a bit flipped on the way may leave a program that still runs.
// The mismatch is an error a new launch may fix.
func checkSelf(self string, want func() (string, error)) error {
	w, err := want()
	if err != nil {
		return err
	}
	if self != w {
		return fmt.Errorf("the agent's binary arrived corrupted (SHA-256 %.12s, sent %.12s)", self, w)
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
