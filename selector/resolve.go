package selector

import (
	"cmp"
	"context"
	"fmt"
	"github.com/kubectl-concourse/kubectl-concourse/selector/labelenc"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// Match is one step container that a Target names.
type Match struct {
	Pod        *corev1.Pod
	Container  string // the step's container in Pod
	WorkingDir string // the container's workingDir, "" when the image decides

	// What the pod's labels say, decoded to Concourse's names.
	Team, Pipeline, Job, Build, BuildID string
	Step, StepType, Attempt, Resource   string
	InstanceVars                        InstanceVars
}

// Resolve finds the step containers t names, in namespace (every namespace
// with -A). It does one LIST by label selector, or one GET for --pod; only a
// handle that matches nothing is looked up again under the older label, and
// only a miss lists its surroundings to explain itself. No match is an error
// (*NoMatchError); several are sorted as fly sorts them.
func Resolve(ctx context.Context, pods corev1client.PodsGetter, namespace string, t Target) ([]Match, error) {
	q, err := t.query()
	if err != nil {
		return nil, err
	}
	if q.allNamespaces {
		namespace = metav1.NamespaceAll
	}
	if q.pod != "" {
		pod, err := pods.Pods(namespace).Get(ctx, q.pod, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get pod %s: %w", q.pod, err)
		}
		ms, err := q.matchesOf(pod)
		if err != nil {
			return nil, err
		}
		if len(ms) == 0 {
			return nil, &NoMatchError{What: q.String(), Namespace: namespace, Nearby: summarize(q.expand(pod))}
		}
		return ms, nil
	}

	sel := q.selector()
	list, err := listPods(ctx, pods, namespace, sel, 0)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", q, err)
	}
	if len(list) == 0 && q.handle != "" {
		sel = q.legacyHandleSelector()
		if list, err = listPods(ctx, pods, namespace, sel, 0); err != nil {
			return nil, fmt.Errorf("find %s: %w", q, err)
		}
	}

	var kept []*corev1.Pod
	for _, pod := range list {
		if q.podMatches(pod) {
			kept = append(kept, pod)
		}
	}
	if q.oneOff {
		kept = latestBuild(kept)
	}
	var ms []Match
	for _, pod := range kept {
		m, err := q.matchesOf(pod)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m...)
	}
	if len(ms) > 0 {
		SortMatches(ms)
		return ms, nil
	}

	miss := &NoMatchError{What: q.String(), Namespace: namespace, Selector: sel.String()}
	if len(list) > 0 {
		// The labels matched; the step, instance vars or encoded names did not.
		var near []Match
		for _, pod := range list {
			near = append(near, q.expand(pod)...)
		}
		miss.Nearby = summarize(near)
		return nil, miss
	}
	if wider, ok := q.widen(); ok {
		// Best effort: the miss is the error, whatever this LIST says.
		if around, err := listPods(ctx, pods, namespace, wider.selector(), nearbyLimit); err == nil {
			var near []Match
			for _, pod := range around {
				near = append(near, wider.expand(pod)...)
			}
			miss.Nearby = summarize(near)
		}
	}
	return nil, miss
}

// nearbyLimit bounds the LIST that explains a miss.
const nearbyLimit = 200

func listPods(ctx context.Context, pods corev1client.PodsGetter, namespace string, sel labels.Selector, limit int64) ([]*corev1.Pod, error) {
	list, err := pods.Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String(), Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	out := make([]*corev1.Pod, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

// podMatches checks what the label selector cannot: that encoded labels
// stand for the names asked for, and the instance vars.
func (q query) podMatches(pod *corev1.Pod) bool {
	l, a := pod.Labels, pod.Annotations
	for key, name := range map[string]string{
		LabelTeam: q.team, LabelPipeline: q.pipeline, LabelJob: q.job, LabelBuildName: q.build,
		LabelBuildID: q.buildID, LabelResource: q.resource, LabelStepType: q.stepType,
		LabelAttempt: q.attempt,
	} {
		if name != "" && !labelenc.HasValue(l, a, key, name) {
			return false
		}
	}
	if q.handle != "" && !labelenc.HasValue(l, a, LabelHandle, q.handle) && !labelenc.HasValue(l, a, LabelLegacyHandle, q.handle) {
		return false
	}
	return q.vars == nil || varsMatch(a, q.vars)
}

// latestBuild keeps the pods of the highest build id: fly's most recent
// one-off build.
func latestBuild(pods []*corev1.Pod) []*corev1.Pod {
	var best uint64
	var kept []*corev1.Pod
	for _, pod := range pods {
		id, err := strconv.ParseUint(pod.Labels[LabelBuildID], 10, 64)
		switch {
		case err != nil || id < best:
		case id > best:
			best, kept = id, []*corev1.Pod{pod}
		default:
			kept = append(kept, pod)
		}
	}
	return kept
}

// matchesOf returns the step containers of pod that q names.
func (q query) matchesOf(pod *corev1.Pod) ([]Match, error) {
	var ms []Match
	for _, m := range q.expand(pod) {
		if q.step != "" && m.Step != q.step {
			continue
		}
		if q.container != "" {
			m.Container, m.WorkingDir = q.container, ""
			c := FindContainer(pod, q.container)
			if c == nil {
				return nil, fmt.Errorf("--container %s: pod %s/%s has containers %s",
					q.container, pod.Namespace, pod.Name, strings.Join(containerNames(pod), ", "))
			}
			m.WorkingDir = c.WorkingDir
		}
		ms = append(ms, m)
	}
	if q.container != "" && len(ms) > 1 {
		// --container picks one container; Tekton steps collapse into it.
		ms = ms[:1]
	}
	return ms, nil
}

// expand lists the step containers of a pod: one per step-* container for
// a Tekton pod, else the container the contract names.
func (q query) expand(pod *corev1.Pod) []Match {
	base := matchFromLabels(pod)
	if _, tekton := pod.Labels[LabelTektonTaskRun]; tekton {
		var ms []Match
		for _, c := range pod.Spec.Containers {
			step, ok := strings.CutPrefix(c.Name, TektonStepPrefix)
			if !ok {
				continue
			}
			m := base
			m.Step, m.Container, m.WorkingDir = step, c.Name, c.WorkingDir
			ms = append(ms, m)
		}
		if len(ms) > 0 {
			return ms
		}
	}
	base.Container = StepContainer(pod)
	if c := FindContainer(pod, base.Container); c != nil {
		base.WorkingDir = c.WorkingDir
	}
	return []Match{base}
}

func matchFromLabels(pod *corev1.Pod) Match {
	m := Owner(pod)
	m.Pod = pod
	return m
}

// StepContainer is the contract's choice of a pod's step container: the
// concourse-ci.org/container annotation, else kubectl's default-container
// annotation, else the only container, else "main".
func StepContainer(pod *corev1.Pod) string {
	for _, key := range []string{AnnotationContainer, AnnotationDefaultContainer} {
		if name := pod.Annotations[key]; name != "" {
			return name
		}
	}
	if len(pod.Spec.Containers) == 1 {
		return pod.Spec.Containers[0].Name
	}
	return "main"
}

// FindContainer returns the container, init or ephemeral container called
// name (an ephemeral one as its common fields), or nil.
func FindContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if pod.Spec.EphemeralContainers[i].Name == name {
			return (*corev1.Container)(&pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
		}
	}
	return nil
}

func containerNames(pod *corev1.Pod) []string {
	var names []string
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		names = append(names, c.Name)
	}
	return names
}

// widen drops the most specific part of a query that matched nothing, to
// show what exists around it: a job's other builds, a pipeline's jobs.
func (q query) widen() (query, bool) {
	w := query{team: q.team, extra: q.extra, allNamespaces: q.allNamespaces}
	switch {
	case q.handle != "":
		return query{}, false
	case q.build != "" || q.stepType != "" || q.attempt != "":
		w.pipeline, w.job, w.resource = q.pipeline, q.job, q.resource
		w.oneOff = q.oneOff
	case q.job != "" || q.resource != "":
		w.pipeline = q.pipeline
	default:
		// Anything managed by Concourse in the namespace.
	}
	return w, true
}

// SortMatches orders matches as fly's container sorter does (build id,
// resource, step, type) and then by attempt, namespace and pod, so output
// is stable.
func SortMatches(ms []Match) {
	slices.SortStableFunc(ms, func(a, b Match) int {
		return cmp.Or(
			CompareNumbered(a.BuildID, b.BuildID),
			CompareNumbered(a.Build, b.Build),
			cmp.Compare(a.Resource, b.Resource),
			cmp.Compare(a.Step, b.Step),
			cmp.Compare(a.StepType, b.StepType),
			CompareNumbered(a.Attempt, b.Attempt),
			cmp.Compare(a.Pod.Namespace, b.Pod.Namespace),
			cmp.Compare(a.Pod.Name, b.Pod.Name),
			cmp.Compare(a.Container, b.Container),
		)
	})
}
