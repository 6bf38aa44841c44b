package views

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/utils/clock"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// exitCodes are fly's exit statuses for a watched build.
var exitCodes = map[string]int{statusSucceeded: 0, statusFailed: 1, statusErrored: 2, statusAborted: 3}

// DefaultSettle is how long watch waits, after the last step it knows
// succeeded, for the build's next step pod to appear. Nothing in the pods
// says a build has no more steps to come.
const DefaultSettle = 10 * time.Second

// WatchOptions follows the step logs of a build, as fly watch.
type WatchOptions struct {
	genericiooptions.IOStreams

	Target selector.Target // -j, -b, --team, -A
	Settle time.Duration
	Color  string

	cluster
	Logs       func(ctx context.Context, namespace, pod, container string) (io.ReadCloser, error)
	IsTerminal func(io.Writer) bool
	Clock      clock.Clock // --settle's timer, and when a deleted pod went
}

// NewWatchOptions sets every default.
func NewWatchOptions(streams genericiooptions.IOStreams) *WatchOptions {
	return &WatchOptions{IOStreams: streams, Settle: DefaultSettle, Color: "auto"}
}

// Complete fills the namespace, client, log reader and clock when not preset.
func (o *WatchOptions) Complete(getter genericclioptions.RESTClientGetter) error {
	if err := o.cluster.complete(getter); err != nil {
		return err
	}
	if o.IsTerminal == nil {
		o.IsTerminal = printers.AllowsColorOutput
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logs == nil {
		o.Logs = func(ctx context.Context, namespace, pod, container string) (io.ReadCloser, error) {
			return o.Client.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{Container: container, Follow: true}).Stream(ctx)
		}
	}
	return nil
}

// Validate checks the flags; errors name the flag.
func (o *WatchOptions) Validate() error {
	if o.Target.Check != "" || o.Target.Step != "" || o.Target.Handle != "" || o.Target.Pod != "" {
		return errors.New("watch follows a whole build: give -j PIPELINE/JOB [-b BUILD], or -b BUILD_ID")
	}
	if o.Settle < 0 {
		return errors.New("--settle must not be negative")
	}
	if err := validateColor(o.Color); err != nil {
		return err
	}
	return o.Target.Validate()
}

// Run finds the build, then prints each step's logs under a header naming
// the step, in the order the steps started, following running steps and
// new ones until the build ends. The build's status is the exit status.
func (o *WatchOptions) Run(ctx context.Context) error {
	ns, sel, err := o.build(ctx)
	if err != nil {
		return err
	}
	f := &follower{o: o, ns: ns, pods: map[string]*corev1.Pod{}, done: map[string]bool{}}
	list, err := o.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	for i := range list.Items {
		f.pods[list.Items[i].Name] = &list.Items[i]
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan watch.Event)
	watchErr := make(chan error, 1)
	go func() {
		watchErr <- source{rv: list.ResourceVersion, opts: metav1.ListOptions{LabelSelector: sel}, watch: o.Client.CoreV1().Pods(ns).Watch}.run(ctx, events)
	}()
	status, err := f.run(ctx, events, watchErr)
	if err != nil {
		return err
	}
	colour := o.colour()
	if colour && statusColour(status) != "" {
		fmt.Fprintln(o.Out, statusColour(status)+status+colourReset)
	} else {
		fmt.Fprintln(o.Out, status)
	}
	if code := exitCodes[status]; code != 0 {
		return cmderr.Status{Code: code, Reason: "build " + status}
	}
	return nil
}

func (o *WatchOptions) colour() bool { return useColour(o.Color, o.IsTerminal, o.Out) }

// build resolves the target to one build: the namespace of its pods and a
// label selector that names exactly its pods. Without -b, the job's build
// with the highest build id (or build name) is the one watched.
func (o *WatchOptions) build(ctx context.Context) (string, string, error) {
	ms, err := selector.Resolve(ctx, o.Client.CoreV1(), o.Namespace, o.Target)
	if err != nil {
		return "", "", err
	}
	latest := slices.MaxFunc(ms, func(a, b selector.Match) int {
		return cmp.Or(selector.CompareNumbered(a.BuildID, b.BuildID), selector.CompareNumbered(a.Build, b.Build),
			a.Pod.CreationTimestamp.Compare(b.Pod.CreationTimestamp.Time))
	})
	return latest.Pod.Namespace, selector.BuildSelector(latest), nil
}

// follower is the state of one watched build: its pods as last seen and
// the steps whose logs were printed.
type follower struct {
	o    *WatchOptions
	ns   string
	pods map[string]*corev1.Pod
	done map[string]bool // pod/container
}

func (f *follower) steps() []step {
	e := &buildEntry{pods: map[string][]step{}}
	for name, pod := range f.pods {
		e.pods[name] = podSteps(pod)
	}
	return e.steps()
}

func (f *follower) apply(ev watch.Event) {
	pod, ok := ev.Object.(*corev1.Pod)
	if !ok {
		return
	}
	if ev.Type == watch.Deleted {
		// A deleted pod's last state says how its steps ended: keep it,
		// marked as deleted, so that a running step reads as aborted.
		if pod.DeletionTimestamp == nil {
			now := metav1.NewTime(f.o.Clock.Now())
			pod.DeletionTimestamp = &now
		}
	}
	f.pods[pod.Name] = pod
}

// run prints the steps in order and returns the build's final status.
func (f *follower) run(ctx context.Context, events <-chan watch.Event, watchErr <-chan error) (string, error) {
	// settle runs once every step has succeeded; a step to come stops it.
	var settle clock.Timer
	stopSettle := func() {
		if settle != nil {
			settle.Stop()
			settle = nil
		}
	}
	defer stopSettle()
	for {
		steps := f.steps()
		next := -1
		for i, s := range steps {
			if !f.done[s.pod+"/"+s.container] {
				next = i
				break
			}
		}
		switch {
		case next >= 0 && steps[next].status != statusPending:
			if err := f.print(ctx, steps[next]); err != nil {
				return "", err
			}
			f.done[steps[next].pod+"/"+steps[next].container] = true
			stopSettle()
			continue
		case next >= 0:
			stopSettle() // a step is yet to start: the build goes on
		default:
			status := buildStatus(steps)
			if status == statusSucceeded && settle == nil {
				// --settle counts from the last step's end: a build that
				// ended long ago is over at once.
				wait := f.o.Settle - f.o.Clock.Since(lastFinished(steps))
				if wait <= 0 {
					return statusSucceeded, nil
				}
				settle = f.o.Clock.NewTimer(wait)
			}
			if status != statusSucceeded && finished(status) {
				return status, nil
			}
		}
		var settled <-chan time.Time
		if settle != nil {
			settled = settle.C()
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case err := <-watchErr:
			if err != nil {
				return "", fmt.Errorf("watch pods: %w", err)
			}
			return "", errors.New("watch pods: ended")
		case ev := <-events:
			f.apply(ev)
		case <-settled:
			return statusSucceeded, nil
		}
	}
}

// lastFinished is when the last of steps ended.
func lastFinished(steps []step) time.Time {
	var last time.Time
	for _, s := range steps {
		if s.finished.After(last) {
			last = s.finished
		}
	}
	return last
}

// print writes a step's header and its logs, following them while the
// step runs. A step that cannot start says why instead.
func (f *follower) print(ctx context.Context, s step) error {
	kind := ""
	for _, m := range selector.Steps(f.pods[s.pod]) {
		if m.Container == s.container {
			kind = m.StepType
		}
	}
	header := "==> " + s.name
	if kind != "" {
		header = "==> " + kind + " " + s.name
	}
	header = printers.EscapeTerminal(header)
	if f.o.colour() {
		header = "\x1b[1m" + header + colourReset
	}
	fmt.Fprintln(f.o.Out, header)
	if s.status == statusErrored {
		fmt.Fprintf(f.o.Out, "%s: %s\n", statusErrored, printers.EscapeTerminal(s.reason))
		return nil
	}
	logs, err := f.o.Logs(ctx, f.ns, s.pod, s.container)
	if err != nil {
		fmt.Fprintf(f.o.ErrOut, "warning: logs of step %s (pod %s, container %s): %v\n",
			printers.EscapeTerminal(s.name), s.pod, s.container, err)
		return nil
	}
	defer logs.Close()
	if _, err := io.Copy(newLogWriter(f.o.Out), logs); err != nil && ctx.Err() == nil {
		fmt.Fprintf(f.o.ErrOut, "warning: logs of step %s cut short: %v\n", printers.EscapeTerminal(s.name), err)
	}
	return nil
}
