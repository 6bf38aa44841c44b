package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/controlplane"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/images"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/linkproxy"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/nodeagent"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/pki"
)

type options struct {
	dir, binDir       string
	agents, synthetic int
	linkRate          int
}

// testCluster is everything `up` started, stopped in reverse order.
type testCluster struct {
	cp     *controlplane.ControlPlane
	cancel context.CancelFunc // stops agents and the proxy
	wg     sync.WaitGroup
	failed chan error // a component died
}

// start brings the cluster up within startCtx; agents and the proxy then run
// until runCtx ends or stop is called.
func start(startCtx, runCtx context.Context, o options) (*testCluster, error) {
	cp, err := controlplane.Up(startCtx, controlplane.Options{Dir: o.dir, BinDir: o.binDir})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(runCtx)
	c := &testCluster{cp: cp, cancel: cancel, failed: make(chan error, o.agents+1)}

	imagesDir := filepath.Join(o.dir, "images")
	if err := images.Ensure(imagesDir, filepath.Join(o.binDir, "pause")); err != nil {
		return c, fmt.Errorf("images: %w", err)
	}
	for i := 1; i <= o.agents; i++ {
		cfg := nodeagent.Config{
			Client:          cp.Client,
			NodeName:        fmt.Sprintf("node-%d", i),
			StateDir:        filepath.Join(o.dir, "nodes", fmt.Sprintf("node-%d", i)),
			ImagesDir:       imagesDir,
			Address:         "127.0.0.1",
			ServingCertFile: cp.NodeServing.CertFile,
			ServingKeyFile:  cp.NodeServing.KeyFile,
			ClientCAFile:    cp.KubeletClientCA,
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if err := nodeagent.Run(runCtx, cfg); err != nil && runCtx.Err() == nil {
				c.failed <- fmt.Errorf("node agent %s: %w", cfg.NodeName, err)
			}
		}()
		if err := waitNodeReady(startCtx, cp, cfg.NodeName); err != nil {
			return c, err
		}
	}
	if err := createSyntheticNodes(startCtx, cp.Client, o.synthetic); err != nil {
		return c, err
	}
	if o.linkRate > 0 {
		if err := c.startLinkProxy(runCtx, o); err != nil {
			return c, err
		}
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.watchControlPlane(runCtx)
	}()
	return c, nil
}

func (c *testCluster) startLinkProxy(ctx context.Context, o options) error {
	p, err := linkproxy.Listen(c.cp.Server[len("https://"):], o.linkRate)
	if err != nil {
		return err
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		p.Serve(ctx)
	}()
	admin := pki.Pair{CertFile: filepath.Join(o.dir, "pki", "admin.crt"), KeyFile: filepath.Join(o.dir, "pki", "admin.key")}
	return pki.WriteKubeconfig(filepath.Join(o.dir, "kubeconfig-limited"), "https://"+p.Addr(), c.cp.CA.CertFile, admin, "admin", "")
}

// watchControlPlane reports a control-plane process that dies while the
// cluster runs, so `up` exits instead of serving a broken cluster.
func (c *testCluster) watchControlPlane(ctx context.Context) {
	for {
		if err := c.cp.Healthy(); err != nil {
			c.failed <- err
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// stop ends the agents first (they kill their pods' processes and unmount),
// then the control plane.
func (c *testCluster) stop() {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	if c.cp != nil {
		c.cp.Stop()
	}
}

func waitNodeReady(ctx context.Context, cp *controlplane.ControlPlane, name string) error {
	return pollUntil(ctx, "node "+name+" Ready", func(ctx context.Context) error {
		n, err := cp.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("node %s not Ready", name)
	})
}
