package views

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// WorkersOptions lists nodes as Concourse workers.
type WorkersOptions struct{ *ViewOptions }

// Run lists the worker nodes while it counts the Concourse pods per node,
// both paginated and at the same time (the API server does the work of
// either while this process waits), then prints the workers in name order
// and, with -w, follows both. Memory holds a count and a row per node,
// never the pods.
func (o *WorkersOptions) Run(ctx context.Context) error {
	p, err := o.newPrinter(workerColumns, false)
	if err != nil {
		return err
	}
	var nodes nodeList
	var pods podCount
	g, listCtx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { nodes, err = o.listWorkers(listCtx); return err })
	g.Go(func() (err error) { pods, err = o.countPods(listCtx); return err })
	if err := g.Wait(); err != nil {
		return err
	}
	table := newWorkerTable(nodes.workers, pods, o.scope)
	if err := p.add(table.rows(nodes.workers)...); err != nil {
		return err
	}
	if err := p.finish(""); err != nil || !o.Watch {
		return err
	}
	return follow(ctx, func(ev watch.Event) error {
		switch obj := ev.Object.(type) {
		case *corev1.Node:
			return p.add(table.nodeChanged(obj, ev.Type == watch.Deleted)...)
		case *corev1.Pod:
			return p.add(table.podChanged(obj, ev.Type == watch.Deleted)...)
		}
		return nil
	},
		source{rv: nodes.rv, opts: metav1.ListOptions{LabelSelector: nodes.sel}, watch: o.Client.CoreV1().Nodes().Watch},
		source{rv: pods.rv, opts: metav1.ListOptions{LabelSelector: pods.sel}, watch: o.Client.CoreV1().Pods(pods.namespace).Watch},
	)
}

// nodeList is the worker nodes as listed, and how to watch them.
type nodeList struct {
	workers []*Worker // in name order, as the API returns nodes and fly sorts
	sel, rv string
}

// listWorkers lists the nodes of the contract that the filters match.
func (o *WorkersOptions) listWorkers(ctx context.Context) (nodeList, error) {
	sel, err := o.workerSelector(ctx)
	if err != nil {
		return nodeList{}, err
	}
	l := nodeList{sel: sel}
	l.rv, err = eachPage(ctx, o.ChunkSize, metav1.ListOptions{LabelSelector: sel}, o.Client.CoreV1().Nodes().List,
		func(page *corev1.NodeList) error {
			for i := range page.Items {
				if o.scope.Matches(&page.Items[i]) {
					l.workers = append(l.workers, newWorker(&page.Items[i], 0))
				}
			}
			return nil
		})
	if err != nil {
		return nodeList{}, fmt.Errorf("list nodes: %w", err)
	}
	return l, nil
}

// workerSelector is the node selector of the contract: the nodes labelled
// as workers when any node is, else every node.
func (o *WorkersOptions) workerSelector(ctx context.Context) (string, error) {
	marked := selector.MarkedWorkers()
	probe, err := o.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{
		LabelSelector: labels.NewSelector().Add(marked).String(), Limit: 1,
	})
	if err != nil {
		return "", fmt.Errorf("list worker nodes: %w", err)
	}
	if len(probe.Items) > 0 {
		return o.scope.Selector(marked), nil
	}
	return o.scope.Selector(), nil
}

// podCount is the Concourse pods bound to each node, and how to watch them.
type podCount struct {
	perNode   map[string]int
	podNode   map[string]string // namespace/pod -> node, kept only with -w to follow pods that go
	namespace string            // where the pods were counted ("" for all)
	sel, rv   string
}

// countPods counts the Concourse pods per node in every namespace (only
// the one -n names), or in the current namespace when every namespace is
// forbidden. The count is about the whole worker, not a team: the filters
// do not apply.
func (o *WorkersOptions) countPods(ctx context.Context) (podCount, error) {
	c := podCount{perNode: map[string]int{}, podNode: map[string]string{}, namespace: metav1.NamespaceAll}
	if o.ExplicitNamespace {
		c.namespace = o.Namespace
	}
	c.sel = selector.Scope{}.Selector(selector.ManagedPods())
	count := func(pods []*corev1.Pod) error {
		for _, pod := range pods {
			if pod.Spec.NodeName != "" {
				c.perNode[pod.Spec.NodeName]++
				if o.Watch {
					c.podNode[podKey(pod)] = pod.Spec.NodeName
				}
			}
		}
		return nil
	}
	var err error
	c.rv, err = o.eachPod(ctx, c.namespace, c.sel, selector.Scope{}, count)
	if apierrors.IsForbidden(err) && c.namespace == metav1.NamespaceAll {
		fmt.Fprintf(o.ErrOut, "warning: cannot list pods in all namespaces, counting containers in namespace %s only\n", o.Namespace)
		c.namespace = o.Namespace
		c.rv, err = o.eachPod(ctx, c.namespace, c.sel, selector.Scope{}, count)
	}
	if err != nil {
		return podCount{}, fmt.Errorf("count containers: list pods: %w", err)
	}
	return c, nil
}

func podKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

// workerTable is what -w keeps to reprint the rows that change: the
// workers shown, the pods per node, and which node each pod is on.
type workerTable struct {
	workers map[string]*Worker
	count   podCount
	scope   selector.Scope
}

func newWorkerTable(workers []*Worker, count podCount, scope selector.Scope) *workerTable {
	t := &workerTable{workers: map[string]*Worker{}, count: count, scope: scope}
	for _, w := range workers {
		w.Containers = count.perNode[w.Name]
		t.workers[w.Name] = w
	}
	return t
}

// rows are the workers as items, in their order.
func (t *workerTable) rows(workers []*Worker) []item {
	rows := make([]item, len(workers))
	for i, w := range workers {
		rows[i] = w
	}
	return rows
}

// nodeChanged records a node's new state and returns its row to print, if
// it is (still) a worker the filters match.
func (t *workerTable) nodeChanged(node *corev1.Node, deleted bool) []item {
	if deleted || !t.scope.Matches(node) {
		delete(t.workers, node.Name)
		return nil
	}
	w := newWorker(node, t.count.perNode[node.Name])
	t.workers[w.Name] = w
	return []item{w}
}

// podChanged moves a pod's count to the node it is now bound to (none when
// deleted) and returns the rows of the workers whose count changed.
func (t *workerTable) podChanged(pod *corev1.Pod, deleted bool) []item {
	key := podKey(pod)
	old, node := t.count.podNode[key], pod.Spec.NodeName
	if deleted {
		node = ""
	}
	if old == node {
		return nil
	}
	if node == "" {
		delete(t.count.podNode, key)
	} else {
		t.count.podNode[key] = node
	}
	var changed []*Worker
	for _, move := range []struct {
		node  string
		delta int
	}{{old, -1}, {node, 1}} {
		if move.node == "" {
			continue
		}
		t.count.perNode[move.node] += move.delta
		if w := t.workers[move.node]; w != nil {
			w.Containers = t.count.perNode[move.node]
			changed = append(changed, w)
		}
	}
	slices.SortFunc(changed, func(a, b *Worker) int { return strings.Compare(a.Name, b.Name) })
	return t.rows(changed)
}

// ContainersOptions lists the step containers of Concourse pods.
type ContainersOptions struct{ *ViewOptions }

// Run prints each page of pods as it comes: the API returns pods sorted by
// namespace and name, so the rows need no sort and memory holds one page.
func (o *ContainersOptions) Run(ctx context.Context) error {
	p, err := o.newPrinter(containerColumns, true)
	if err != nil {
		return err
	}
	pods, err := o.listPods(ctx, func(pods []*corev1.Pod) error {
		var page []item
		for _, pod := range pods {
			for _, c := range newContainers(pod) {
				page = append(page, c)
			}
		}
		return p.add(page...)
	})
	if err != nil {
		return err
	}
	if err := p.finish(o.where()); err != nil || !o.Watch {
		return err
	}
	return follow(ctx, func(ev watch.Event) error {
		pod, ok := ev.Object.(*corev1.Pod)
		if !ok || !o.scope.Matches(pod) {
			return nil
		}
		var rows []item
		for _, c := range newContainers(pod) {
			if ev.Type == watch.Deleted {
				c.State = "deleted"
			}
			rows = append(rows, c)
		}
		return p.add(rows...)
	}, pods)
}

// VolumesOptions lists Concourse PVCs and the volumes of Concourse pods.
type VolumesOptions struct{ *ViewOptions }

// Run lists pods first (they tell which node and container use a PVC),
// then PVCs, and prints in fly's order (worker, handle).
func (o *VolumesOptions) Run(ctx context.Context) error {
	p, err := o.newPrinter(volumeColumns, true)
	if err != nil {
		return err
	}
	set := newVolumeSet()
	pods, err := o.listPods(ctx, func(pods []*corev1.Pod) error {
		for _, pod := range pods {
			set.addPod(pod)
		}
		return nil
	})
	if err != nil {
		return err
	}
	ns := o.listNamespace()
	pvcSel := o.scope.Selector(selector.Volumes())
	pvcRV, err := eachPage(ctx, o.ChunkSize, metav1.ListOptions{LabelSelector: pvcSel},
		o.Client.CoreV1().PersistentVolumeClaims(ns).List, func(l *corev1.PersistentVolumeClaimList) error {
			for i := range l.Items {
				if o.scope.Matches(&l.Items[i]) {
					set.addPVC(&l.Items[i])
				}
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("list persistentvolumeclaims: %w", err)
	}
	var rows []item
	for _, v := range set.items() {
		rows = append(rows, v)
	}
	if err := p.add(rows...); err != nil {
		return err
	}
	if err := p.finish(o.where()); err != nil || !o.Watch {
		return err
	}
	return follow(ctx, func(ev watch.Event) error {
		var rows []item
		switch obj := ev.Object.(type) {
		case *corev1.Pod:
			if !o.scope.Matches(obj) {
				return nil
			}
			vols, uses := podVolumes(obj)
			for claim, u := range uses {
				set.uses[obj.Namespace+"/"+claim] = u
			}
			for _, v := range vols {
				if v.Claim == "" || !set.pvcKeys[v.Namespace+"/"+v.Claim] {
					rows = append(rows, v)
				}
			}
		case *corev1.PersistentVolumeClaim:
			if !o.scope.Matches(obj) {
				return nil
			}
			var use *claimUse
			if u, ok := set.uses[obj.Namespace+"/"+obj.Name]; ok {
				use = &u
			}
			set.pvcKeys[obj.Namespace+"/"+obj.Name] = ev.Type != watch.Deleted
			rows = append(rows, newPVCVolume(obj, use))
		}
		if ev.Type == watch.Deleted {
			for _, r := range rows {
				r.(*Volume).Status = "Deleted"
			}
		}
		return p.add(rows...)
	},
		pods,
		source{rv: pvcRV, opts: metav1.ListOptions{LabelSelector: pvcSel}, watch: o.Client.CoreV1().PersistentVolumeClaims(ns).Watch},
	)
}

// BuildsOptions lists builds, grouping step pods by build.
type BuildsOptions struct{ *ViewOptions }

// Run keeps one summary per build (not the pods) and prints newest first.
func (o *BuildsOptions) Run(ctx context.Context) error {
	p, err := o.newPrinter(buildColumns, true)
	if err != nil {
		return err
	}
	set := newBuildSet()
	pods, err := o.listPods(ctx, func(pods []*corev1.Pod) error {
		for _, pod := range pods {
			set.add(pod)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var rows []item
	for _, b := range set.items() {
		rows = append(rows, b)
	}
	if err := p.add(rows...); err != nil {
		return err
	}
	if err := p.finish(o.where()); err != nil || !o.Watch {
		return err
	}
	return follow(ctx, func(ev watch.Event) error {
		pod, ok := ev.Object.(*corev1.Pod)
		if !ok || !o.scope.Matches(pod) {
			return nil
		}
		var key string
		if ev.Type == watch.Deleted {
			key = set.remove(pod.Namespace, pod.Name)
		} else {
			key = set.add(pod)
		}
		if e := set.builds[key]; e != nil {
			return p.add(e.build())
		}
		return nil
	}, pods)
}
