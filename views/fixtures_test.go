package views

import (
	"github.com/kubectl-concourse/kubectl-concourse/selector/labelenc"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// now is the fixed clock of the golden tests.
var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

// longPipeline is not a valid label value: it is stored encoded, and the
// annotation of the same key holds it.
const longPipeline = "überpipeline-ñandú-非常に長いパイプライン名-that-goes-on-and-on-past-sixty-three"

type nodeSpec struct {
	name        string
	ready       corev1.ConditionStatus
	cordoned    bool
	labels      map[string]string
	annotations map[string]string
	taints      []corev1.Taint
	pressure    []corev1.NodeConditionType
	age         time.Duration
}

func node(s nodeSpec) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: s.name, Labels: s.labels, Annotations: s.annotations, CreationTimestamp: ago(s.age)},
		Spec:       corev1.NodeSpec{Unschedulable: s.cordoned, Taints: s.taints},
		Status: corev1.NodeStatus{
			NodeInfo:    corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", OperatingSystem: "linux"},
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: s.ready}},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")},
		},
	}
	for _, p := range s.pressure {
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: p, Status: corev1.ConditionTrue})
	}
	return n
}

func fixtureNodes() []runtime.Object {
	return []runtime.Object{
		node(nodeSpec{name: "worker-a", ready: corev1.ConditionTrue, age: 50 * time.Hour, labels: map[string]string{
			corev1.LabelOSStable: "linux", selector.LabelWorker: "true", selector.LabelTeam: "main",
			selector.NodeTagPrefix + "gpu": "true", selector.NodeTagPrefix + "arm": "true",
		}}),
		node(nodeSpec{name: "worker-b", ready: corev1.ConditionTrue, cordoned: true, age: 3 * time.Hour, labels: map[string]string{
			corev1.LabelOSStable: "linux", selector.LabelWorker: "true",
		}, taints: []corev1.Taint{{Key: "node.kubernetes.io/unschedulable", Effect: corev1.TaintEffectNoSchedule}}}),
		node(nodeSpec{name: "worker-c", ready: corev1.ConditionUnknown, age: 90 * time.Minute, labels: map[string]string{
			corev1.LabelOSStable: "linux", selector.LabelWorker: "true", selector.LabelTeam: "ops",
		}, pressure: []corev1.NodeConditionType{corev1.NodeDiskPressure, corev1.NodeMemoryPressure},
			taints: []corev1.Taint{{Key: "dedicated", Value: "ci", Effect: corev1.TaintEffectNoExecute}}}),
		// Not a worker: some node is labelled worker=true and this one is not.
		node(nodeSpec{name: "control-plane", ready: corev1.ConditionTrue, age: 100 * time.Hour, labels: map[string]string{corev1.LabelOSStable: "linux"}}),
	}
}

// podSpec describes a Concourse step pod by its contract labels.
type podSpec struct {
	ns, name, node                 string
	team, pipeline, job, build, id string
	step, stepType, attempt, res   string
	handle, vars                   string
	tekton                         bool
	containers                     []string
	states                         []corev1.ContainerState
	age                            time.Duration
	volumes                        []corev1.Volume
	mounts                         []corev1.VolumeMount
	phase                          corev1.PodPhase
}

func pod(s podSpec) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: s.ns, Name: s.name, CreationTimestamp: ago(s.age),
			Labels:      map[string]string{selector.LabelManagedBy: selector.ManagedByValue},
			Annotations: map[string]string{},
		},
		Spec:   corev1.PodSpec{NodeName: s.node, Volumes: s.volumes},
		Status: corev1.PodStatus{Phase: s.phase},
	}
	for key, v := range map[string]string{
		selector.LabelTeam: s.team, selector.LabelPipeline: s.pipeline, selector.LabelJob: s.job,
		selector.LabelBuildName: s.build, selector.LabelBuildID: s.id, selector.LabelStepName: s.step,
		selector.LabelStepType: s.stepType, selector.LabelAttempt: s.attempt, selector.LabelResource: s.res,
		selector.LabelHandle: s.handle,
	} {
		if v == "" {
			continue
		}
		labelenc.Put(p.Labels, p.Annotations, key, v)
	}
	if s.vars != "" {
		p.Annotations[selector.AnnotationInstanceVars] = s.vars
	}
	if s.tekton {
		p.Labels[selector.LabelTektonTaskRun] = s.name
	}
	for i, c := range s.containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "busybox", WorkingDir: "/tmp/build/" + c, VolumeMounts: s.mounts})
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c, State: s.states[i]})
	}
	return p
}

func running(d time.Duration) corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(d)}}
}

func exited(code int32, from, to time.Duration) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, StartedAt: ago(from), FinishedAt: ago(to)}}
}

func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
}

func fixturePods() []runtime.Object {
	scratch := corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptrQuantity("2Gi")}}}
	cache := corev1.Volume{Name: "cache", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "unit-cache"}}}
	token := corev1.Volume{Name: "kube-api-access-x", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}}
	outputs := corev1.Volume{Name: "outputs", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "build-outputs"}}}
	return []runtime.Object{
		pod(podSpec{ns: "ci", name: "main-unit-3-build", node: "worker-a", team: "main", pipeline: "main", job: "unit", build: "3", id: "42",
			step: "build", stepType: "task", attempt: "1", handle: "0f1e2d3c-build", vars: `{"branch":"release/1.x"}`,
			containers: []string{"main"}, states: []corev1.ContainerState{exited(0, 20*time.Minute, 15*time.Minute)}, age: 21 * time.Minute, phase: corev1.PodSucceeded}),
		pod(podSpec{ns: "ci", name: "main-unit-3-unit", node: "worker-a", team: "main", pipeline: "main", job: "unit", build: "3", id: "42",
			step: "unit", stepType: "task", attempt: "1", handle: "9a8b7c6d-unit", vars: `{"branch":"release/1.x"}`,
			containers: []string{"main"}, states: []corev1.ContainerState{running(14 * time.Minute)}, age: 15 * time.Minute, phase: corev1.PodRunning,
			volumes: []corev1.Volume{scratch, cache, token},
			mounts:  []corev1.VolumeMount{{Name: "scratch", MountPath: "/tmp/build/scratch"}, {Name: "cache", MountPath: "/tmp/build/cache"}}}),
		pod(podSpec{ns: "ci", name: "main-repo-check", node: "worker-b", team: "main", pipeline: "main", id: "41",
			stepType: "check", res: "repo", containers: []string{"check"}, states: []corev1.ContainerState{exited(0, 40*time.Minute, 39*time.Minute)},
			age: 41 * time.Minute, phase: corev1.PodSucceeded}),
		pod(podSpec{ns: "ci", name: "one-off-45", node: "worker-a", team: "main", id: "45", step: "one-off", stepType: "task",
			containers: []string{"main"}, states: []corev1.ContainerState{exited(1, 5*time.Minute, 4*time.Minute)}, age: 6 * time.Minute, phase: corev1.PodFailed}),
		pod(podSpec{ns: "ops", name: "deploy-7", node: "worker-c", team: "ops", pipeline: "ops", job: "deploy", build: "7", id: "43",
			step: "deploy", stepType: "task", attempt: "1", tekton: true,
			containers: []string{"step-clone", "step-test", "sidecar-proxy"},
			states:     []corev1.ContainerState{exited(0, 10*time.Minute, 8*time.Minute), running(8 * time.Minute), running(10 * time.Minute)},
			age:        11 * time.Minute, phase: corev1.PodRunning, volumes: []corev1.Volume{outputs, {Name: "tekton-internal-tools"}},
			mounts: []corev1.VolumeMount{{Name: "outputs", MountPath: "/workspace/outputs"}}}),
		pod(podSpec{ns: "ops", name: "long-name-1", node: "worker-c", team: "ops", pipeline: longPipeline, job: "déploiement", build: "1", id: "44",
			step: "build", stepType: "task", attempt: "1", containers: []string{"main"}, states: []corev1.ContainerState{waiting("ErrImagePull")},
			age: 2 * time.Minute, phase: corev1.PodPending}),
	}
}

func ptrQuantity(s string) *resource.Quantity {
	q := resource.MustParse(s)
	return &q
}

func pvc(ns, name, volumeType string, labels, annotations map[string]string, size string, phase corev1.PersistentVolumeClaimPhase) *corev1.PersistentVolumeClaim {
	l := map[string]string{selector.LabelVolumeType: volumeType}
	for k, v := range labels {
		annotations = labelenc.Put(l, annotations, k, v)
	}
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l, Annotations: annotations, CreationTimestamp: ago(30 * time.Minute)},
		Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
		}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: phase},
	}
	if phase == corev1.ClaimBound {
		c.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}
	}
	return c
}

func fixturePVCs() []runtime.Object {
	return []runtime.Object{
		pvc("ci", "unit-cache", volumeTaskCache, map[string]string{
			selector.LabelPipeline: "main", selector.LabelJob: "unit", selector.LabelStepName: "unit", selector.LabelTeam: "main",
			selector.LabelHandle: "cache-7f",
		}, nil, "1Gi", corev1.ClaimBound),
		pvc("ci", "repo-version", volumeResource, map[string]string{
			selector.LabelPipeline: "main", selector.LabelResource: "repo", selector.LabelTeam: "main",
		}, map[string]string{selector.AnnotationVersion: `{"ref":"abc123","committed at":"2026-11-26"}`, annotationSelectedNode: "worker-b"}, "500Mi", corev1.ClaimBound),
		pvc("ops", "build-outputs", volumeContainer, map[string]string{selector.LabelTeam: "ops", selector.LabelPipeline: "ops"}, nil, "5Gi", corev1.ClaimPending),
		pvc("ops", "registry-image", volumeResourceType, map[string]string{selector.LabelResource: "registry-image", selector.LabelTeam: "ops"}, nil, "200Mi", corev1.ClaimLost),
	}
}

func fixtures() []runtime.Object {
	var objs []runtime.Object
	objs = append(objs, fixtureNodes()...)
	objs = append(objs, fixturePods()...)
	return append(objs, fixturePVCs()...)
}
