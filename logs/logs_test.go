package logs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

var t0 = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

// stepPod is step of build 7 of main/test, attempt, whose container
// started at start (zero: not yet).
func stepPod(name, step, attempt string, start time.Time) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: name, Labels: map[string]string{
			selector.LabelManagedBy: selector.ManagedByValue, selector.LabelPipeline: "main", selector.LabelJob: "test",
			selector.LabelBuildName: "7", selector.LabelBuildID: "70", selector.LabelStepName: step, selector.LabelStepType: "task",
			selector.LabelAttempt: attempt,
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}},
	}
	state := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	if !start.IsZero() {
		state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{StartedAt: metav1.NewTime(start)}}
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: state}}
	return p
}

func newOptions(objs ...runtime.Object) (*LogsOptions, *bytes.Buffer, *bytes.Buffer) {
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	o := NewLogsOptions(streams)
	o.Namespace, o.Client, o.Color = "ci", fake.NewClientset(objs...), "never"
	return o, out, errOut
}

func TestRun(t *testing.T) {
	pods := []runtime.Object{
		stepPod("test-1", "test", "1", t0.Add(time.Minute)),
		stepPod("compile-1", "compile", "1", t0),
		stepPod("compile-2", "compile", "2", t0.Add(2*time.Minute)),
		stepPod("lint-1", "lint", "1", time.Time{}),
	}
	tests := []struct {
		name    string
		setup   func(*LogsOptions)
		want    string
		wantErr string // in stderr
	}{
		{"a whole build: last attempts, in the order they started", func(o *LogsOptions) { o.Target = selector.Target{Job: "main/test", Build: "7"} },
			"test    | fake logs\ncompile | fake logs\n", "no log of step lint"},
		{"every attempt", func(o *LogsOptions) {
			o.Target, o.AllAttempts = selector.Target{Job: "main/test", Build: "7", Step: "compile"}, true
		},
			"compile attempt 1 | fake logs\ncompile attempt 2 | fake logs\n", ""},
		{"one attempt, no prefix", func(o *LogsOptions) {
			o.Target = selector.Target{Job: "main/test", Build: "7", Step: "compile", Attempt: "1"}
		}, "fake logs", ""},
		{"one step, a prefix asked for", func(o *LogsOptions) { o.Target, o.Prefix = selector.Target{Job: "main/test", Step: "test"}, true },
			"test | fake logs\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, out, errOut := newOptions(pods...)
			tt.setup(o)
			if err := o.Validate(); err != nil {
				t.Fatal(err)
			}
			if err := o.Run(t.Context()); err != nil {
				t.Fatalf("Run() = %v", err)
			}
			if out.String() != tt.want {
				t.Errorf("stdout %q, want %q", out.String(), tt.want)
			}
			if tt.wantErr != "" && !strings.Contains(errOut.String(), tt.wantErr) || tt.wantErr == "" && errOut.Len() > 0 {
				t.Errorf("stderr %q, want %q", errOut.String(), tt.wantErr)
			}
		})
	}
}

func TestLineWriter(t *testing.T) {
	tests := []struct {
		name   string
		colour bool
		in     []string
		want   string
	}{
		{"lines, split anywhere", false, []string{"one\ntw", "o\nthree"}, "unit | one\nunit | two\nunit | three\n"},
		{"CRLF and a carriage return that would hide the head", false, []string{"a\r\nfake head\rx\n"}, "unit | a\nunit | fake head^Mx\n"},
		{"escapes defused, colour kept and ended", true, []string{"\x1b[31mred\x1b]0;title\x07\n"},
			"\x1b[91munit | \x1b[0m\x1b[31mred^[]0;title\x07\x1b[0m\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			p := &printer{out: &b, prefix: true, colour: tt.colour, labels: map[string]string{}, taken: map[string]bool{}}
			w := p.writer(selector.Match{Pod: &corev1.Pod{}, Step: "unit", Container: "main"})
			for _, s := range tt.in {
				if _, err := io.WriteString(w, s); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("wrote %q, want %q", b.String(), tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*LogsOptions)
		want string
	}{
		{"ok", func(*LogsOptions) {}, ""},
		{"tail", func(o *LogsOptions) { o.Tail = -2 }, "--tail must be -1 (all) or more"},
		{"since", func(o *LogsOptions) { o.Since = -time.Second }, "--since must not be negative"},
		{"attempts", func(o *LogsOptions) { o.AllAttempts, o.Target.Attempt = true, "2" }, "contradict"},
		{"color", func(o *LogsOptions) { o.Color = "sometimes" }, `--color "sometimes"`},
		{"target", func(o *LogsOptions) { o.Target.Job = "nope" }, "-j/--job"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewLogsOptions(genericiooptions.NewTestIOStreamsDiscard())
			tt.mod(o)
			err := o.Validate()
			if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

// Following a whole build streams each step's last attempt once, and goes
// on until interrupted.
func TestFollowABuild(t *testing.T) {
	o, out, _ := newOptions(
		stepPod("compile-1", "compile", "1", t0),
		stepPod("compile-2", "compile", "2", t0.Add(time.Minute)),
		stepPod("test-1", "test", "1", t0.Add(2*time.Minute)),
	)
	o.Target, o.Follow = selector.Target{Job: "main/test", Build: "7"}, true
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err := o.Run(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run() = %v, want it to follow until interrupted", err)
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	slices.Sort(got)
	if strings.Join(got, "|") != "compile | fake logs|test    | fake logs" {
		t.Errorf("stdout %q", out.String())
	}
}

// Following a build whose pods have all ended prints what there is and
// exits once no next step came for --settle; a step that comes in time is
// followed too.
func TestFollowAFinishedBuild(t *testing.T) {
	ended := func(p *corev1.Pod, at time.Time) *corev1.Pod {
		p.Status.Phase = corev1.PodSucceeded
		p.Status.ContainerStatuses[0].State.Terminated.FinishedAt = metav1.NewTime(at)
		return p
	}
	tests := []struct {
		name string
		pods []runtime.Object
		want string // stdout, sorted by line
	}{
		{"ended long ago", []runtime.Object{ended(stepPod("compile-1", "compile", "1", t0), t0.Add(time.Second)),
			ended(stepPod("test-1", "test", "1", t0.Add(time.Minute)), t0.Add(2*time.Minute))},
			"compile | fake logs|test    | fake logs"},
		{"ended just now", []runtime.Object{ended(stepPod("compile-1", "compile", "1", t0), time.Now())},
			"compile | fake logs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, out, errOut := newOptions(tt.pods...)
			o.Target, o.Follow, o.Settle = selector.Target{Job: "main/test", Build: "7"}, true, 200*time.Millisecond
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := o.Run(ctx); err != nil {
				t.Fatalf("Run() = %v, want the end of the build", err)
			}
			got := strings.Split(strings.TrimSpace(out.String()), "\n")
			slices.Sort(got)
			if strings.Join(got, "|") != tt.want || errOut.Len() > 0 {
				t.Errorf("stdout %q, stderr %q; want %q", out.String(), errOut.String(), tt.want)
			}
		})
	}
}

func TestBuildEnd(t *testing.T) {
	now := t0.Add(time.Hour)
	clk := clocktesting.NewFakeClock(now)
	running := stepPod("a", "a", "1", t0)
	running.Status.Phase = corev1.PodRunning
	done := func(name string, at time.Time) *corev1.Pod {
		p := stepPod(name, name, "1", t0)
		p.Status.Phase = corev1.PodFailed
		p.Status.ContainerStatuses[0].State.Terminated.FinishedAt = metav1.NewTime(at)
		return p
	}
	b := newBuildEnd(10*time.Second, clk)
	if b.over() {
		t.Fatal("over() with no pod seen")
	}
	b.see(running, false)
	b.see(done("b", now.Add(-time.Hour)), false)
	if b.over() || b.settled() != nil {
		t.Fatal("over() while a pod runs, or a timer armed")
	}
	b.see(done("a", now.Add(-4*time.Second)), false)
	if b.over() || b.settled() == nil {
		t.Fatal("over() before --settle after the last end, or no timer")
	}
	clk.Step(6 * time.Second)
	if !b.over() {
		t.Error("not over() --settle after the last end")
	}
	b.see(stepPod("c", "c", "1", time.Time{}), false) // a next step comes
	if b.over() || b.settled() != nil {
		t.Error("over() with a step to come")
	}
	b.see(stepPod("c", "c", "1", time.Time{}), true) // deleted before it ran: ended now
	clk.Step(9 * time.Second)
	if b.over() {
		t.Error("over() before --settle after a deleted pod")
	}
	clk.Step(time.Second)
	if !b.over() {
		t.Error("not over() --settle after a deleted pod")
	}
}
