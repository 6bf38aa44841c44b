package nodeagent

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/images"
)

// procSpec is how to start a process inside a container: the container's
// own processes and exec sessions share everything but argv.
type procSpec struct {
	rootfs   string
	env      []string
	dir      string
	uid, gid uint32
}

// runAs picks the user a container runs as: the container's securityContext,
// then the pod's, then the image's User.
func runAs(pod *corev1.Pod, c *corev1.Container, img images.Config) (uid, gid uint32) {
	imgUser, imgGroup, _ := strings.Cut(img.User, ":")
	if n, err := strconv.ParseUint(imgUser, 10, 32); err == nil {
		uid = uint32(n)
	}
	if n, err := strconv.ParseUint(imgGroup, 10, 32); err == nil {
		gid = uint32(n)
	}
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.RunAsUser != nil {
			uid = uint32(*psc.RunAsUser)
		}
		if psc.RunAsGroup != nil {
			gid = uint32(*psc.RunAsGroup)
		}
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = uint32(*sc.RunAsUser)
		}
		if sc.RunAsGroup != nil {
			gid = uint32(*sc.RunAsGroup)
		}
	}
	return uid, gid
}

func workingDir(c *corev1.Container, img images.Config) string {
	switch {
	case c.WorkingDir != "":
		return c.WorkingDir
	case img.WorkingDir != "":
		return img.WorkingDir
	}
	return "/"
}

// command prepares argv to run chrooted in the container, in its working
// directory (created if missing, as container runtimes do), as its user, in a
// process group of its own so that the whole group can be signalled.
func (s procSpec) command(argv []string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, errors.New("no command specified")
	}
	path, err := lookPath(s.rootfs, argv[0], s.env)
	if err != nil {
		return nil, err
	}
	hostDir, err := securejoin.SecureJoin(s.rootfs, s.dir)
	if err != nil {
		return nil, fmt.Errorf("working directory: %w", err)
	}
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		return nil, fmt.Errorf("create working directory: %w", err)
	}
	attr := &syscall.SysProcAttr{Chroot: s.rootfs, Setpgid: true}
	if s.uid != 0 || s.gid != 0 {
		attr.Credential = &syscall.Credential{Uid: s.uid, Gid: s.gid, Groups: []uint32{}}
	}
	return &exec.Cmd{Path: path, Args: argv, Env: s.env, Dir: s.dir, SysProcAttr: attr}, nil
}

// signalGroup signals a process's whole group; a group that is already gone
// is not an error.
func signalGroup(pid int, sig syscall.Signal) {
	if pid <= 0 {
		return
	}
	_ = syscall.Kill(-pid, sig)
}

// exitStatus turns a process's end into a container exit code: its status,
// or 128+signal when killed.
func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return exitErr.ExitCode()
	}
	return 128
}
