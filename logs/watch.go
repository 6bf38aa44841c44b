package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/clock"

	"github.com/kubectl-concourse/kubectl-concourse/build"
	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/kernel"
	"github.com/kubectl-concourse/kubectl-concourse/listwatch"
	"github.com/kubectl-concourse/kubectl-concourse/podlogs"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// exitCodes are fly's exit statuses for a build whose last task exited 0
// (fly/eventstream/render.go:89-107).
var exitCodes = map[string]int{build.Succeeded: 0, build.Failed: 1, build.Errored: 2, build.Aborted: 3}

// exitStatus is fly's rule (fly/eventstream/render.go:74-75 and 89-107):
// the exit status of the last task to finish is the command's, and only
// when it is 0 does a failed, errored or aborted build exit 1, 2 or 3. A
// task's end is its container's; an aborted task never finished (fly sees
// no finish-task event for it).
func exitStatus(status string, steps []build.Step) int {
	code := 0
	var last time.Time
	for _, s := range steps {
		if (s.Kind == "task" || s.Kind == "") && (s.Status == build.Succeeded || s.Status == build.Failed) && !s.Finished.Before(last) {
			code, last = int(s.ExitCode), s.Finished
		}
	}
	if code == 0 {
		code = exitCodes[status]
	}
	return code
}

// WatchOptions follows the step logs of a build, as fly watch.
type WatchOptions struct {
	genericiooptions.IOStreams

	Target     selector.Target // -j, -b, -u, --team, -A
	Settle     time.Duration
	Color      string
	Timestamps bool // -t: each line prefixed with its local time, as fly's

	kernel.Cluster
	Dynamic    dynamic.Interface // Tekton's runs, when Tekton is installed
	Logs       func(ctx context.Context, namespace, pod, container string, timestamps bool) (io.ReadCloser, error)
	IsTerminal func(io.Writer) bool
	Clock      clock.Clock    // --settle's timer, and when a deleted pod went
	Location   *time.Location // of -t's times
}

// NewWatchOptions sets every default.
func NewWatchOptions(streams genericiooptions.IOStreams) *WatchOptions {
	return &WatchOptions{IOStreams: streams, Settle: DefaultSettle, Color: "auto"}
}

// Complete fills the namespace, client, log reader and clock when not preset.
func (o *WatchOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, _ []string) error {
	if err := o.Cluster.Complete(getter); err != nil {
		return err
	}
	if o.Dynamic == nil {
		var err error
		if o.Dynamic, err = kernel.ClientsOf(getter).Dynamic(); err != nil {
			return err
		}
	}
	if o.IsTerminal == nil {
		o.IsTerminal = printers.AllowsColorOutput
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Logs == nil {
		o.Logs = func(ctx context.Context, namespace, pod, container string, timestamps bool) (io.ReadCloser, error) {
			return o.Client.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{
				Container: container, Follow: true, Timestamps: timestamps,
			}).Stream(ctx)
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
	if err := kernel.ValidateColor(o.Color); err != nil {
		return err
	}
	return o.Target.Validate()
}

// Run finds the build, then prints each step's logs under a header naming
// the step, in the order the steps started, following running steps and
// new ones until the build ends: when Tekton's run of it says so, else when
// a step failed, errored or was aborted, else --settle after every step
// succeeded. The exit status is fly's (exitStatus).
func (o *WatchOptions) Run(ctx context.Context) error {
	ns, sel, err := o.resolveBuild(ctx)
	if err != nil {
		return err
	}
	f := &follower{o: o, ns: ns, pods: map[string]*corev1.Pod{}, done: map[string]bool{}, end: newBuildEnd(o.Settle, o.Clock),
		out: newStampWriter(o.Out, o.Timestamps, o.Location)}
	list, pods, err := listBuild(ctx, o.Client, ns, sel)
	if err != nil {
		return err
	}
	for i := range list.Items {
		f.pods[list.Items[i].Name] = &list.Items[i]
		f.end.see(&list.Items[i], false)
	}
	sources := []listwatch.Source{pods}
	if run, ok, err := o.tektonRun(ctx, ns, list.Items); err != nil {
		return err
	} else if ok {
		sources, f.tekton = append(sources, run), true
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	status, err := f.follow(ctx, listwatch.Follow(ctx, sources...))
	if err != nil {
		return err
	}
	steps := f.steps()
	f.out.stamp(lastFinished(steps))
	if o.colour() && build.StatusColour(status) != "" {
		fmt.Fprintln(f.out, build.StatusColour(status)+status+colourReset)
	} else {
		fmt.Fprintln(f.out, status)
	}
	if code := exitStatus(status, steps); code != 0 {
		return cmderr.Status{Code: code, Reason: "build " + status}
	}
	return nil
}

// tektonRun finds the PipelineRun (else TaskRun) that Tekton made the
// build's pods for, and returns the source that follows it. Without
// Tekton, or without such a run, there is none and no error.
func (o *WatchOptions) tektonRun(ctx context.Context, ns string, pods []corev1.Pod) (listwatch.Source, bool, error) {
	var kind, name string
	for i := range pods {
		if kind, name = build.RunName(pods[i].Labels); name != "" {
			break
		}
	}
	if name == "" {
		return listwatch.Source{}, false, nil
	}
	gvr := build.TaskRuns
	if kind == build.PipelineRuns.Resource {
		gvr = build.PipelineRuns
	}
	runs := o.Dynamic.Resource(gvr).Namespace(ns)
	opts := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()}
	l, err := runs.List(ctx, opts)
	switch {
	case build.TektonAbsent(err):
		return listwatch.Source{}, false, nil
	case apierrors.IsForbidden(err):
		fmt.Fprintf(o.ErrOut, "warning: cannot read %s %s, the build's end is read from its pods: %v\n", gvr.Resource, name, err)
		return listwatch.Source{}, false, nil
	case err != nil:
		return listwatch.Source{}, false, fmt.Errorf("get %s.%s %s: %w", gvr.Resource, gvr.Group, name, err)
	}
	known := make([]runtime.Object, len(l.Items))
	for i := range l.Items {
		known[i] = &l.Items[i]
	}
	return listwatch.Source{List: listwatch.Lister(runs.List), Watch: runs.Watch, Options: opts, Resource: gvr.Resource, Namespace: ns,
		ResourceVersion: l.GetResourceVersion(), Known: known, Replay: true}, true, nil
}

func (o *WatchOptions) colour() bool { return kernel.UseColor(o.Color, o.IsTerminal, o.Out) }

// resolveBuild resolves the target to one build: the namespace of its pods and a
// label selector that names exactly its pods. Without -b, the job's build
// with the highest build id (or build name) is the one watched.
func (o *WatchOptions) resolveBuild(ctx context.Context) (string, string, error) {
	ms, err := kernel.Resolve(ctx, o.Client.CoreV1(), o.Namespace, o.Target)
	if err != nil {
		return "", "", err
	}
	latest := selector.LatestBuild(ms)
	return latest.Pod.Namespace, selector.BuildSelector(latest), nil
}

// follower is the state of one watched build: its pods as last seen and
// the steps whose logs were printed.
type follower struct {
	o      *WatchOptions
	ns     string
	pods   map[string]*corev1.Pod
	done   map[string]bool // pod/container
	run    *build.Run      // Tekton's run of the build, once seen
	tekton bool            // the build has a Tekton run: it alone says when the build ends
	end    *buildEnd       // without Tekton: when the build is over, as logs -f has it
	out    *stampWriter
}

func (f *follower) steps() []build.Step {
	pods := make(map[string][]build.Step, len(f.pods))
	for name, pod := range f.pods {
		pods[name] = build.Steps(pod)
	}
	return build.InOrder(pods)
}

func (f *follower) apply(ev watch.Event) {
	if u, ok := ev.Object.(*unstructured.Unstructured); ok {
		r := build.RunOf(u)
		f.run = &r
		return
	}
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
	f.end.see(pod, ev.Type == watch.Deleted)
}

// follow prints the steps in order and returns the build's final status.
// Without Tekton, the build is over as logs -f has it (buildEnd): every
// pod has ended and no next one came for --settle, whatever the status,
// so that a failure's hooks (on_failure, ensure) are followed too.
func (f *follower) follow(ctx context.Context, changes *listwatch.Stream) (string, error) {
	defer f.end.stop()
	for {
		steps := f.steps()
		next := -1
		for i, s := range steps {
			if !f.done[s.Pod+"/"+s.Container] {
				next = i
				break
			}
		}
		switch {
		case next >= 0 && steps[next].Status != build.Pending:
			if err := f.print(ctx, steps[next]); err != nil {
				return "", err
			}
			f.done[steps[next].Pod+"/"+steps[next].Container] = true
			continue
		case f.run != nil && f.run.Status != "":
			// Tekton says the build is over; steps that never started
			// will not (they were skipped or cancelled).
			f.printSkipped()
			return f.run.Status, nil
		case next < 0 && !f.tekton && f.end.over():
			return build.StatusOf(steps), nil
		}
		select {
		case <-ctx.Done():
			return "", cmderr.Interruption(ctx)
		case <-changes.Done():
			if err := changes.Err(); err != nil {
				return "", err
			}
			return "", cmderr.Interruption(ctx) // the changes end only with ctx
		case ev := <-changes.Events():
			f.apply(ev)
		case <-f.end.settled():
		}
	}
}

// lastFinished is when the last of steps ended.
func lastFinished(steps []build.Step) time.Time {
	var last time.Time
	for _, s := range steps {
		if s.Finished.After(last) {
			last = s.Finished
		}
	}
	return last
}

// printSkipped names the pipeline tasks that Tekton skipped.
func (f *follower) printSkipped() {
	for _, name := range f.run.Skipped {
		f.out.stamp(time.Time{})
		fmt.Fprintln(f.out, f.header("==> "+name))
		fmt.Fprintln(f.out, "skipped")
	}
}

func (f *follower) header(h string) string {
	h = printers.EscapeTerminal(h)
	if f.o.colour() {
		h = "\x1b[1m" + h + colourReset
	}
	return h
}

// print writes a step's header and its logs, following them while the
// step runs. A step that cannot start says why instead.
func (f *follower) print(ctx context.Context, s build.Step) error {
	header := "==> " + s.Name
	if s.Kind != "" {
		header = "==> " + s.Kind + " " + s.Name
	}
	f.out.stamp(s.Started)
	fmt.Fprintln(f.out, f.header(header))
	if s.Status == build.Errored {
		f.out.stamp(time.Time{})
		fmt.Fprintf(f.out, "%s: %s\n", build.Errored, printers.EscapeTerminal(s.Reason))
		return nil
	}
	logs, err := f.o.Logs(ctx, f.ns, s.Pod, s.Container, f.o.Timestamps)
	if ctx.Err() != nil {
		return cmderr.Interruption(ctx)
	}
	if err != nil {
		fmt.Fprintf(f.o.ErrOut, "warning: logs of step %s (pod %s, container %s): %v\n",
			printers.EscapeTerminal(s.Name), s.Pod, s.Container, err)
		return nil
	}
	defer logs.Close()
	var dst io.Writer = podlogs.NewWriter(f.out)
	if f.o.Timestamps {
		dst = &kubeletStamps{stamps: f.out, w: dst}
	}
	_, err = io.Copy(dst, logs)
	switch {
	case ctx.Err() != nil:
		return cmderr.Interruption(ctx) // the step's log ends here, not the step
	case err != nil:
		fmt.Fprintf(f.o.ErrOut, "warning: logs of step %s cut short: %v\n", printers.EscapeTerminal(s.Name), err)
	}
	return nil
}
