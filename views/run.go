package views

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// WorkersOptions lists nodes as Concourse workers.
type WorkersOptions struct{ *ViewOptions }

// Run counts the Concourse pods per node while it lists the worker nodes,
// both paginated and at the same time (the API server does the work of
// either while this process waits), then prints the workers in name order.
// Memory holds a count and a row per node, never the pods.
func (o *WorkersOptions) Run(ctx context.Context) error {
	p, err := o.newPrinter(workerColumns, false)
	if err != nil {
		return err
	}
	listCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	type nodesResult struct {
		workers []*Worker // in name order, as the API returns nodes and fly sorts
		sel, rv string
		err     error
	}
	nodesDone := make(chan nodesResult, 1)
	go func() {
		r := nodesResult{}
		defer func() { nodesDone <- r }()
		if r.sel, r.err = o.workerSelector(listCtx); r.err != nil {
			return
		}
		r.rv, r.err = eachPage(listCtx, o.ChunkSize, metav1.ListOptions{LabelSelector: r.sel}, o.Client.CoreV1().Nodes().List,
			func(l *corev1.NodeList) error {
				for i := range l.Items {
					if o.matches(&l.Items[i]) {
						r.workers = append(r.workers, newWorker(&l.Items[i], 0))
					}
				}
				return nil
			})
		if r.err != nil {
			r.err = fmt.Errorf("list nodes: %w", r.err)
		}
	}()

	counts := map[string]int{}
	podNode := map[string]string{} // namespace/pod -> node, to follow pods that go (-w)
	namespace := metav1.NamespaceAll
	if o.ExplicitNamespace {
		namespace = o.Namespace
	}
	podSel := labels.NewSelector().Add(concoursePods()).String()
	countPods := func(pods []*corev1.Pod) error {
		for _, pod := range pods {
			if pod.Spec.NodeName != "" {
				counts[pod.Spec.NodeName]++
				if o.Watch {
					podNode[pod.Namespace+"/"+pod.Name] = pod.Spec.NodeName
				}
			}
		}
		return nil
	}
	// The pod count is about the whole worker, not a team: no filters here.
	countOpts := *o.ViewOptions
	countOpts.filterValues, countOpts.vars = nil, nil
	podRV, err := countOpts.eachPod(listCtx, namespace, podSel, countPods)
	if apierrors.IsForbidden(err) && namespace == metav1.NamespaceAll {
		fmt.Fprintf(o.ErrOut, "warning: cannot list pods in all namespaces, counting containers in namespace %s only\n", o.Namespace)
		namespace = o.Namespace
		podRV, err = countOpts.eachPod(listCtx, namespace, podSel, countPods)
	}
	if err != nil {
		cancel()
		<-nodesDone
		return fmt.Errorf("count containers: list pods: %w", err)
	}
	nodes := <-nodesDone
	if nodes.err != nil {
		return nodes.err
	}

	workers := map[string]*Worker{} // kept only to reprint rows with -w
	rows := make([]item, len(nodes.workers))
	for i, w := range nodes.workers {
		w.Containers = counts[w.Name]
		rows[i] = w
		if o.Watch {
			workers[w.Name] = w
		}
	}
	if err := p.add(rows...); err != nil {
		return err
	}
	if err := p.finish(""); err != nil || !o.Watch {
		return err
	}
	nodeSel, nodeRV := nodes.sel, nodes.rv

	return follow(ctx, func(ev watch.Event) error {
		switch obj := ev.Object.(type) {
		case *corev1.Node:
			if ev.Type == watch.Deleted || !o.matches(obj) {
				delete(workers, obj.Name)
				return nil
			}
			w := newWorker(obj, counts[obj.Name])
			workers[w.Name] = w
			return p.add(w)
		case *corev1.Pod:
			key := obj.Namespace + "/" + obj.Name
			old, node := podNode[key], obj.Spec.NodeName
			if ev.Type == watch.Deleted {
				node = ""
			}
			if old == node {
				return nil
			}
			var changed []*Worker
			for n, delta := range map[string]int{old: -1, node: 1} {
				if n == "" {
					continue
				}
				counts[n] += delta
				if w := workers[n]; w != nil {
					w.Containers = counts[n]
					changed = append(changed, w)
				}
			}
			if node == "" {
				delete(podNode, key)
			} else {
				podNode[key] = node
			}
			slices.SortFunc(changed, func(a, b *Worker) int { return strings.Compare(a.Name, b.Name) })
			rows := make([]item, len(changed))
			for i, w := range changed {
				rows[i] = w
			}
			return p.add(rows...)
		}
		return nil
	},
		source{rv: nodeRV, opts: metav1.ListOptions{LabelSelector: nodeSel}, watch: o.Client.CoreV1().Nodes().Watch},
		source{rv: podRV, opts: metav1.ListOptions{LabelSelector: podSel}, watch: o.Client.CoreV1().Pods(namespace).Watch},
	)
}

// workerSelector is the node selector of the contract: the nodes labelled
// concourse-ci.org/worker=true when any node is, else every node.
func (o *WorkersOptions) workerSelector(ctx context.Context) (string, error) {
	marked := requirement(selector.LabelWorker, selection.Equals, "true")
	probe, err := o.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{
		LabelSelector: labels.NewSelector().Add(marked).String(), Limit: 1,
	})
	if err != nil {
		return "", fmt.Errorf("list worker nodes: %w", err)
	}
	if len(probe.Items) > 0 {
		return o.selectorFor(marked), nil
	}
	return o.selectorFor(), nil
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
	sel := o.selectorFor(concoursePods())
	ns := o.listNamespace()
	rv, err := o.eachPod(ctx, ns, sel, func(pods []*corev1.Pod) error {
		var page []item
		for _, pod := range pods {
			for _, c := range newContainers(pod) {
				page = append(page, c)
			}
		}
		return p.add(page...)
	})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	if err := p.finish(o.where()); err != nil || !o.Watch {
		return err
	}
	return follow(ctx, func(ev watch.Event) error {
		pod, ok := ev.Object.(*corev1.Pod)
		if !ok || !o.matches(pod) {
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
	}, source{rv: rv, opts: metav1.ListOptions{LabelSelector: sel}, watch: o.Client.CoreV1().Pods(ns).Watch})
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
	ns := o.listNamespace()
	podSel := o.selectorFor(concoursePods())
	podRV, err := o.eachPod(ctx, ns, podSel, func(pods []*corev1.Pod) error {
		for _, pod := range pods {
			set.addPod(pod)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	pvcSel := o.selectorFor(requirement(selector.LabelVolumeType, selection.Exists))
	pvcRV, err := eachPage(ctx, o.ChunkSize, metav1.ListOptions{LabelSelector: pvcSel},
		o.Client.CoreV1().PersistentVolumeClaims(ns).List, func(l *corev1.PersistentVolumeClaimList) error {
			for i := range l.Items {
				if o.matches(&l.Items[i]) {
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
			if !o.matches(obj) {
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
			if !o.matches(obj) {
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
		source{rv: podRV, opts: metav1.ListOptions{LabelSelector: podSel}, watch: o.Client.CoreV1().Pods(ns).Watch},
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
	ns := o.listNamespace()
	sel := o.selectorFor(concoursePods())
	rv, err := o.eachPod(ctx, ns, sel, func(pods []*corev1.Pod) error {
		for _, pod := range pods {
			set.add(pod)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
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
		if !ok || !o.matches(pod) {
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
	}, source{rv: rv, opts: metav1.ListOptions{LabelSelector: sel}, watch: o.Client.CoreV1().Pods(ns).Watch})
}
