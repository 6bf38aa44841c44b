package nodeagent

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/creack/pty"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/images"
)

type containerKind int

const (
	kindInit containerKind = iota
	kindRegular
	kindEphemeral
)

// container is one container of a pod and its successive runs. Fields below
// mu are guarded by the pod's mutex.
type container struct {
	name   string
	kind   containerKind
	spec   corev1.Container
	image  *images.Image
	proc   procSpec
	argv   []string
	logDir string

	status corev1.ContainerStatus
	run    *containerRun // the current or last run, nil before the first
	// attach is how attach sessions reach the current run.
	attach *attachPoint
}

// containerRun is one start of a container's process.
type containerRun struct {
	index   int32 // the container's restart count when it started
	logPath string
	pid     int
	done    chan struct{} // closed once the process ended and its output is logged
}

func newContainerID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "local://" + hex.EncodeToString(b)
}

func (c *container) logPath(restartCount int32) string {
	return filepath.Join(c.logDir, strconv.Itoa(int(restartCount))+".log")
}

// start starts the container's process for run number c.status.RestartCount.
// It returns the run, the run's attach point, and wait, which blocks until
// the process ended and its output is logged and returns the exit code. The
// status is not touched: the caller (the container's loop, the only writer
// of RestartCount) records the outcome.
func (c *container) start() (*containerRun, *attachPoint, func() int, error) {
	cmd, err := c.proc.command(c.argv)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := os.MkdirAll(c.logDir, 0o755); err != nil {
		return nil, nil, nil, err
	}
	run := &containerRun{index: c.status.RestartCount, logPath: c.logPath(c.status.RestartCount), done: make(chan struct{})}
	logFile, err := os.OpenFile(run.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open log: %w", err)
	}
	lw := &logWriter{w: logFile, now: time.Now}
	// Only the current and the previous run's logs are kept, as on a kubelet.
	if n := c.status.RestartCount; n >= 2 {
		_ = os.Remove(c.logPath(n - 2))
	}
	ap := newAttachPoint(c.spec.TTY, c.spec.StdinOnce)

	var outputs []*os.File // read ends the pumps drain
	var streams []string
	var childEnds []*os.File
	fail := func(err error) (*containerRun, *attachPoint, func() int, error) {
		logFile.Close()
		for _, f := range append(outputs, childEnds...) {
			f.Close()
		}
		ap.closeInput()
		return nil, nil, nil, err
	}
	if c.spec.TTY {
		master, slave, err := pty.Open()
		if err != nil {
			return fail(fmt.Errorf("open pty: %w", err))
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		// The terminal's session leader is the container's process; its
		// session is its process group too.
		cmd.SysProcAttr.Setpgid = false
		cmd.SysProcAttr.Setsid = true
		cmd.SysProcAttr.Setctty = true
		ap.input, ap.pty = master, master
		outputs, streams, childEnds = []*os.File{master}, []string{streamStdout}, []*os.File{slave}
	} else {
		for _, stream := range []string{streamStdout, streamStderr} {
			r, w, err := os.Pipe()
			if err != nil {
				return fail(err)
			}
			outputs, streams, childEnds = append(outputs, r), append(streams, stream), append(childEnds, w)
		}
		cmd.Stdout, cmd.Stderr = childEnds[0], childEnds[1]
		if c.spec.Stdin {
			r, w, err := os.Pipe()
			if err != nil {
				return fail(err)
			}
			cmd.Stdin, ap.input = r, w
			childEnds = append(childEnds, r)
		}
	}
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	for _, f := range childEnds {
		f.Close()
	}
	run.pid = cmd.Process.Pid

	var pumps sync.WaitGroup
	for i, out := range outputs {
		pumps.Add(1)
		go func(r io.Reader, stream string) {
			defer pumps.Done()
			_ = pumpLog(r, lw, stream, func(b []byte) { ap.broadcast(stream, b) })
		}(out, streams[i])
	}
	wait := func() int {
		err := cmd.Wait()
		// What the process left behind in its group goes with it, as a
		// container's processes go with its cgroup.
		signalGroup(run.pid, 9)
		pumpsDone := make(chan struct{})
		go func() { pumps.Wait(); close(pumpsDone) }()
		select {
		case <-pumpsDone:
		case <-time.After(2 * time.Second):
			// A process that escaped the group still holds the output open.
		}
		for _, f := range outputs {
			f.Close()
		}
		<-pumpsDone
		ap.closeInput()
		ap.finish()
		logFile.Close()
		close(run.done)
		return exitStatus(err)
	}
	return run, ap, wait, nil
}

func runningStatus(s corev1.ContainerStatus, now metav1.Time) corev1.ContainerStatus {
	s.ContainerID = newContainerID()
	s.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
	s.Started = ptrBool(true)
	s.Ready = true
	return s
}

func terminatedStatus(s corev1.ContainerStatus, code int, reason, msg string, started, finished metav1.Time, kind containerKind) corev1.ContainerStatus {
	if reason == "" {
		reason = "Completed"
		if code != 0 {
			reason = "Error"
		}
	}
	s.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: int32(code), Reason: reason, Message: msg, StartedAt: started, FinishedAt: finished, ContainerID: s.ContainerID,
	}}
	s.Started = ptrBool(false)
	// A completed init container counts as ready, as on a kubelet.
	s.Ready = kind == kindInit && code == 0
	return s
}

func ptrBool(b bool) *bool { return &b }
