// Command testcluster runs the kubectl-concourse test cluster: a real control
// plane built from modules, our node agent, which runs pods as local
// chrooted processes, and optionally real nodes (kubelet, containerd, runc).
//
//	testcluster up --dir DIR [--agents N] [--real-nodes N] [--nodes N] [--link-rate BYTES_PER_SECOND]
//	testcluster check [--require]
//
// up writes DIR/kubeconfig, prints "ready" once everything is healthy, and on
// SIGINT or SIGTERM stops every process it started, removes what it set up
// on the host and exits 0. check says whether this machine can run real nodes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "testcluster: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	const usage = "usage: testcluster up --dir DIR [--agents N] [--real-nodes N] [--nodes N] [--link-rate BYTES_PER_SECOND] | testcluster check [--require]"
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "up":
	case "check":
		return runCheck(args[1:])
	case "node":
		return runNode(args[1:])
	default:
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("testcluster up", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.dir, "dir", "", "state directory (created); DIR/kubeconfig is the admin kubeconfig")
	fs.StringVar(&o.binDir, "bin", "", "directory of etcd, kube-apiserver, ... and pause (default: beside this binary)")
	fs.IntVar(&o.agents, "agents", 1, "nodes that really run pods (node-1, node-2, ...)")
	fs.IntVar(&o.realNodes, "real-nodes", 0, "real nodes (kubelet, containerd, runc): real-1, real-2, ...; tainted, so that only pods that ask run there")
	fs.IntVar(&o.synthetic, "nodes", 0, "extra Nodes that only exist as objects (synthetic-0001, ...), tainted so nothing is scheduled there")
	fs.IntVar(&o.linkRate, "link-rate", 0, "if set, also serve the API through a proxy limited to this many bytes/s each way; DIR/kubeconfig-limited uses it")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if o.dir == "" {
		return errors.New("--dir is required")
	}
	if o.agents < 1 {
		return errors.New("--agents must be at least 1")
	}
	if o.realNodes < 0 {
		return errors.New("--real-nodes must not be negative")
	}
	if o.binDir == "" {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		o.binDir = filepath.Dir(self)
	}
	var err error
	if o.dir, err = filepath.Abs(o.dir); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	startCtx, cancelStart := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelStart()
	c, err := start(startCtx, ctx, o)
	if err != nil {
		if c != nil {
			err = errors.Join(err, c.stop())
		}
		return err
	}
	fmt.Println("ready")
	select {
	case <-ctx.Done():
	case err = <-c.failed:
		fmt.Fprintf(os.Stderr, "testcluster: %v\n", err)
	}
	return errors.Join(err, c.stop())
}
