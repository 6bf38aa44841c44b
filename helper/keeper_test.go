package helper

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// localContainer stands for a helper container on this machine: its /tmp
// is a test directory, its tools are busybox's, and exec runs the command
// locally, as the node would in the container.
type localContainer struct {
	t   *testing.T
	tmp string
	bin string
}

func newLocalContainer(t *testing.T) *localContainer {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed")
	}
	c := &localContainer{t: t, tmp: t.TempDir(), bin: t.TempDir()}
	for _, applet := range []string{"sh", "sleep", "cat", "kill", "echo"} {
		if err := os.Symlink(bb, filepath.Join(c.bin, applet)); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// command maps the container's /tmp onto the test directory.
func (c *localContainer) command(argv []string) *exec.Cmd {
	args := make([]string, len(argv))
	for i, a := range argv {
		args[i] = strings.ReplaceAll(a, "/tmp/", c.tmp+"/")
	}
	cmd := exec.Command(filepath.Join(c.bin, args[0]), args[1:]...)
	cmd.Env = []string{"PATH=" + c.bin}
	return cmd
}

// keeper is a keeper process and, once it ended, its exit status.
type keeper struct {
	done chan struct{}
	code int
}

// startKeeper runs the keeper as the container's main process would run,
// after the kubelet's expansion of its command.
func (c *localContainer) startKeeper(argv []string) *keeper {
	c.t.Helper()
	expanded := append([]string(nil), argv...)
	for i := range expanded {
		expanded[i] = kubeletExpand(expanded[i])
	}
	cmd := c.command(expanded)
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	k := &keeper{done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			k.code = exit.ExitCode()
			if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				k.code = 128 + int(ws.Signal())
			}
		}
		close(k.done)
	}()
	c.t.Cleanup(func() { _ = cmd.Process.Kill(); <-k.done })
	return k
}

func (k *keeper) running() bool {
	select {
	case <-k.done:
		return false
	default:
		return true
	}
}

func (c *localContainer) Exec(ctx context.Context, r podexec.Request, s podexec.Streams, _ remotecommand.TerminalSizeQueue) error {
	cmd := c.command(r.Command)
	if r.Stdin {
		cmd.Stdin = s.In
	}
	cmd.Stdout, cmd.Stderr = s.Out, s.ErrOut
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return utilexec.CodeExitError{Err: err, Code: exit.ExitCode()}
	}
	return err
}

// kubeletExpand is what the kubelet does to a container's command: $$ is
// a $, $(VAR) a variable (none is defined here, so it stays as written).
func kubeletExpand(s string) string { return strings.ReplaceAll(s, "$$", "$") }

// exitOf waits for the keeper and returns its exit status.
func exitOf(t *testing.T, k *keeper, within time.Duration) int {
	t.Helper()
	select {
	case <-k.done:
		return k.code
	case <-time.After(within):
		t.Fatalf("the keeper still runs after %s", within)
		return -1
	}
}

func TestKeeperCommandSurvivesKubeletExpansion(t *testing.T) {
	argv := KeeperCommand(time.Hour)
	if got := kubeletExpand(argv[2]); got != keeperScript {
		t.Errorf("the kubelet turns the keeper script into\n%s\nwant\n%s", got, keeperScript)
	}
	if argv[5] != "3600" {
		t.Errorf("lifetime argument %q, want 3600", argv[5])
	}
}

func TestTetherEndsTheKeeper(t *testing.T) {
	tests := []struct {
		name     string
		end      func(*Tether, context.Context) error
		wantExit int
	}{
		{"stop", (*Tether).Stop, 143},
		{"release", (*Tether).Release, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newLocalContainer(t)
			keeper := c.startKeeper(KeeperCommand(time.Hour))
			tether := Tie(c, podexec.Container{Namespace: "ci", Pod: "p", Name: "helper"}, time.Minute)
			// An interrupted session still ends its keeper.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if err := tt.end(tether, ctx); err != nil {
				t.Fatalf("end: %v", err)
			}
			if got := exitOf(t, keeper, 5*time.Second); got != tt.wantExit {
				t.Errorf("keeper exited %d, want %d", got, tt.wantExit)
			}
		})
	}
}

// A plugin that is lost (SIGKILL, no word on the tether's stdin) stops the
// keeper after the grace, unless a newer tether took over.
func TestLostTetherStopsTheKeeperAfterTheGrace(t *testing.T) {
	c := newLocalContainer(t)
	keeper := c.startKeeper(KeeperCommand(time.Hour))
	tie := func(id string, in io.Reader) error {
		return podexec.RunScript(t.Context(), c, podexec.Container{}, tetherScript,
			[]string{id, keeperTetherFile, keeperPIDFile, "1"}, in, nil)
	}
	// A first tether lost while a second is tied: the first must not stop
	// the keeper.
	lostReader, lostWriter := io.Pipe()
	lost := make(chan error, 1)
	go func() { lost <- tie("first", lostReader) }()
	time.Sleep(300 * time.Millisecond) // the first has registered
	second, secondWriter := io.Pipe()
	secondDone := make(chan error, 1)
	go func() { secondDone <- tie("second", second) }()
	time.Sleep(300 * time.Millisecond)
	lostWriter.Close()
	if err := <-lost; err != nil {
		t.Fatalf("the superseded tether: %v", err)
	}
	if !keeper.running() {
		t.Fatalf("a superseded tether stopped the keeper (exit %d)", keeper.code)
	}
	secondWriter.Close() // the newest is lost too: after 1s the keeper stops
	if err := <-secondDone; err != nil {
		t.Fatalf("the last tether: %v", err)
	}
	if got := exitOf(t, keeper, 5*time.Second); got != 143 {
		t.Errorf("keeper exited %d, want 143", got)
	}
}

// A keeper that nothing ties exits by itself: its session is gone.
func TestUntiedKeeperExits(t *testing.T) {
	c := newLocalContainer(t)
	argv := KeeperCommand(time.Hour)
	argv[len(argv)-1] = "1" // tie within 1s
	keeper := c.startKeeper(argv)
	if got := exitOf(t, keeper, 5*time.Second); got != 1 {
		t.Errorf("untied keeper exited %d, want 1", got)
	}
}
