package views

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	testingclock "k8s.io/utils/clock/testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// newTektonClient is a dynamic client that serves Tekton's runs, holding objs.
func newTektonClient(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		taskRunsResource: "TaskRunList", pipelineRunsResource: "PipelineRunList",
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

func TestRunOf(t *testing.T) {
	tests := []struct {
		status, reason, want string
	}{
		{"True", "Succeeded", statusSucceeded},
		{"True", "Completed", statusSucceeded},
		{"Unknown", "Running", ""},
		{"False", "Failed", statusFailed},
		{"False", "PipelineRunTimeout", statusFailed},
		{"False", "TaskRunCancelled", statusAborted},
		{"False", "Cancelled", statusAborted},
		{"False", "StoppedRunFinally", statusAborted},
		{"False", "CouldntGetTask", statusErrored},
	}
	for _, tt := range tests {
		if got := runOf(tektonObject("TaskRun", "x", nil, succeeded(tt.status, tt.reason))).status; got != tt.want {
			t.Errorf("%s/%s: %q, want %q", tt.status, tt.reason, got, tt.want)
		}
	}
	st := succeeded("True", "Completed")
	st["startTime"], st["completionTime"] = "2026-11-26T11:00:00Z", "2026-11-26T11:30:00Z"
	st["skippedTasks"] = []any{map[string]any{"name": "deploy", "reason": "When Expressions evaluated to false"}}
	st["retriesStatus"] = []any{map[string]any{}, map[string]any{}}
	r := runOf(tektonObject("PipelineRun", "x", nil, st))
	if r.start.Hour() != 11 || r.end.Minute() != 30 || len(r.skipped) != 1 || r.skipped[0] != "deploy" || r.retries != 2 {
		t.Errorf("runOf = %+v", r)
	}
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
	if got[0]["status"] != statusFailed || got[0]["end_time"] == nil {
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

func TestExitStatus(t *testing.T) {
	at := func(m int) time.Time { return now.Add(time.Duration(m) * time.Minute) }
	tests := []struct {
		name   string
		status string
		steps  []step
		want   int
	}{
		// fly/eventstream/render.go:74-75: the last finished task's status wins.
		{"a failed task's own status", statusFailed, []step{{kind: "task", status: statusFailed, exitCode: 42, finished: at(1)}}, 42},
		{"the last task to finish", statusFailed, []step{
			{kind: "task", status: statusFailed, exitCode: 42, finished: at(2)},
			{kind: "task", status: statusFailed, exitCode: 7, finished: at(1)}}, 42},
		// render.go:89-107: only when it is 0 do failed, errored, aborted map to 1, 2, 3.
		{"failed after a task exited 0", statusFailed, []step{
			{kind: "task", status: statusSucceeded, finished: at(2)},
			{kind: "get", status: statusFailed, exitCode: 5, finished: at(3)}}, 1},
		{"errored", statusErrored, []step{{kind: "task", status: statusErrored}}, 2},
		{"aborted: no finish-task for an aborted task", statusAborted, []step{{kind: "task", status: statusAborted, exitCode: 137, finished: at(1)}}, 3},
		{"succeeded", statusSucceeded, []step{{kind: "task", status: statusSucceeded, finished: at(1)}}, 0},
	}
	for _, tt := range tests {
		if got := exitStatus(tt.status, tt.steps); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestStamps(t *testing.T) {
	var out bytes.Buffer
	s := newStampWriter(&out, true, time.UTC)
	s.stamp(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	fmt.Fprint(s, "==> task unit\n")
	k := &kubeletStamps{stamps: s, w: s}
	for _, chunk := range []string{"2026-01-02T03:04:06.1234", "56789Z first\n2026-01-02T03:0", "4:07Z second\nno time here\n"} {
		if _, err := k.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	s.stamp(time.Time{})
	fmt.Fprint(s, "succeeded\n")
	want := "03:04:05  ==> task unit\n03:04:06  first\n03:04:07  second\n03:04:07  no time here\n          succeeded\n"
	if out.String() != want {
		t.Errorf("got:\n%q\nwant:\n%q", out.String(), want)
	}
	var plain bytes.Buffer
	off := newStampWriter(&plain, false, time.UTC)
	off.stamp(now)
	fmt.Fprint(off, "a\n")
	if plain.String() != "a\n" {
		t.Errorf("without -t: %q", plain.String())
	}
}

// watch ends when the build's PipelineRun says so, naming what it skipped,
// with no --settle wait (the clock never moves here) and fly's exit status.
func TestWatchTekton(t *testing.T) {
	p := stepPod("run-1-unit", "1", "91", "unit", time.Minute, exited(3, time.Minute, 0))
	p.Labels[selector.LabelTektonTaskRun], p.Labels[selector.LabelTektonPipelineRun] = "run-1-unit", "run-1"
	pr := succeeded("False", "Failed")
	pr["skippedTasks"] = []any{map[string]any{"name": "deploy"}}
	client := fake.NewClientset(p)
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	o := NewWatchOptions(streams)
	o.Client, o.Namespace, o.Target = client, "ci", selector.Target{Job: "main/unit", Build: "1"}
	o.Dynamic = newTektonClient(tektonObject("PipelineRun", "run-1", nil, pr))
	o.Clock = testingclock.NewFakeClock(now)
	o.IsTerminal = func(io.Writer) bool { return false }
	o.Logs = func(context.Context, string, string, string, bool) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("unit logs\n")), nil
	}
	if err := o.Complete(nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := o.Run(ctx)
	var st cmderr.Status
	if !errors.As(err, &st) || st.Code != 3 {
		t.Errorf("Run() = %v, want the task's exit status 3", err)
	}
	if want := "==> task unit\nunit logs\n==> deploy\nskipped\nfailed\n"; out.String() != want {
		t.Errorf("out:\n%s\nwant:\n%s\nerrOut: %s", out, want, errOut)
	}
}
