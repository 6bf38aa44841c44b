// Package transfertest holds what the tests on both sides of package
// transfer's API share (transfer's own, and those of the upload and
// download commands): a container that is this machine, with busybox's
// applets for its programs, so that transfers are real without a cluster,
// and trees on disk to send and compare.
package transfertest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// Container is a podexec.Executor whose container is this machine: it runs
// a command from Bin, with PATH limited to Bin, as a container of busybox
// applets (the test cluster's images) would.
type Container struct {
	Bin string
}

// Exec runs r.Command as a session of client-go's executors would.
func (c Container) Exec(ctx context.Context, r podexec.Request, s podexec.Streams, _ remotecommand.TerminalSizeQueue) error {
	cmd, err := Command(ctx, c.Bin, r.Command)
	if err != nil {
		return err
	}
	if r.Stdin && s.In != nil {
		cmd.Stdin = s.In
		pr, err := PipeStdin(cmd)
		if err != nil {
			return err
		}
		defer pr.Close()
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if s.Out != nil {
		cmd.Stdout = s.Out
	}
	if s.ErrOut != nil {
		cmd.Stderr = s.ErrOut
	}
	return ExitError(cmd.Run())
}

// Command is argv as a container whose programs are those in bin starts
// it: PATH is bin alone, and a program not there fails as in a container,
// with exit code 127.
func Command(ctx context.Context, bin string, argv []string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, errors.New("no command")
	}
	path, err := exec.LookPath(filepath.Join(bin, argv[0]))
	if err != nil {
		return nil, &utilexec.CodeExitError{Err: fmt.Errorf("exec %q: executable file not found", argv[0]), Code: 127}
	}
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Env = []string{"PATH=" + bin}
	return cmd, nil
}

// PipeStdin feeds cmd.Stdin to cmd through a pipe, so that, as with
// client-go's executors, the session ends with the process, without
// waiting for the rest of stdin (os/exec would). It returns the pipe's read
// end, for the caller to close once the session has ended.
func PipeStdin(cmd *exec.Cmd) (*os.File, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	go func(in io.Reader) {
		_, _ = io.Copy(pw, in)
		pw.Close()
	}(cmd.Stdin)
	cmd.Stdin = pr
	return pr, nil
}

// ExitError is cmd.Run's err as client-go's executors report it: an exit
// status is a CodeExitError.
func ExitError(err error) error {
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return &utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", exitErr.ExitCode()), Code: exitErr.ExitCode()}
	}
	return err
}

// BusyboxBin returns a directory of busybox applet links (applets, or
// every one a transfer runs); it skips the test when busybox is missing.
func BusyboxBin(t testing.TB, applets ...string) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed")
	}
	dir := t.TempDir()
	if applets == nil {
		applets = []string{"sh", "tar", "gzip", "lzop", "md5sum", "sha256sum", "find", "xargs", "mkdir", "mv", "rm", "du", "cut",
			"head", "wc", "dd", "grep", "while", "cat", "rmdir", "ln", "readlink", "sleep", "nproc"}
	}
	for _, a := range applets {
		if err := os.Symlink(bb, filepath.Join(dir, a)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Tree describes every entry under dir: type, permission bits, content
// hash or link target.
func Tree(t testing.TB, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	if top, err := filepath.EvalSymlinks(dir); err == nil {
		dir = top // an uploaded directory lands as a symlink to its version
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			m[rel] = "link " + target
		case fi.IsDir():
			m[rel] = fmt.Sprintf("dir %o", fi.Mode().Perm())
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m[rel] = fmt.Sprintf("file %o %x", fi.Mode().Perm(), sha256.Sum256(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// WriteTree writes files under dir, each by its spec: "dir", "link:TARGET",
// "exe:CONTENT" (mode 0755), or else the content itself (mode 0640).
func WriteTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, spec := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case spec == "dir":
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(spec, "link:"):
			if err := os.Symlink(strings.TrimPrefix(spec, "link:"), p); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(spec, "exe:"):
			if err := os.WriteFile(p, []byte(strings.TrimPrefix(spec, "exe:")), 0o755); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(spec), 0o640); err != nil {
				t.Fatal(err)
			}
		}
	}
}
