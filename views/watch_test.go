package views

import (
	"cmp"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

func stepPod(name, build, id, step string, age time.Duration, state corev1.ContainerState) *corev1.Pod {
	return pod(podSpec{ns: "ci", name: name, node: "worker-a", team: "main", pipeline: "main", job: "unit", build: build, id: id,
		step: step, stepType: "task", attempt: "1", containers: []string{"main"}, states: []corev1.ContainerState{state}, age: age})
}

// setState changes the state of a pod's only container.
func setState(ctx context.Context, c *fake.Clientset, name string, state corev1.ContainerState) error {
	p, err := c.CoreV1().Pods("ci").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	p.Status.ContainerStatuses[0].State = state
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
		wantOut  string
		wantCode int
	}{
		{
			name: "two steps one after the other",
			pods: []runtime.Object{stepPod("b5-fetch", "5", "50", "fetch", time.Minute, running(time.Minute))},
			onLogs: func(ctx context.Context, c *fake.Clientset, clk *testingclock.FakeClock, pod string) error {
				if err := setState(ctx, c, pod, exited(0, time.Minute, 0)); err != nil || pod != "b5-fetch" {
					return err
				}
				_, err := c.CoreV1().Pods("ci").Create(ctx, stepPod("b5-test", "5", "50", "test", 0, running(0)), metav1.CreateOptions{})
				return err
			},
			target:  selector.Target{Job: "main/unit", Build: "5"},
			wantOut: "==> task fetch\nlogs of b5-fetch\n==> task test\nlogs of b5-test\nsucceeded\n",
		},
		{
			name: "a next step slow to start is waited for, whatever --settle",
			pods: []runtime.Object{stepPod("b4-fetch", "4", "40", "fetch", time.Minute, running(time.Minute))},
			onLogs: func(ctx context.Context, c *fake.Clientset, clk *testingclock.FakeClock, pod string) error {
				if pod != "b4-fetch" {
					return setState(ctx, c, pod, exited(0, time.Minute, 0))
				}
				// The next step's pod waits for its image three times longer
				// than --settle after the first step ended.
				if _, err := c.CoreV1().Pods("ci").Create(ctx, stepPod("b4-test", "4", "40", "test", 0, waiting("ContainerCreating")), metav1.CreateOptions{}); err != nil {
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
				stepPod("b3-fetch", "3", "30", "fetch", 2*time.Hour, exited(0, 2*time.Hour, 90*time.Minute)),
				stepPod("b3-test", "3", "30", "test", 80*time.Minute, exited(0, 80*time.Minute, time.Hour)),
			},
			target:  selector.Target{Build: "30"},
			settle:  30 * time.Minute,
			wantOut: "==> task fetch\nlogs of b3-fetch\n==> task test\nlogs of b3-test\nsucceeded\n",
		},
		{
			name: "failed",
			pods: []runtime.Object{stepPod("b6-unit", "6", "60", "unit", time.Minute, running(time.Minute))},
			onLogs: func(ctx context.Context, c *fake.Clientset, clk *testingclock.FakeClock, pod string) error {
				return setState(ctx, c, pod, exited(1, time.Minute, 0))
			},
			target:   selector.Target{Job: "main/unit"},
			wantOut:  "==> task unit\nlogs of b6-unit\nfailed\n",
			wantCode: 1,
		},
		{
			name:     "errored: the image cannot be pulled",
			pods:     []runtime.Object{stepPod("b7-unit", "7", "70", "unit", time.Minute, waiting("ImagePullBackOff"))},
			target:   selector.Target{Build: "70"},
			wantOut:  "==> task unit\nerrored: ImagePullBackOff\nerrored\n",
			wantCode: 2,
		},
		{
			name: "aborted: the running step's pod is deleted",
			pods: []runtime.Object{stepPod("b8-unit", "8", "80", "unit", time.Minute, running(time.Minute))},
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
				stepPod("b9-unit", "9", "90", "unit", time.Hour, exited(1, time.Hour, time.Hour)),
				stepPod("b10-unit", "10", "100", "unit", time.Minute, exited(0, time.Minute, 0)),
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
			lastRead := func() bool { return int(logsRead.Load()) == strings.Count(tt.wantOut, "==> ") }
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
