// Package helper runs the plugin's own containers beside a build step: an
// ephemeral container added to the step's pod, or a helper container in a
// pod the plugin creates. Each one's main process is a keeper that lives
// exactly as long as the session that needs it: it is tied to this process
// through an exec stream (a Tether), so it ends when the session ends, and
// within a grace period when the plugin is lost (SIGKILL, a dead laptop),
// with a fixed lifetime as the last bound. Starting one waits until it runs,
// saying why it does not (Waiting), and gives up when waiting cannot help.
package helper

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// DefaultImage has sh, sleep, tar, gzip, find and sha256sum: what the keeper
// and the transfer scripts need.
const DefaultImage = "busybox"

const (
	// The keeper's files, in the helper container's own /tmp.
	keeperPIDFile    = "/tmp/.kubectl-concourse-keeper.pid"
	keeperTetherFile = "/tmp/.kubectl-concourse-keeper.tether"

	// DefaultGrace is how long a keeper outlives a lost tether: long enough
	// for a dropped connection to tie again, short enough that a killed
	// plugin leaves nothing running for long.
	DefaultGrace = time.Minute

	// tieWithin is how long a keeper waits for its first tether.
	tieWithin = time.Minute

	stopTimeout = 30 * time.Second
)

// keeperScript is the helper container's main process. It records its pid
// for the tether ($1) and waits for one to tie ($3 appears); a keeper that
// nothing ties within $4 seconds exits, because the session that added it
// is gone. Then it sleeps at most its lifetime ($2 seconds) and ends on a signal
// from the tether: USR1 exits 0 (released: an init container lets the pod go
// on), TERM exits 143 (stopped). It traps both, so that it hears them even as
// PID 1 of its container; its last sleep runs in the background because
// `wait` is interrupted by a trapped signal where a foreground sleep is not.
const keeperScript = `echo $$ >"$1"
trap 'kill $! 2>/dev/null; exit 0' USR1
trap 'kill $! 2>/dev/null; exit 143' TERM
i=0
while [ ! -e "$3" ]; do
  [ "$i" -ge "$4" ] && exit 1
  sleep 1 & wait $!; i=$((i+1))
done
sleep "$2" & wait $!
exit 1`

// KeeperCommand is the command of a helper container whose keeper lives at
// most lifetime. The kubelet expands $(VAR) and turns $$ into $ in a
// container's command, so the shell's $$ (its pid) is written $$$$ there.
func KeeperCommand(lifetime time.Duration) []string {
	secs := int64(lifetime / time.Second)
	if secs < 1 {
		secs = 1
	}
	return []string{"sh", "-c", EscapeExpansion(keeperScript), "sh", keeperPIDFile, strconv.FormatInt(secs, 10), keeperTetherFile,
		strconv.Itoa(int(tieWithin / time.Second))}
}

// EscapeExpansion doubles every $ so that the kubelet's expansion of a
// container's command and args ($(VAR), $$) gives the text back unchanged:
// for commands that are not Kubernetes's to expand (a shell script, a
// Concourse task's run).
func EscapeExpansion(s string) string {
	out := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); i++ {
		if s[i] == '$' {
			out = append(out, '$')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// tetherScript runs in the helper container for as long as the session:
// $1 its id, $2 the file naming the newest tether, $3 the keeper's pid
// file, $4 the grace in seconds. A line on stdin says how the session
// ended: "stop" ends the keeper, "release" lets it exit 0. End of input
// without a word means the plugin was lost: after the grace, unless a newer
// tether has taken over, the keeper is stopped. It says "signalling" first:
// the keeper's container may end, and take the tether's exec with it,
// before the exit status travels back.
const tetherScript = `id=$1 tf=$2 pf=$3 grace=$4
i=0
while [ ! -s "$pf" ]; do
  i=$((i+1)); [ "$i" -gt 100 ] && { echo "the keeper never started: no $pf" >&2; exit 1; }
  sleep 0.1
done
echo "$id" >"$tf"
IFS= read -r word
case $word in
release) sig=USR1 ;;
stop) sig=TERM ;;
*) sleep "$grace"; [ "$(cat "$tf" 2>/dev/null)" = "$id" ] || exit 0; sig=TERM ;;
esac
echo signalling
kill -s "$sig" "$(cat "$pf")"`

// signalScript signals the keeper in one exec, for when no tether is tied.
const signalScript = `kill -s "$1" "$(cat "$2")"`

// Tether ties a keeper to this process.
type Tether struct {
	exec      podexec.Executor
	container podexec.Container
	grace     time.Duration

	mu     sync.Mutex
	stdin  *io.PipeWriter // the current tether's stdin; nil while none is tied
	ended  bool           // Stop or Release was called
	done   chan struct{}  // closed when no tether will be tied again
	result error          // how the last tether ended
}

// Tie ties the keeper of container to this process until Stop or Release.
// A tether whose stream breaks is tied again (a dropped connection is not
// the end of the session) for as long as the grace lets the keeper wait.
func Tie(ex podexec.Executor, c podexec.Container, grace time.Duration) *Tether {
	t := &Tether{exec: ex, container: c, grace: grace, done: make(chan struct{})}
	pr, pw := io.Pipe()
	t.stdin = pw // before the first exec starts, so that an early Stop reaches it
	go t.loop(pr)
	return t
}

func (t *Tether) loop(pr *io.PipeReader) {
	defer close(t.done)
	var brokeAt time.Time
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		if pr == nil {
			var pw *io.PipeWriter
			pr, pw = io.Pipe()
			t.mu.Lock()
			if t.ended {
				t.mu.Unlock()
				return
			}
			t.stdin = pw
			t.mu.Unlock()
		}
		id, err := randomID()
		var said strings.Builder
		if err == nil {
			err = podexec.RunScript(context.Background(), t.exec, t.container, tetherScript,
				[]string{id, keeperTetherFile, keeperPIDFile, strconv.Itoa(int(t.grace / time.Second))}, pr, &said)
		}
		if err != nil && strings.Contains(said.String(), "signalling") {
			err = nil // it did what it was told; its exec ended with the container
		}
		pr.CloseWithError(errors.New("tether ended")) // a late Stop must not block on it
		pr = nil
		t.mu.Lock()
		t.stdin = nil
		ended := t.ended
		t.result = err
		t.mu.Unlock()
		var se *podexec.ScriptError
		switch {
		case ended, err == nil, errors.As(err, &se) && se.Exited():
			// The session ended, or the keeper is gone, or the script
			// could not run: tying again would not help.
			return
		case brokeAt.IsZero():
			brokeAt = time.Now()
		case time.Since(brokeAt) > t.grace:
			return // the keeper has stopped by now
		}
		time.Sleep(backoff)
	}
}

// Stop ends the keeper (its container then terminates) and waits until the
// tether confirms it, even when ctx is cancelled: an interrupted session
// must still clean up.
func (t *Tether) Stop(ctx context.Context) error { return t.end(ctx, "stop", "TERM") }

// Release lets the keeper exit 0: an init container that held the pod
// back lets it go on.
func (t *Tether) Release(ctx context.Context) error { return t.end(ctx, "release", "USR1") }

func (t *Tether) end(ctx context.Context, word, signal string) error {
	t.mu.Lock()
	t.ended = true
	stdin := t.stdin
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	if stdin != nil {
		// The word goes through the exec stream, which may hang: the write
		// waits in the background, bounded by the timeout.
		go func() {
			if _, err := io.WriteString(stdin, word+"\n"); err == nil {
				stdin.Close()
			}
		}()
		select {
		case <-t.done:
			t.mu.Lock()
			result := t.result
			t.mu.Unlock()
			if result == nil {
				return nil
			}
		case <-ctx.Done():
		}
	}
	// No tether is tied (it broke, or this one did not answer): signal the
	// keeper in an exec of its own.
	if err := podexec.RunScript(ctx, t.exec, t.container, signalScript, []string{signal, keeperPIDFile}, nil, nil); err != nil {
		return fmt.Errorf("end the keeper of %s: %w", t.container, err)
	}
	return nil
}

func randomID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
