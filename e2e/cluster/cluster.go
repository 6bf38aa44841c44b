// Package cluster starts the test cluster (bin/testcluster up) for e2e tests,
// one per test binary, and gives tests what they need to use it: clients,
// kubectl commands, restricted users and throwaway namespaces.
package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Options configures Start.
type Options struct {
	Dir       string // state directory; a temporary one when empty
	Nodes     int    // synthetic nodes (objects only)
	RealNodes int    // real nodes (kubelet, containerd, runc): real-1, ...
	LinkRate  int    // bytes/s of the limited link; 0: none
	BinDir    string // default: the repository's bin/
}

// Cluster is a running test cluster.
type Cluster struct {
	Dir        string
	Kubeconfig string // admin
	// LimitedKubeconfig reaches the API server through the rate-limited
	// link (empty unless Options.LinkRate was set).
	LimitedKubeconfig string
	BinDir            string
	// RealNodes names the real nodes (real-1, ...); NoRealNodes says why
	// there are none, when there are none.
	RealNodes   []string
	NoRealNodes string
	Config      *rest.Config
	Client      kubernetes.Interface

	cmd     *exec.Cmd
	exited  chan struct{}
	tempDir bool
}

// RepoRoot is the repository that holds this package.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Start runs `testcluster up` and returns when it prints "ready".
func Start(ctx context.Context, o Options) (*Cluster, error) {
	c := &Cluster{Dir: o.Dir, BinDir: o.BinDir, exited: make(chan struct{})}
	if c.BinDir == "" {
		c.BinDir = filepath.Join(RepoRoot(), "bin")
	}
	if c.Dir == "" {
		dir, err := os.MkdirTemp("", "testcluster-")
		if err != nil {
			return nil, err
		}
		c.Dir, c.tempDir = dir, true
	}
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	args := []string{"up", "--dir", c.Dir, "--nodes", strconv.Itoa(o.Nodes)}
	if o.RealNodes > 0 {
		args = append(args, "--real-nodes", strconv.Itoa(o.RealNodes))
		for i := 1; i <= o.RealNodes; i++ {
			c.RealNodes = append(c.RealNodes, fmt.Sprintf("real-%d", i))
		}
	} else {
		c.NoRealNodes = "the cluster was started without real nodes"
	}
	if o.LinkRate > 0 {
		args = append(args, "--link-rate", strconv.Itoa(o.LinkRate))
		c.LimitedKubeconfig = filepath.Join(c.Dir, "kubeconfig-limited")
	}
	c.cmd = exec.Command(filepath.Join(c.BinDir, "testcluster"), args...)
	log, err := os.Create(filepath.Join(c.Dir, "testcluster.log"))
	if err != nil {
		return nil, err
	}
	c.cmd.Stderr = log
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start testcluster (run `make cluster` first): %w", err)
	}
	ready := make(chan error, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if lines.Text() == "ready" {
				ready <- nil
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		err := c.cmd.Wait()
		log.Close()
		tail, _ := os.ReadFile(log.Name())
		if len(tail) > 3000 {
			tail = tail[len(tail)-3000:]
		}
		ready <- fmt.Errorf("testcluster exited before ready: %v; the end of %s:\n%s", err, log.Name(), tail)
		close(c.exited)
	}()
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		err = c.connect()
	}
	if err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) connect() error {
	var err error
	if c.Config, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig); err != nil {
		return err
	}
	c.Config.QPS, c.Config.Burst = 100, 200
	c.Client, err = kubernetes.NewForConfig(c.Config)
	return err
}

// Stop sends SIGTERM and waits for the cluster to shut down cleanly; a
// cluster that does not stop within a minute is killed and reported.
func (c *Cluster) Stop() error {
	var err error
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
			if c.cmd.ProcessState != nil && !c.cmd.ProcessState.Success() {
				err = fmt.Errorf("testcluster: %s", c.cmd.ProcessState)
			}
		case <-time.After(time.Minute):
			_ = c.cmd.Process.Kill()
			<-c.exited
			err = errors.New("testcluster did not stop within a minute of SIGTERM")
		}
	}
	if c.tempDir && err == nil {
		err = os.RemoveAll(c.Dir)
	}
	return err
}

// Kill SIGKILLs testcluster, as a crash would, and waits for it to exit;
// for the tests of what a crash leaves behind. The directory is kept.
func (c *Cluster) Kill() {
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// Command runs bin/name with the admin KUBECONFIG and bin/ first in PATH, so
// `kubectl concourse ...` finds bin/kubectl-concourse through kubectl's plugin
// discovery.
func (c *Cluster) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, name), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig, "PATH="+c.BinDir+":"+os.Getenv("PATH"))
	return cmd
}

// Env returns the environment Command uses, with extra variables appended
// (later ones win), for commands built some other way (e.g. under a pty).
func (c *Cluster) Env(extra ...string) []string {
	return append(append(os.Environ(), "KUBECONFIG="+c.Kubeconfig, "PATH="+c.BinDir+":"+os.Getenv("PATH")), extra...)
}

// Logs returns the tail of every component log, for failure messages.
func (c *Cluster) Logs() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(c.Dir, "logs", "*.log"))
	for _, f := range append(files, filepath.Join(c.Dir, "testcluster.log")) {
		data, _ := os.ReadFile(f)
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		fmt.Fprintf(&b, "==> %s <==\n%s\n", f, data)
	}
	return b.String()
}
