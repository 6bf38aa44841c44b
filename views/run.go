package views

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/listwatch"
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
	return listwatch.Run(ctx, func(ev watch.Event) error {
		switch obj := ev.Object.(type) {
		case *corev1.Node:
			return p.add(table.nodeChanged(obj, ev.Type == watch.Deleted)...)
		case *corev1.Pod:
			return p.add(table.podChanged(obj, ev.Type == watch.Deleted)...)
		}
		return nil
	},
		listwatch.Source{List: listwatch.Lister(o.Client.CoreV1().Nodes().List), Watch: o.Client.CoreV1().Nodes().Watch,
			Options: metav1.ListOptions{LabelSelector: nodes.sel}, Resource: "nodes", ResourceVersion: nodes.rv},
		o.podSource(pods.namespace, pods.sel, pods.rv),
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
					l.workers = append(l.workers, newWorker(&page.Items[i], 0, 0))
				}
			}
			return nil
		})
	if err != nil {
		return nodeList{}, fmt.Errorf("list nodes: %w", err)
	}
	return l, nil
}

// workerSelector is the contract's node selector, with the filters.
func (o *WorkersOptions) workerSelector(ctx context.Context) (string, error) {
	workers, err := selector.WorkerSelector(ctx, o.Client.CoreV1().Nodes())
	if err != nil {
		return "", err
	}
	reqs, _ := workers.Requirements()
	return o.scope.Selector(reqs...), nil
}

// podCount is the Concourse pods bound to each node, and how to watch them.
type podCount struct {
	perNode    map[string]int
	unfinished map[string]int      // of perNode, those not Succeeded or Failed
	podNode    map[string]podPlace // namespace/pod -> where, kept only with -w to follow pods that go
	namespace  string              // where the pods were counted ("" for all)
	sel, rv    string
}

// podPlace is the node a pod is bound to and whether it is unfinished.
type podPlace struct {
	node       string
	unfinished bool
}

func placeOf(pod *corev1.Pod) podPlace {
	return podPlace{node: pod.Spec.NodeName, unfinished: pod.Spec.NodeName != "" && selector.Unfinished(pod)}
}

// add counts a pod at place p, or takes it away with delta -1.
func (c *podCount) add(p podPlace, delta int) {
	if p.node == "" {
		return
	}
	c.perNode[p.node] += delta
	if p.unfinished {
		c.unfinished[p.node] += delta
	}
}

// countPods counts the Concourse pods per node in every namespace (only
// the one -n names), or in the current namespace when every namespace is
// forbidden. The count is about the whole worker, not a team: the filters
// do not apply.
func (o *WorkersOptions) countPods(ctx context.Context) (podCount, error) {
	c := podCount{perNode: map[string]int{}, unfinished: map[string]int{}, podNode: map[string]podPlace{}, namespace: metav1.NamespaceAll}
	if o.ExplicitNamespace {
		c.namespace = o.Namespace
	}
	c.sel = selector.Scope{}.Selector(selector.ManagedPods())
	count := func(pods []*corev1.Pod) error {
		for _, pod := range pods {
			p := placeOf(pod)
			c.add(p, 1)
			if o.Watch && p.node != "" {
				c.podNode[podKey(pod)] = p
			}
		}
		return nil
	}
	var err error
	c.rv, err = o.eachPod(ctx, c.namespace, c.sel, selector.Scope{}, count)
	if apierrors.IsForbidden(err) && c.namespace == metav1.NamespaceAll {
		fmt.Fprintf(o.ErrOut, "warning: cannot list pods in all namespaces, counting containers in namespace %s only\n", o.Namespace)
		c.namespace = o.Namespace
		c.perNode, c.unfinished, c.podNode = map[string]int{}, map[string]int{}, map[string]podPlace{}
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
		w.setCounts(count.perNode[w.Name], count.unfinished[w.Name])
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
	w := newWorker(node, t.count.perNode[node.Name], t.count.unfinished[node.Name])
	t.workers[w.Name] = w
	return []item{w}
}

// podChanged moves a pod's count to where it is now (nowhere when
// deleted) and returns the rows of the workers whose counts changed: a
// pod that ends on a landing worker may land it.
func (t *workerTable) podChanged(pod *corev1.Pod, deleted bool) []item {
	key := podKey(pod)
	old, now := t.count.podNode[key], placeOf(pod)
	if deleted {
		now = podPlace{}
	}
	if old == now {
		return nil
	}
	if now.node == "" {
		delete(t.count.podNode, key)
	} else {
		t.count.podNode[key] = now
	}
	t.count.add(old, -1)
	t.count.add(now, 1)
	var changed []*Worker
	for _, n := range []string{old.node, now.node} {
		if w := t.workers[n]; w != nil && !slices.Contains(changed, w) {
			w.setCounts(t.count.perNode[n], t.count.unfinished[n])
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
	return listwatch.Run(ctx, func(ev watch.Event) error {
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
	return listwatch.Run(ctx, func(ev watch.Event) error {
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
		listwatch.Source{List: listwatch.Lister(o.Client.CoreV1().PersistentVolumeClaims(ns).List), Watch: o.Client.CoreV1().PersistentVolumeClaims(ns).Watch,
			Options: metav1.ListOptions{LabelSelector: pvcSel}, Resource: "persistentvolumeclaims", Namespace: ns, ResourceVersion: pvcRV},
	)
}

// BuildsOptions lists builds, grouping step pods by build.
type BuildsOptions struct {
	*ViewOptions
	Count        int    // -c: at most this many builds, newest first; 0 for all
	Since, Until string // fly's local "yyyy-mm-dd HH:mm:ss": builds that started in between

	since, until time.Time // parsed by Complete; zero when not given
}

// fly's input format of --since and --until (fly/commands/builds.go:21).
const flyInputTime = "2006-01-02 15:04:05"

// Complete parses the shared options, then --since and --until in the
// local time zone, as fly does (fly/commands/builds.go:266-284).
func (o *BuildsOptions) Complete(getter genericclioptions.RESTClientGetter, cmd *cobra.Command, args []string) error {
	if err := o.ViewOptions.Complete(getter, cmd, args); err != nil {
		return err
	}
	var err error
	if o.Since != "" {
		if o.since, err = time.ParseInLocation(flyInputTime, o.Since, o.Location); err != nil {
			return cmderr.Usagef("Since time should be in the format: %s", flyInputTime)
		}
	}
	if o.Until != "" {
		if o.until, err = time.ParseInLocation(flyInputTime, o.Until, o.Location); err != nil {
			return cmderr.Usagef("Until time should be in the format: %s", flyInputTime)
		}
	}
	return nil
}

// Validate checks the shared flags and the range.
func (o *BuildsOptions) Validate() error {
	if err := o.ViewOptions.Validate(); err != nil {
		return err
	}
	if o.Count < 0 {
		return errors.New("-c/--count must be 0 or more")
	}
	if !o.since.IsZero() && !o.until.IsZero() && o.since.After(o.until) {
		//lint:ignore ST1005 fly's own words, which scripts may match
		return errors.New("Cannot have --since after --until")
	}
	return nil
}

// Run keeps one summary per build (not the pods) and prints the newest
// first, at most --count of them. A pipeline or job that no pod names is
// an error, as fly's "pipeline/job not found": the pods are the only
// record of builds here.
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
	if err := o.notFound(len(set.builds)); err != nil {
		return err
	}
	runs, err := listTektonRuns(ctx, o.Dynamic, o.listNamespace(), o.scope.Selector(selector.ManagedPods()), o.ErrOut)
	if err != nil {
		return err
	}
	if err := p.add(o.window(set.items(runs))...); err != nil {
		return err
	}
	if err := p.finish(o.where()); err != nil || !o.Watch {
		return err
	}
	return listwatch.Run(ctx, func(ev watch.Event) error {
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
			return p.add(e.build(runs))
		}
		return nil
	}, pods)
}

// notFound is fly's error for a pipeline or job that does not exist
// (fly/commands/builds.go:167-169, 189-191), when the filters name one
// and not a pod matches. With -w the builds may be yet to come.
func (o *BuildsOptions) notFound(builds int) error {
	if builds > 0 || o.Watch {
		return nil
	}
	what, ok := o.scope.Names()
	if !ok || strings.HasPrefix(what, "team ") {
		return nil
	}
	msg := "pipeline/job not found"
	if strings.HasPrefix(what, "pipeline ") {
		msg = "pipeline not found"
	}
	return fmt.Errorf("%s: no step pods of %s%s (builds lists the builds whose pods exist)", msg, what, o.where())
}

// window keeps the builds that started within --since and --until (a
// build not started is outside any range, as in the ATC's query,
// atc/db/build_factory.go:273-279), then the first --count.
func (o *BuildsOptions) window(builds []*Build) []item {
	var rows []item
	for _, b := range builds {
		if o.Count > 0 && len(rows) == o.Count {
			break
		}
		if !o.since.IsZero() || !o.until.IsZero() {
			if b.Start == nil || (!o.since.IsZero() && b.Start.Time.Before(o.since)) || (!o.until.IsZero() && b.Start.Time.After(o.until)) {
				continue
			}
		}
		rows = append(rows, b)
	}
	return rows
}
