package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/images"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/nodekind"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/realnode"
)

// realNode is one `testcluster node` child process.
type realNode struct {
	name string
	cmd  *exec.Cmd
	info realnode.Info
	done chan struct{}
	err  error
}

// startRegistry serves the image store to the real nodes' containerd on
// a loopback port.
func (c *testCluster) startRegistry(ctx context.Context, imagesDir string) (string, error) {
	reg, err := images.NewRegistry(imagesDir)
	if err != nil {
		return "", fmt.Errorf("image registry: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: reg, ReadHeaderTimeout: 10 * time.Second}
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		_ = srv.Serve(l)
	}()
	go func() {
		defer c.wg.Done()
		<-ctx.Done()
		_ = srv.Close()
	}()
	return l.Addr().String(), nil
}

// startRealNode starts `testcluster node` for name in a new mount namespace
// and waits until its Node is Ready. The child gets SIGTERM if this process
// dies, however it dies, and then cleans up the host by itself.
func (c *testCluster) startRealNode(ctx context.Context, o options, name, registry string) (*realNode, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(o.dir, "logs", name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "node", "--dir", o.dir, "--name", name, "--bin", o.binDir,
		"--server", c.cp.Server, "--registry", registry)
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGTERM, Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start real node %s: %w", name, err)
	}
	n := &realNode{name: name, cmd: cmd, done: make(chan struct{})}
	readyLine := make(chan realnode.Info, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if info, ok := realnode.ParseReadyLine(lines.Text()); ok {
				readyLine <- info
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		n.err = cmd.Wait()
		logFile.Close()
		close(n.done)
	}()
	select {
	case n.info = <-readyLine:
	case <-n.done:
		return n, fmt.Errorf("real node %s exited: %v; the end of %s:\n%s", name, n.err, logFile.Name(), tail(logFile.Name(), 2000))
	case <-ctx.Done():
		return n, fmt.Errorf("real node %s: %w", name, ctx.Err())
	}
	readyCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-n.done:
			cancel()
		case <-readyCtx.Done():
		}
	}()
	if err := waitNodeReady(readyCtx, c.cp, name); err != nil {
		kubeletLog := filepath.Join(o.dir, "logs", name+"-kubelet.log")
		return n, fmt.Errorf("real node %s: %w; the end of %s:\n%s\nthe end of %s:\n%s", name, err,
			logFile.Name(), tail(logFile.Name(), 1500), kubeletLog, tail(kubeletLog, 1500))
	}
	return n, nil
}

// stop ends the node: the child stops the kubelet, kills the containers and
// cleans up the host before it exits.
func (n *realNode) stop() error {
	select {
	case <-n.done:
		return n.err
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		return n.err
	case <-time.After(time.Minute):
		_ = n.cmd.Process.Kill()
		<-n.done
		return fmt.Errorf("real node %s did not stop within a minute; killed", n.name)
	}
}

// deleteNodeObject removes a stopped real node's Node: nothing would mark
// it NotReady for an hour (--node-monitor-grace-period).
func (c *testCluster) deleteNodeObject(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.cp.Client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// runNode is `testcluster node`: it runs one real node (package realnode)
// until SIGTERM or SIGINT. testcluster up starts it; it is not meant to be
// run by hand.
func runNode(args []string) error {
	fs := flag.NewFlagSet("testcluster node", flag.ContinueOnError)
	cfg := realnode.Config{Labels: map[string]string{nodekind.Label: string(nodekind.Kubelet)},
		Taints: []string{nodekind.Taint}}
	fs.StringVar(&cfg.ClusterDir, "dir", "", "the test cluster's directory")
	fs.StringVar(&cfg.Name, "name", "", "the Node's name")
	fs.StringVar(&cfg.BinDir, "bin", "", "directory of kubelet, containerd and containerd-shim-runc-v2")
	fs.StringVar(&cfg.Server, "server", "", "the API server's URL")
	fs.StringVar(&cfg.Registry, "registry", "", "host:port of the image registry")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.ClusterDir == "" || cfg.Name == "" || cfg.BinDir == "" || cfg.Server == "" || cfg.Registry == "" {
		return errors.New("node: --dir, --name, --bin, --server and --registry are required")
	}
	logger := log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds)
	cfg.Logf = logger.Printf
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := realnode.Run(ctx, cfg, func(i realnode.Info) { fmt.Println(realnode.ReadyLine(i)) })
	if err != nil {
		logger.Printf("node %s: %v", cfg.Name, err)
	} else {
		logger.Printf("node %s: %s", cfg.Name, realnode.StoppedClean)
	}
	return err
}

// runCheck is `testcluster check`: it says whether this machine can run
// real nodes, and with --require fails when it cannot.
func runCheck(args []string) error {
	fs := flag.NewFlagSet("testcluster check", flag.ContinueOnError)
	binDir := fs.String("bin", "", "directory of the cluster's binaries (default: beside this binary)")
	require := fs.Bool("require", false, "exit 1 if real nodes cannot run here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *binDir == "" {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		*binDir = filepath.Dir(self)
	}
	if err := realnode.Prerequisites(*binDir); err != nil {
		fmt.Printf("testcluster: real nodes: no: %s\n", strings.TrimPrefix(err.Error(), "this machine cannot run a real node; it "))
		if *require {
			return errors.New("real nodes are required here")
		}
		return nil
	}
	fmt.Println("testcluster: real nodes: yes (kubelet, containerd and runc are all here)")
	return nil
}

func tail(file string, n int) string {
	data, _ := os.ReadFile(file)
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}
