// Command testcluster runs the kubectl-concourse test cluster: a real control
// plane built from modules plus our node agent, which runs pods as local
// chrooted processes.
//
//	testcluster up --dir DIR [--agents N] [--nodes N] [--link-rate BYTES_PER_SECOND]
//
// It writes DIR/kubeconfig, prints "ready" once everything is healthy, and on
// SIGINT or SIGTERM stops every process it started, unmounts what it mounted
// and exits 0.
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
	if len(args) == 0 || args[0] != "up" {
		return errors.New("usage: testcluster up --dir DIR [--agents N] [--nodes N] [--link-rate BYTES_PER_SECOND]")
	}
	fs := flag.NewFlagSet("testcluster up", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.dir, "dir", "", "state directory (created); DIR/kubeconfig is the admin kubeconfig")
	fs.StringVar(&o.binDir, "bin", "", "directory of etcd, kube-apiserver, ... and pause (default: beside this binary)")
	fs.IntVar(&o.agents, "agents", 1, "nodes that really run pods (node-1, node-2, ...)")
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
			c.stop()
		}
		return err
	}
	fmt.Println("ready")
	select {
	case <-ctx.Done():
	case err = <-c.failed:
		fmt.Fprintf(os.Stderr, "testcluster: %v\n", err)
	}
	c.stop()
	return err
}
