package manage

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// worker is a node of the contract and the state it is in.
type worker struct {
	node       *corev1.Node
	unfinished int // Concourse step pods bound to it that have not ended
	state      string
}

// getWorker reads the node name as a Concourse worker: it must be one of
// the contract's workers (docs/labels.md), and its state counts the
// unfinished step pods bound to it in every namespace.
func (o *Options) getWorker(ctx context.Context, name string) (worker, error) {
	node, err := o.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return worker{}, fmt.Errorf("worker %q not found: there is no node %s", name, name)
	}
	if err != nil {
		return worker{}, cmderr.ExplainForbidden(fmt.Errorf("get node %s: %w", name, err), "", "get", "nodes")
	}
	workers, err := selector.WorkerSelector(ctx, o.Client.CoreV1().Nodes())
	if err != nil {
		return worker{}, err
	}
	if !workers.Matches(labels.Set(node.Labels)) {
		return worker{}, fmt.Errorf("node %s is not a Concourse worker: workers are the nodes labelled %s", name, workers)
	}
	return o.workerOf(ctx, node)
}

func (o *Options) workerOf(ctx context.Context, node *corev1.Node) (worker, error) {
	pods, err := o.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		LabelSelector: labels.NewSelector().Add(selector.ManagedPods()).String(),
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node.Name).String(),
	})
	if err != nil {
		return worker{}, cmderr.ExplainForbidden(fmt.Errorf("list the pods on node %s: %w", node.Name, err), "", "list", "pods")
	}
	w := worker{node: node}
	for i := range pods.Items {
		if selector.Unfinished(&pods.Items[i]) {
			w.unfinished++
		}
	}
	w.state = selector.WorkerState(node, w.unfinished)
	return w, nil
}

// LandWorkerOptions is fly land-worker: the worker takes no new steps and
// lets those it runs finish.
type LandWorkerOptions struct {
	Options
	Worker string // -w
}

// Validate checks the flags; fly requires -w (fly/commands/land_worker.go:11).
func (o *LandWorkerOptions) Validate() error {
	if o.Worker == "" {
		return errors.New("-w/--worker is required")
	}
	return nil
}

// Run cordons the node, which is what landing is on Kubernetes: nothing is
// evicted, so the steps it runs finish, and workers shows it landing until
// none is left, then landed (Concourse's LandFinishedLandingWorkers,
// atc/db/worker_lifecycle.go:148-176).
func (o *LandWorkerOptions) Run(ctx context.Context) error {
	w, err := o.getWorker(ctx, o.Worker)
	if err != nil {
		return err
	}
	if !w.node.Spec.Unschedulable {
		patch := []byte(`{"spec":{"unschedulable":true}}`)
		if _, err := o.Client.CoreV1().Nodes().Patch(ctx, o.Worker, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return cmderr.ExplainForbidden(fmt.Errorf("cordon node %s: %w", o.Worker, err), "", "patch", "nodes")
		}
	}
	fmt.Fprintf(o.Out, "landed '%s'\n", o.Worker) // fly's words (fly/commands/land_worker.go:45)
	if w.unfinished > 0 {
		fmt.Fprintf(o.ErrOut, "%d step pods on it are still to finish: workers shows it landing until they do, then landed\n", w.unfinished)
	}
	return nil
}

// PruneWorkerOptions is fly prune-worker: forget a worker that is gone.
type PruneWorkerOptions struct {
	Options
	Worker     string // -w
	AllStalled bool   // -a
}

// Validate checks the flags, with fly's message
// (fly/commands/prune_worker.go:18-20).
func (o *PruneWorkerOptions) Validate() error {
	if o.Worker == "" && !o.AllStalled {
		//lint:ignore ST1005 fly's own words, which scripts may match
		return errors.New("Either a worker name or --all-stalled are required")
	}
	return nil
}

// errRunning is the ATC's refusal to prune a running worker
// (atc/api/workerserver/prune.go:35-38).
var errRunning = errors.New("cannot prune running worker")

// Run deletes the Node object of each worker named (or of every stalled
// one), only if it is stalled or landed as last read (prune). Concourse also prunes a landing worker; here that would orphan
// the step pods still running on it, so prune-worker waits for landed.
func (o *PruneWorkerOptions) Run(ctx context.Context) error {
	var targets []worker
	if o.Worker != "" {
		w, err := o.getWorker(ctx, o.Worker)
		if err != nil {
			return err
		}
		if err := unprunable(w); err != nil {
			return err
		}
		targets = append(targets, w)
	}
	if o.AllStalled {
		stalled, err := o.stalledWorkers(ctx)
		if err != nil {
			return err
		}
		if len(stalled) == 0 && len(targets) == 0 {
			fmt.Fprintln(o.Out, "WARNING: No stalled workers found.") // fly/commands/prune_worker.go:50
		}
		targets = append(targets, stalled...)
	}
	for _, w := range targets {
		if err := o.prune(ctx, w); err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "pruned '%s'\n", w.node.Name) // fly/commands/prune_worker.go:60
	}
	return nil
}

// unprunable is why w may not be pruned: it runs steps, or may.
func unprunable(w worker) error {
	switch w.state {
	case selector.WorkerRunning:
		return fmt.Errorf("%w: %s is running; land it first (land-worker -w %s)", errRunning, w.node.Name, w.node.Name)
	case selector.WorkerLanding:
		return fmt.Errorf("cannot prune landing worker: %d step pods on %s have not finished; prune it once workers shows it landed", w.unfinished, w.node.Name)
	}
	return nil
}

// pruneAttempts bounds how often prune reads a node again that changed
// between its read and its deletion.
const pruneAttempts = 5

// prune deletes w's node only as it was read (its UID and resource
// version), so that a worker that came back in between is never pruned.
// Controllers write to nodes that stall (the node lifecycle controller
// taints a node the moment it is not ready): a node that changed is read
// again and pruned if it still may be.
func (o *PruneWorkerOptions) prune(ctx context.Context, w worker) error {
	nodes := o.Client.CoreV1().Nodes()
	name := w.node.Name
	for attempt := 1; ; attempt++ {
		rv := w.node.ResourceVersion
		err := nodes.Delete(ctx, name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &w.node.UID, ResourceVersion: &rv},
		})
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) {
			return cmderr.ExplainForbidden(fmt.Errorf("delete node %s: %w", name, err), "", "delete", "nodes")
		}
		if attempt == pruneAttempts {
			return fmt.Errorf("node %s changed %d times while it was being pruned: not pruned; run prune-worker again", name, attempt)
		}
		was := w.state
		node, err := nodes.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return cmderr.ExplainForbidden(fmt.Errorf("node %s changed since it was read as %s, and reading it again: %w", name, was, err), "", "get", "nodes")
		}
		if node.UID != w.node.UID {
			return fmt.Errorf("node %s was replaced by a new one since it was read as %s: not pruned", name, was)
		}
		if w, err = o.workerOf(ctx, node); err != nil {
			return err
		}
		if err := unprunable(w); err != nil {
			return fmt.Errorf("node %s changed since it was read as %s: %w", name, was, err)
		}
	}
}

func (o *PruneWorkerOptions) stalledWorkers(ctx context.Context) ([]worker, error) {
	sel, err := selector.WorkerSelector(ctx, o.Client.CoreV1().Nodes())
	if err != nil {
		return nil, err
	}
	nodes, err := o.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, cmderr.ExplainForbidden(fmt.Errorf("list nodes: %w", err), "", "list", "nodes")
	}
	var stalled []worker
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if n.Name == o.Worker {
			continue // already named with -w
		}
		if selector.WorkerState(n, 0) == selector.WorkerStalled {
			stalled = append(stalled, worker{node: n, state: selector.WorkerStalled})
		}
	}
	return stalled, nil
}
