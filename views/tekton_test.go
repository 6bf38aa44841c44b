package views

import (
	"encoding/json"
	"io"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-concourse/kubectl-concourse/build"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// newTektonClient is a dynamic client that serves Tekton's runs, holding objs.
func newTektonClient(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		build.TaskRuns: "TaskRunList", build.PipelineRuns: "PipelineRunList",
	}, objs...)
}

func tektonObject(kind, name string, labels map[string]string, status map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "tekton.dev/v1", "kind": kind,
		"metadata": map[string]any{"namespace": "ci", "name": name},
		"status":   status,
	}}
	u.SetLabels(labels)
	return u
}

func succeeded(status, reason string) map[string]any {
	return map[string]any{"conditions": []any{map[string]any{"type": "Succeeded", "status": status, "reason": reason}}}
}

// builds takes a Tekton build's status, times, retries and skipped steps
// from its PipelineRun and TaskRuns; without Tekton's CRDs it lists the
// pods' view with no error.
func TestBuildsTekton(t *testing.T) {
	pr := succeeded("False", "Failed")
	pr["startTime"], pr["completionTime"] = "2026-11-26T11:00:00Z", "2026-11-26T11:05:00Z"
	pr["skippedTasks"] = []any{map[string]any{"name": "deploy"}}
	tr := succeeded("False", "Failed")
	tr["retriesStatus"] = []any{map[string]any{}}
	p := pod(podSpec{ns: "ci", name: "run-1-unit", team: "main", pipeline: "main", job: "unit", build: "1", id: "77",
		step: "unit", stepType: "task", containers: []string{"step-unit"}, tekton: true,
		states: []corev1.ContainerState{running(time.Minute)}, age: time.Minute})
	p.Labels[selector.LabelTektonTaskRun], p.Labels[selector.LabelTektonPipelineRun] = "run-1-unit", "run-1"
	managed := map[string]string{selector.LabelManagedBy: selector.ManagedByValue}

	o, _, out := newTestOptions(t, p)
	o.Dynamic = newTektonClient(tektonObject("PipelineRun", "run-1", managed, pr), tektonObject("TaskRun", "run-1-unit", managed, tr))
	o.FlyJSON = true
	if err := o.Complete(nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := (&BuildsOptions{ViewOptions: o}).Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got) != 1 {
		t.Fatalf("%v: %s", err, out)
	}
	if got[0]["status"] != build.Failed || got[0]["end_time"] == nil {
		t.Errorf("the PipelineRun's status and end were not taken: %v", got[0])
	}
	set := newBuildSet()
	set.add(p)
	runs, err := listTektonRuns(t.Context(), o.Dynamic, "ci", "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b := set.items(runs)[0]
	if b.Retries != 1 || b.stepList() != "unit,deploy (skipped)" {
		t.Errorf("retries %d, steps %q", b.Retries, b.stepList())
	}

	// No CRDs: the API server answers 404 for the resources.
	absent := newTektonClient()
	absent.PrependReactor("list", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(schema.GroupResource{Group: "tekton.dev", Resource: "taskruns"}, "")
	})
	if _, err := listTektonRuns(t.Context(), absent, "ci", "", io.Discard); err != nil {
		t.Errorf("without Tekton: %v", err)
	}
}
