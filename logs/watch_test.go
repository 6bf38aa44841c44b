package logs

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/kubectl-concourse/kubectl-concourse/build"
	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// now is the fixed clock of the watch tests.
var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

// buildPod is step of build (id) of main/unit, attempt 1, created age ago,
// its one container in state.
func buildPod(name, build, id, step string, age time.Duration, state corev1.ContainerState) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: name, CreationTimestamp: ago(age), Labels: map[string]string{
			selector.LabelManagedBy: selector.ManagedByValue, selector.LabelTeam: "main", selector.LabelPipeline: "main",
			selector.LabelJob: "unit", selector.LabelBuildName: build, selector.LabelBuildID: id, selector.LabelStepName: step,
			selector.LabelStepType: "task", selector.LabelAttempt: "1",
		}},
		Spec:   corev1.PodSpec{NodeName: "worker-a", Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
		Status: corev1.PodStatus{Phase: phaseOf(state), ContainerStatuses: []corev1.ContainerStatus{{Name: "main", State: state}}},
	}
}

// phaseOf is the phase of a pod whose one container (restart policy Never)
// is in state, as the kubelet sets it.
func phaseOf(state corev1.ContainerState) corev1.PodPhase {
	switch t := state.Terminated; {
	case t != nil && t.ExitCode == 0:
		return corev1.PodSucceeded
	case t != nil:
		return corev1.PodFailed
	case state.Running != nil:
		return corev1.PodRunning
	}
	return corev1.PodPending
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

// watchStarted tells of each watch of resource the fake client starts.
func watchStarted(client *fake.Clientset, resource string) <-chan struct{} {
	started := make(chan struct{}, 8)
	client.PrependWatchReactor(resource, func(action k8stesting.Action) (bool, watch.Interface, error) {
		w, err := client.Tracker().Watch(action.GetResource(), action.GetNamespace())
		started <- struct{}{}
		return true, w, err
	})
	return started
}

// newTektonClient is a dynamic client that serves Tekton's runs, holding objs.
func newTektonClient(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		build.TaskRuns: "TaskRunList", build.PipelineRuns: "PipelineRunList",
	}, objs...)
}

func tektonObject(kind, name string, status map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "tekton.dev/v1", "kind": kind,
		"metadata": map[string]any{"namespace": "ci", "name": name},
		"status":   status,
	}}
}

func succeeded(status, reason string) map[string]any {
	return map[string]any{"conditions": []any{map[string]any{"type": "Succeeded", "status": status, "reason": reason}}}
}

// setState changes the state of a pod's only container.
func setState(ctx context.Context, c *fake.Clientset, name string, state corev1.ContainerState) error {
	p, err := c.CoreV1().Pods("ci").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	p.Status.ContainerStatuses[0].State = state
	p.Status.Phase = phaseOf(state)
	_, err = c.CoreV1().Pods("ci").UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err
}

// settleClock is a fake clock on which --settle passes at once when it
// starts after the last step's logs were read (final is true) and never
// before: until then, time moves only when a test steps it.
type settleClock struct {
	*testingclock.FakeClock
	final func() bool
}

func (c settleClock) NewTimer(d time.Duration) clock.Timer {
	t := c.FakeClock.NewTimer(d)
	if c.final() {
		c.Step(d)
	}
	return t
}

func TestWatch(t *testing.T) {
	tests := []struct {
		name     string
		pods     []runtime.Object
		target   selector.Target
		onLogs   func(ctx context.Context, c *fake.Clientset, clk *testingclock.FakeClock, pod string) error // the step's logs are read
		settle   time.Duration                                                                               // default 50ms
		noLogs   bool                                                                                        // the steps' logs are never read (they never ran)
		wantOut  string
		wantCode int
	}{
		{
			name: "two steps one after the other",
			pods: []runtime.Object{buildPod("b5-fetch", "5", "50", "fetch", time.Minute, running(time.Minute))},
			onLogs: func(ctx context.Context, c *fake.Clientset, clk *testingclock.FakeClock, pod string) error {
				if err := setState(ctx, c, pod, exited(0, time.Minute, 0)); err != nil || pod != "b5-fetch" {
					return err
				}
				_, err := c.CoreV1().Pods("ci").Create(ctx, buildPod("b5-test", "5", "50", "test", 0, running(0)), metav1.CreateOptions{})
				return err
			},
			target:  selector.Target{Job: "main/unit", Build: "5"},
			wantOut: "==> task fetch\nlogs of b5-fetch\n==> task test\nlogs of b5-test\nsucceeded\n",
		},
		{
			name: "a next step slow to start is waited for, whatever --settle",
			pods: []runtime.Object{buildPod("b4-fetch", "4", "40", "fetch", time.Minute, running(time.Minute))},
			onLogs: func(ctx context.Context, c *fake.Clientset, clk *testingclock.FakeClock, pod string) error {
				if pod != "b4-fetch" {
					return setState(ctx, c, pod, exited(0, time.Minute, 0))
				}
				// The next step's pod waits for its image three times longer
				// than --settle after the first step ended.
				if _, err := c.CoreV1().Pods("ci").Create(ctx, buildPod("b4-test", "4", "40", "test", 0, waiting("ContainerCreating")), metav1.CreateOptions{}); err != nil {
					return err
				}
				if err := setState(ctx, c, pod, exited(0, time.Minute, 0)); err != nil {
					return err
				}
				clk.Step(3 * 50 * time.Millisecond)
				return setState(ctx, c, "b4-test", running(0))
			},
			target:  selector.Target{Job: "main/unit", Build: "4"},
			wantOut: "==> task fetch\nlogs of b4-fetch\n==> task test\nlogs of b4-test\nsucceeded\n",
		},
		{
			name: "a build that ended longer than --settle ago is over at once",
			pods: []runtime.Object{
				buildPod("b3-fetch", "3", "30", "fetch", 2*time.Hour, exited(0, 2*time.Hour, 90*time.Minute)),
				buildPod("b3-test", "3", "30", "test", 80*time.Minute, exited(0, 80*time.Minute, time.Hour)),
			},
			target:  selector.Target{Build: "30"},
			settle:  30 * time.Minute,
			wantOut: "==> task fetch\nlogs of b3-fetch\n==> task test\nlogs of b3-test\nsucceeded\n",
		},
		{
			name: "failed",
			pods: []runtime.Object{buildPod("b6-unit", "6", "60", "unit", time.Minute, running(time.Minute))},
			onLogs: func(ctx context.Context, c *fake.Clientset, clk *testingclock.FakeClock, pod string) error {
				return setState(ctx, c, pod, exited(1, time.Minute, 0))
			},
			target:   selector.Target{Job: "main/unit"},
			wantOut:  "==> task unit\nlogs of b6-unit\nfailed\n",
			wantCode: 1,
		},
		{
			name: "a failure's hook (on_failure) is followed too",
			pods: []runtime.Object{buildPod("b11-unit", "11", "110", "unit", time.Minute, running(time.Minute))},
			onLogs: func(ctx context.Context, c *fake.Clientset, clk *testingclock.FakeClock, pod string) error {
				if pod == "b11-hook" {
					return setState(ctx, c, pod, exited(0, 0, 0))
				}
				if err := setState(ctx, c, pod, exited(1, time.Minute, 0)); err != nil {
					return err
				}
				_, err := c.CoreV1().Pods("ci").Create(ctx, buildPod("b11-hook", "11", "110", "hook", 0, running(0)), metav1.CreateOptions{})
				return err
			},
			target:   selector.Target{Job: "main/unit", Build: "11"},
			wantOut:  "==> task unit\nlogs of b11-unit\n==> task hook\nlogs of b11-hook\nfailed\n",
			wantCode: 1,
		},
		{
			name:     "errored: the image cannot be pulled",
			pods:     []runtime.Object{buildPod("b7-unit", "7", "70", "unit", time.Minute, waiting("ImagePullBackOff"))},
			target:   selector.Target{Build: "70"},
			noLogs:   true,
			wantOut:  "==> task unit\nerrored: ImagePullBackOff\nerrored\n",
			wantCode: 2,
		},
		{
			name: "aborted: the running step's pod is deleted",
			pods: []runtime.Object{buildPod("b8-unit", "8", "80", "unit", time.Minute, running(time.Minute))},
			onLogs: func(ctx context.Context, c *fake.Clientset, clk *testingclock.FakeClock, pod string) error {
				return c.CoreV1().Pods("ci").Delete(ctx, pod, metav1.DeleteOptions{})
			},
			target:   selector.Target{Job: "main/unit", Build: "8"},
			wantOut:  "==> task unit\nlogs of b8-unit\naborted\n",
			wantCode: 3,
		},
		{
			name: "without -b, the job's latest build",
			pods: []runtime.Object{
				buildPod("b9-unit", "9", "90", "unit", time.Hour, exited(1, time.Hour, time.Hour)),
				buildPod("b10-unit", "10", "100", "unit", time.Minute, exited(0, time.Minute, 0)),
			},
			target:  selector.Target{Job: "main/unit"},
			wantOut: "==> task unit\nlogs of b10-unit\nsucceeded\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(tt.pods...)
			started := watchStarted(client, "pods")
			streams, _, out, errOut := genericiooptions.NewTestIOStreams()
			o := NewWatchOptions(streams)
			o.Client, o.Namespace, o.Target, o.Settle = client, "ci", tt.target, cmp.Or(tt.settle, 50*time.Millisecond)
			o.Dynamic = newTektonClient()
			clk := testingclock.NewFakeClock(now)
			var logsRead atomic.Int32
			lastRead := func() bool { return tt.noLogs || int(logsRead.Load()) == strings.Count(tt.wantOut, "==> ") }
			o.Clock = settleClock{clk, lastRead}
			o.IsTerminal = func(io.Writer) bool { return false }
			watching := false
			o.Logs = func(ctx context.Context, ns, pod, container string, _ bool) (io.ReadCloser, error) {
				if !watching {
					<-started // the change must reach the watch
					watching = true
				}
				if tt.onLogs != nil {
					if err := tt.onLogs(ctx, client, clk, pod); err != nil {
						t.Error(err)
					}
				}
				logsRead.Add(1)
				return io.NopCloser(strings.NewReader("logs of " + pod + "\n")), nil
			}
			if err := o.Complete(nil, nil, nil); err != nil {
				t.Fatal(err)
			}
			if err := o.Validate(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := o.Run(ctx)
			code := 0
			var st cmderr.Status
			if errors.As(err, &st) {
				code = st.Code
			} else if err != nil {
				t.Fatalf("Run() = %v", err)
			}
			if code != tt.wantCode {
				t.Errorf("exit status %d, want %d", code, tt.wantCode)
			}
			if out.String() != tt.wantOut {
				t.Errorf("out:\n%s\nwant:\n%s\nerrOut: %s", out, tt.wantOut, errOut)
			}
		})
	}
}

func TestWatchValidate(t *testing.T) {
	tests := []struct {
		name   string
		target selector.Target
		want   string
	}{
		{"step", selector.Target{Job: "p/j", Step: "unit"}, "watch follows a whole build"},
		{"bad job", selector.Target{Job: "nojob"}, "-j/--job"},
		{"build id not a number", selector.Target{Build: "x"}, "-b/--build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewWatchOptions(genericiooptions.NewTestIOStreamsDiscard())
			o.Target = tt.target
			if err := o.Validate(); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want %q...", err, tt.want)
			}
		})
	}
}

func TestExitStatus(t *testing.T) {
	at := func(m int) time.Time { return now.Add(time.Duration(m) * time.Minute) }
	tests := []struct {
		name   string
		status string
		steps  []build.Step
		want   int
	}{
		// fly/eventstream/render.go:74-75: the last finished task's status wins.
		{"a failed task's own status", build.Failed, []build.Step{{Kind: "task", Status: build.Failed, ExitCode: 42, Finished: at(1)}}, 42},
		{"the last task to finish", build.Failed, []build.Step{
			{Kind: "task", Status: build.Failed, ExitCode: 42, Finished: at(2)},
			{Kind: "task", Status: build.Failed, ExitCode: 7, Finished: at(1)}}, 42},
		// render.go:89-107: only when it is 0 do failed, errored, aborted map to 1, 2, 3.
		{"failed after a task exited 0", build.Failed, []build.Step{
			{Kind: "task", Status: build.Succeeded, Finished: at(2)},
			{Kind: "get", Status: build.Failed, ExitCode: 5, Finished: at(3)}}, 1},
		{"errored", build.Errored, []build.Step{{Kind: "task", Status: build.Errored}}, 2},
		{"aborted: no finish-task for an aborted task", build.Aborted, []build.Step{{Kind: "task", Status: build.Aborted, ExitCode: 137, Finished: at(1)}}, 3},
		{"succeeded", build.Succeeded, []build.Step{{Kind: "task", Status: build.Succeeded, Finished: at(1)}}, 0},
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
	p := buildPod("run-1-unit", "1", "91", "unit", time.Minute, exited(3, time.Minute, 0))
	p.Labels[selector.LabelTektonTaskRun], p.Labels[selector.LabelTektonPipelineRun] = "run-1-unit", "run-1"
	pr := succeeded("False", "Failed")
	pr["skippedTasks"] = []any{map[string]any{"name": "deploy"}}
	client := fake.NewClientset(p)
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	o := NewWatchOptions(streams)
	o.Client, o.Namespace, o.Target = client, "ci", selector.Target{Job: "main/unit", Build: "1"}
	o.Dynamic = newTektonClient(tektonObject("PipelineRun", "run-1", pr))
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

// A mistake in a target flag is a usage error, as in every command: cli
// adds kubectl's "See ... -h" hint to it.
func TestWatchTargetMistakesAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"-j", "a/"}, {"-j", "p/novalue/j"}} {
		cmd := NewCmdWatch(genericiooptions.NewTestIOStreamsDiscard(), genericclioptions.NewConfigFlags(false))
		cmd.SetArgs(args)
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		var usage *cmderr.UsageError
		if err := cmd.Execute(); !errors.As(err, &usage) {
			t.Errorf("watch %v: %v, want a usage error", args, err)
		}
	}
}
