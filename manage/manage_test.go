package manage

import (
	"bytes"
	"context"
	"errors"
	"github.com/kubectl-concourse/kubectl-concourse/selector/labelenc"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-concourse/kubectl-concourse/kernel"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// testOptions are Options on a fake cluster holding objs, in namespace ci,
// with stdin as typed on a terminal (terminal true) or piped.
func testOptions(stdin string, terminal bool, objs ...runtime.Object) (Options, *fake.Clientset, *bytes.Buffer) {
	streams, in, out, _ := genericiooptions.NewTestIOStreams()
	in.WriteString(stdin)
	client := fake.NewClientset(objs...)
	return Options{IOStreams: streams, Cluster: kernel.Cluster{Namespace: "ci", Client: client}, IsTerminal: func(io.Reader) bool { return terminal }}, client, out
}

func cache(name, volumeType string, names, annotations map[string]string) *corev1.PersistentVolumeClaim {
	l := map[string]string{selector.LabelVolumeType: volumeType}
	for k, v := range names {
		annotations = labelenc.Put(l, annotations, k, v)
	}
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: name, UID: types.UID("uid-" + name), Labels: l, Annotations: annotations}}
}

func remaining(t *testing.T, c *fake.Clientset) []string {
	t.Helper()
	l, err := c.CoreV1().PersistentVolumeClaims("ci").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range l.Items {
		names = append(names, p.Name)
	}
	return names
}

func TestClearTaskCache(t *testing.T) {
	const long = "déploiement continu"
	step := func(p, j, s string) map[string]string {
		return map[string]string{selector.LabelPipeline: p, selector.LabelJob: j, selector.LabelStepName: s, selector.LabelTeam: "main"}
	}
	impostor := cache("impostor", volumeTaskCache, step(long, "unit", "test"), nil)
	impostor.Annotations[selector.LabelPipeline] = "another pipeline"
	withPath := cache("with-path", volumeTaskCache, step("main", "unit", "test"), map[string]string{selector.AnnotationCachePath: ".gradle"})
	objs := []runtime.Object{
		cache("target", volumeTaskCache, step(long, "unit", "test"), nil),
		cache("other-step", volumeTaskCache, step(long, "unit", "lint"), nil),
		cache("other-pipeline", volumeTaskCache, step("main", "unit", "test"), nil),
		cache("resource", volumeResource, step(long, "unit", "test"), nil),
		impostor, withPath,
	}
	tests := []struct {
		name, job, step, path, stdin string
		terminal, yes                bool
		wantLeft, wantOut            string
		wantErr                      string
	}{
		{name: "confirmed on a terminal", job: long + "/unit", step: "test", stdin: "y\n", terminal: true,
			wantLeft: "impostor other-pipeline other-step resource with-path", wantOut: "are you sure? [yN]: persistentvolumeclaim/target deleted\n1 caches removed\n"},
		{name: "declined", job: long + "/unit", step: "test", stdin: "no\n", terminal: true,
			wantLeft: "impostor other-pipeline other-step resource target with-path", wantOut: "bailing out\n"},
		{name: "no terminal", job: long + "/unit", step: "test",
			wantLeft: "impostor other-pipeline other-step resource target with-path", wantErr: "--non-interactive"},
		{name: "a cache path", job: "main/unit", step: "test", path: ".gradle", yes: true,
			wantLeft: "impostor other-pipeline other-step resource target", wantOut: "with-path deleted\n1 caches removed\n"},
		{name: "nothing to remove asks nothing", job: "main/none", step: "test",
			wantLeft: "impostor other-pipeline other-step resource target with-path", wantOut: "0 caches removed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var copies []runtime.Object
			for _, o := range objs {
				copies = append(copies, o.DeepCopyObject())
			}
			opts, client, out := testOptions(tt.stdin, tt.terminal, copies...)
			opts.NonInteractive = tt.yes
			o := &ClearTaskCacheOptions{Options: opts, Job: tt.job, Step: tt.step, CachePath: tt.path}
			if err := o.Validate(); err != nil {
				t.Fatal(err)
			}
			err := o.Run(t.Context())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Run() = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(remaining(t, client), " "); got != tt.wantLeft {
				t.Errorf("left %s, want %s", got, tt.wantLeft)
			}
			// fly's warning first (fly/commands/clear_task_cache.go:38-44).
			if !strings.HasPrefix(out.String(), "!!! this will remove the task cache(s) for `") && tt.wantOut != "0 caches removed\n" {
				t.Errorf("no fly warning:\n%s", out)
			}
			if !strings.HasSuffix(out.String(), tt.wantOut) {
				t.Errorf("out:\n%s\nwant it to end with:\n%s", out, tt.wantOut)
			}
		})
	}
}

// A deleted cache is removed once it is gone, as kubectl delete waits; one
// that a pod still uses stays Terminating until the pod ends, which is said
// with the pod's name instead of being counted as removed.
func TestClearTaskCacheWaitsUntilGone(t *testing.T) {
	names := map[string]string{selector.LabelPipeline: "main", selector.LabelJob: "unit", selector.LabelStepName: "test", selector.LabelTeam: "main"}
	user := func(phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "build-7"},
			Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "cache", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "target"}}}}},
			Status: corev1.PodStatus{Phase: phase}}
	}
	tests := []struct {
		name        string
		objs        []runtime.Object
		terminating int // LISTs that still show the deleted claim, Terminating (-1: every one)
		wantOut     string
		wantErr     string
	}{
		{name: "gone at once", wantOut: "persistentvolumeclaim/target deleted\n1 caches removed\n"},
		{name: "gone after a while", terminating: 3, wantOut: "persistentvolumeclaim/target deleted\n1 caches removed\n"},
		{name: "held by a running pod", objs: []runtime.Object{user(corev1.PodRunning)}, terminating: -1,
			wantOut: "persistentvolumeclaim/target deleted\n0 caches removed\n",
			wantErr: "persistentvolumeclaim target is still in use by pod ci/build-7: it is removed when the pod ends"},
		{name: "a finished pod holds nothing", objs: []runtime.Object{user(corev1.PodSucceeded)}, terminating: -1,
			wantOut: "persistentvolumeclaim/target deleted\n0 caches removed\n",
			wantErr: "persistentvolumeclaim target is still terminating after 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, client, out := testOptions("", false, append(tt.objs, cache("target", volumeTaskCache, names, nil))...)
			opts.NonInteractive, opts.DeleteTimeout = true, time.Second
			lists := 0
			client.PrependReactor("list", "persistentvolumeclaims", func(k8stesting.Action) (bool, runtime.Object, error) {
				lists++
				if lists == 1 || tt.terminating >= 0 && lists > tt.terminating+1 {
					return false, nil, nil // the tracker's answer
				}
				pvc := cache("target", volumeTaskCache, names, nil)
				pvc.DeletionTimestamp = &metav1.Time{Time: time.Now()}
				return true, &corev1.PersistentVolumeClaimList{Items: []corev1.PersistentVolumeClaim{*pvc}}, nil
			})
			o := &ClearTaskCacheOptions{Options: opts, Job: "main/unit", Step: "test"}
			if err := o.Validate(); err != nil {
				t.Fatal(err)
			}
			err := o.Run(t.Context())
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Run() = %v", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Errorf("Run() = %v, want %q", err, tt.wantErr)
			}
			if !strings.HasSuffix(out.String(), tt.wantOut) {
				t.Errorf("out:\n%s\nwant it to end with:\n%s", out, tt.wantOut)
			}
		})
	}
}

func TestClearResourceCache(t *testing.T) {
	res := func(name, version string) *corev1.PersistentVolumeClaim {
		return cache(name, volumeResource, map[string]string{selector.LabelPipeline: "main", selector.LabelResource: "repo"},
			map[string]string{selector.AnnotationVersion: version})
	}
	opts, client, out := testOptions("", false, res("v1", `{"ref":"abc","n":1}`), res("v2", `{"ref":"def"}`),
		cache("other", volumeResource, map[string]string{selector.LabelPipeline: "main", selector.LabelResource: "repo2"}, nil))
	opts.NonInteractive = true
	o := &ClearResourceCacheOptions{Options: opts, Resource: "main/repo", Version: []string{"ref:abc"}}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := o.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(remaining(t, client), " "); got != "other v2" {
		t.Errorf("left %s, want other v2", got)
	}
	// fly/commands/clear_resource_cache.go:38-47.
	if !strings.HasPrefix(out.String(), "!!! this will remove the resource cache(s) for `main/repo` with version: `{\"ref\":\"abc\"}`\n") {
		t.Errorf("out:\n%s", out)
	}
	for _, bad := range []ClearResourceCacheOptions{{}, {Resource: "repo"}, {Resource: "main/repo", Version: []string{"novalue"}}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", bad)
		}
	}
}

func node(name string, ready corev1.ConditionStatus, cordoned bool) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1"},
		Spec:       corev1.NodeSpec{Unschedulable: cordoned},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}},
	}
}

func stepPod(ns, name, nodeName, buildID string, phase corev1.PodPhase) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name),
			Labels: map[string]string{selector.LabelManagedBy: selector.ManagedByValue, selector.LabelTeam: "main",
				selector.LabelPipeline: "main", selector.LabelJob: "unit", selector.LabelBuildName: buildID[len(buildID)-1:],
				selector.LabelBuildID: buildID, selector.LabelStepName: name}},
		Spec:   corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "main"}}},
		Status: corev1.PodStatus{Phase: phase},
	}
	return p
}

func TestLandWorker(t *testing.T) {
	opts, client, out := testOptions("", false, node("n1", corev1.ConditionTrue, false),
		stepPod("ci", "running", "n1", "101", corev1.PodRunning))
	o := &LandWorkerOptions{Options: opts, Worker: "n1"}
	if err := o.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	n, _ := client.CoreV1().Nodes().Get(t.Context(), "n1", metav1.GetOptions{})
	if !n.Spec.Unschedulable {
		t.Error("land-worker did not cordon the node")
	}
	if out.String() != "landed 'n1'\n" {
		t.Errorf("out %q", out)
	}
	pods, _ := client.CoreV1().Pods("ci").List(t.Context(), metav1.ListOptions{})
	if len(pods.Items) != 1 {
		t.Error("land-worker evicted a pod")
	}
	if err := (&LandWorkerOptions{Options: opts, Worker: "nope"}).Run(t.Context()); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("an unknown worker: %v", err)
	}
}

func TestPruneWorker(t *testing.T) {
	tests := []struct {
		name    string
		objs    []runtime.Object
		o       PruneWorkerOptions
		wantErr string
		pruned  []string
	}{
		{name: "running: fly's refusal (atc/api/workerserver/prune.go:35-38)",
			objs: []runtime.Object{node("n1", corev1.ConditionTrue, false)}, o: PruneWorkerOptions{Worker: "n1"}, wantErr: "cannot prune running worker"},
		{name: "landing: a step still runs", objs: []runtime.Object{node("n1", corev1.ConditionTrue, true),
			stepPod("ci", "p", "n1", "101", corev1.PodRunning)}, o: PruneWorkerOptions{Worker: "n1"}, wantErr: "cannot prune landing worker"},
		{name: "landed", objs: []runtime.Object{node("n1", corev1.ConditionTrue, true),
			stepPod("ci", "p", "n1", "101", corev1.PodSucceeded)}, o: PruneWorkerOptions{Worker: "n1"}, pruned: []string{"n1"}},
		{name: "stalled", objs: []runtime.Object{node("n1", corev1.ConditionUnknown, false)}, o: PruneWorkerOptions{Worker: "n1"}, pruned: []string{"n1"}},
		{name: "all stalled", objs: []runtime.Object{node("n1", corev1.ConditionFalse, false), node("n2", corev1.ConditionTrue, false),
			node("n3", corev1.ConditionUnknown, true)}, o: PruneWorkerOptions{AllStalled: true}, pruned: []string{"n1", "n3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, client, out := testOptions("", false, tt.objs...)
			tt.o.Options = opts
			err := tt.o.Run(t.Context())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Run() = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			var want string
			for _, n := range tt.pruned {
				want += "pruned '" + n + "'\n"
				if _, err := client.CoreV1().Nodes().Get(t.Context(), n, metav1.GetOptions{}); err == nil {
					t.Errorf("node %s is still there", n)
				}
			}
			if out.String() != want {
				t.Errorf("out %q, want %q", out, want)
			}
		})
	}
	if err := (&PruneWorkerOptions{}).Validate(); err == nil || err.Error() != "Either a worker name or --all-stalled are required" {
		t.Errorf("Validate() = %v, want fly's message", err)
	}
}

// A node written to between its read and its deletion (the node lifecycle
// controller taints a node the moment it stalls) is read again and pruned
// if it still may be; one that came back is not.
func TestPruneWorkerReadsAChangedNodeAgain(t *testing.T) {
	tests := []struct {
		name      string
		conflicts int                  // deletions refused as conflicts before one goes through
		change    func(n *corev1.Node) // what the controller writes with each refusal
		wantErr   string
	}{
		{name: "tainted while stalled", conflicts: 1, change: func(n *corev1.Node) {
			n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule})
		}},
		{name: "came back", conflicts: 1, change: func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionTrue },
			wantErr: "changed since it was read as stalled: cannot prune running worker"},
		{name: "never still", conflicts: 100, change: func(*corev1.Node) {}, wantErr: "changed 5 times while it was being pruned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, client, out := testOptions("", false, node("n1", corev1.ConditionUnknown, false))
			deletes := 0
			client.PrependReactor("delete", "nodes", func(action k8stesting.Action) (bool, runtime.Object, error) {
				deletes++
				if deletes > tt.conflicts {
					return false, nil, nil
				}
				obj, err := client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("nodes"), "", "n1")
				if err != nil {
					return true, nil, err
				}
				n := obj.(*corev1.Node)
				tt.change(n)
				if err := client.Tracker().Update(corev1.SchemeGroupVersion.WithResource("nodes"), n, ""); err != nil {
					return true, nil, err
				}
				return true, nil, apierrors.NewConflict(corev1.Resource("nodes"), "n1", errors.New("the object has been modified"))
			})
			err := (&PruneWorkerOptions{Options: opts, Worker: "n1"}).Run(t.Context())
			_, getErr := client.CoreV1().Nodes().Get(t.Context(), "n1", metav1.GetOptions{})
			if tt.wantErr == "" {
				if err != nil || out.String() != "pruned 'n1'\n" || !apierrors.IsNotFound(getErr) {
					t.Fatalf("Run() = %v, out %q, node there: %v", err, out, getErr == nil)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || getErr != nil || out.String() != "" {
				t.Fatalf("Run() = %v (want %q), out %q, node read: %v", err, tt.wantErr, out, getErr)
			}
		})
	}
}

func TestAbortBuild(t *testing.T) {
	opts, client, out := testOptions("", false,
		stepPod("ci", "b7-fetch", "n1", "707", corev1.PodSucceeded),
		stepPod("ci", "b7-unit", "n1", "707", corev1.PodRunning),
		stepPod("ci", "b7-lint", "n1", "707", corev1.PodPending),
		stepPod("ci", "b8-unit", "n1", "708", corev1.PodRunning))
	opts.NonInteractive = true
	o := &AbortBuildOptions{Options: opts, Target: selector.Target{Job: "main/unit", Build: "7"}}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := o.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	pods, _ := client.CoreV1().Pods("ci").List(t.Context(), metav1.ListOptions{})
	var left []string
	for _, p := range pods.Items {
		left = append(left, p.Name)
	}
	if strings.Join(left, " ") != "b7-fetch b8-unit" {
		t.Errorf("left %v, want b7-fetch b8-unit", left)
	}
	if !strings.HasSuffix(out.String(), "pod/b7-lint deleted\npod/b7-unit deleted\nbuild successfully aborted\n") {
		t.Errorf("out:\n%s", out)
	}
	if err := o.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "nothing to abort") {
		t.Errorf("aborting again: %v", err)
	}
	if err := (&AbortBuildOptions{}).Validate(); err == nil {
		t.Error("abort-build without -b: no error")
	}
}
