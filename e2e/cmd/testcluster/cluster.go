package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/controlplane"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/images"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/linkproxy"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/nodeagent"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/nodekind"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/pki"
)

type options struct {
	dir, binDir                  string
	agents, realNodes, synthetic int
	linkRate                     int
}

// testCluster is everything `up` started, stopped in reverse order.
type testCluster struct {
	cp        *controlplane.ControlPlane
	cancel    context.CancelFunc // stops agents, the registry and the proxy
	wg        sync.WaitGroup
	realNodes []*realNode
	failed    chan error // a component died
}

// start brings the cluster up within startCtx; agents and the proxy then run
// until runCtx ends or stop is called.
func start(startCtx, runCtx context.Context, o options) (*testCluster, error) {
	cp, err := controlplane.Up(startCtx, controlplane.Options{Dir: o.dir, BinDir: o.binDir})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(runCtx)
	c := &testCluster{cp: cp, cancel: cancel, failed: make(chan error, o.agents+o.realNodes+1)}

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
			Labels:          map[string]string{nodekind.Label: string(nodekind.Agent)},
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
	if o.realNodes > 0 {
		registry, err := c.startRegistry(runCtx, imagesDir)
		if err != nil {
			return c, err
		}
		for i := 1; i <= o.realNodes; i++ {
			began := time.Now()
			n, err := c.startRealNode(startCtx, o, fmt.Sprintf("real-%d", i), registry)
			if n != nil {
				c.realNodes = append(c.realNodes, n)
			}
			if err != nil {
				return c, err
			}
			log.Printf("real node %s: Ready in %s, node IP %s (slot %d)", n.name, time.Since(began).Round(10*time.Millisecond), n.info.NodeIP, n.info.Slot)
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				select {
				case <-n.done:
					c.failed <- fmt.Errorf("real node %s exited: %v (see logs/%s.log)", n.name, n.err, n.name)
				case <-runCtx.Done():
				}
			}()
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

// stop ends the nodes first (agents kill their pods' processes and unmount,
// real nodes kill their containers and clean up the host, and their Nodes
// are deleted), then the control plane. It reports what it could not clean.
func (c *testCluster) stop() error {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	var wg sync.WaitGroup
	nodeErrs := make([]error, len(c.realNodes))
	for i, n := range c.realNodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.stop(); err != nil {
				nodeErrs[i] = fmt.Errorf("real node %s: %w", n.name, err)
			}
			if err := c.deleteNodeObject(n.name); err != nil {
				nodeErrs[i] = errors.Join(nodeErrs[i], fmt.Errorf("delete Node %s: %w", n.name, err))
			}
		}()
	}
	wg.Wait()
	var volumes []string
	if c.cp != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		dirs, err := c.cp.ProvisionedDirs(ctx)
		cancel()
		if err != nil {
			nodeErrs = append(nodeErrs, fmt.Errorf("list the provisioned volumes: %w", err))
		}
		volumes = dirs
		c.cp.Stop()
	}
	for _, d := range volumes {
		if err := os.RemoveAll(d); err != nil {
			nodeErrs = append(nodeErrs, fmt.Errorf("remove volume %s: %w", d, err))
		}
	}
	return errors.Join(nodeErrs...)
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
