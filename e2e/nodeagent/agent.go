// Package nodeagent is the test cluster's kubelet: it registers a Node, runs
// the pods bound to it as chrooted local processes built from the local image
// store, writes their status back, and serves the kubelet API (exec, attach,
// container logs) that the API server proxies to.
//
// Use it either in one call, Run(ctx, cfg), or as
//
//	a := nodeagent.New(cfg)
//	go func() { errc <- a.Run(ctx) }()
//	<-a.Ready() // Node registered Ready and API serving
//
// When ctx is done, Run kills every process it started, unmounts everything
// it mounted and returns.
package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// Config configures one node agent.
type Config struct {
	Client   kubernetes.Interface // admin credentials
	NodeName string               // e.g. "node-1"
	StateDir string               // this node's pods: rootfs, volumes, logs (created)
	// ImagesDir is the image store (see package images).
	ImagesDir string
	Address   string // address the kubelet API listens on and the Node's InternalIP, e.g. "127.0.0.1"
	Port      int    // kubelet API port, 0 = pick a free one
	// ServingCertFile and ServingKeyFile are the TLS serving certificate for
	// Address, signed by the cluster CA.
	ServingCertFile, ServingKeyFile string
	// ClientCAFile is the CA that signed the API server's kubelet client
	// certificate: clients must present a certificate it verifies.
	ClientCAFile string
	Labels       map[string]string // extra node labels
	// Logf receives the agent's diagnostics; nil logs with the standard logger
	// prefixed by the node name.
	Logf func(format string, args ...any)
}

// Agent is one running node agent.
type Agent struct {
	cfg   Config
	ready chan struct{}
	port  int // the kubelet API port actually listened on

	podLister corelisters.PodLister

	mu   sync.Mutex
	pods map[types.UID]*podRuntime
	// wg counts the pod workers, so that shutdown waits for their teardown.
	wg sync.WaitGroup
}

// New returns an agent for cfg; call Run to start it.
func New(cfg Config) *Agent {
	if cfg.Logf == nil {
		prefix := fmt.Sprintf("nodeagent %s: ", cfg.NodeName)
		cfg.Logf = func(format string, args ...any) { log.Printf(prefix+format, args...) }
	}
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1"
	}
	return &Agent{cfg: cfg, ready: make(chan struct{}), pods: map[types.UID]*podRuntime{}}
}

// Run runs a node agent until ctx is done, see Agent.Run.
func Run(ctx context.Context, cfg Config) error {
	return New(cfg).Run(ctx)
}

// Ready is closed once the Node is registered Ready and the kubelet API is
// serving.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// Port is the kubelet API port; valid once Ready is closed.
func (a *Agent) Port() int { return a.port }

func (a *Agent) logf(format string, args ...any) { a.cfg.Logf(format, args...) }

// Run registers the Node, serves the kubelet API, runs the pods bound to the
// node and blocks until ctx is done; it then kills every process it started,
// unmounts everything it mounted and returns.
func (a *Agent) Run(ctx context.Context) error {
	if a.cfg.Client == nil || a.cfg.NodeName == "" || a.cfg.StateDir == "" || a.cfg.ImagesDir == "" {
		return errors.New("nodeagent: Client, NodeName, StateDir and ImagesDir are required")
	}
	stateDir, err := filepath.Abs(a.cfg.StateDir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	a.cfg.StateDir = stateDir
	// Mounts left by an agent that did not stop cleanly would pin old pod
	// directories and leak into new ones.
	if err := unmountUnder(stateDir); err != nil {
		return fmt.Errorf("clean stale mounts: %w", err)
	}
	// Pods still bound to the node are started afresh, as after a reboot.
	if err := removeUnmounted(filepath.Join(stateDir, "pods")); err != nil {
		return fmt.Errorf("clean stale pods: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(stateDir, "pods"), 0o755); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	srv, err := a.startServer(ctx)
	if err != nil {
		return err
	}
	defer srv.Close()

	if err := a.registerNode(ctx); err != nil {
		return err
	}
	heartbeatDone := make(chan struct{})
	go func() {
		defer close(heartbeatDone)
		a.heartbeat(ctx)
	}()

	if err := a.watchPods(ctx); err != nil {
		cancel()
		<-heartbeatDone
		a.shutdownPods()
		return err
	}
	close(a.ready)
	a.logf("ready, kubelet API on %s:%d", a.cfg.Address, a.port)

	<-ctx.Done()
	<-heartbeatDone
	a.shutdownPods()
	return nil
}

// shutdownPods stops every pod at once (no grace: the cluster is going away)
// and waits for their teardown, which unmounts their volumes.
func (a *Agent) shutdownPods() {
	a.mu.Lock()
	for _, p := range a.pods {
		p.stop(0)
	}
	a.mu.Unlock()
	a.wg.Wait()
	// Anything still mounted (a pod whose teardown failed) goes too.
	if err := unmountUnder(a.cfg.StateDir); err != nil {
		a.logf("unmount at shutdown: %v", err)
	}
}
