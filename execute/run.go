package execute

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/helper"
	"github.com/kubectl-concourse/kubectl-concourse/kernel"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
	"github.com/kubectl-concourse/kubectl-concourse/selector/labelenc"
	"github.com/kubectl-concourse/kubectl-concourse/transfer"
)

// fly's exit statuses when the task's own is not the answer.
const (
	exitFailed  = 1
	exitErrored = 2
	exitAborted = 3
)

// Run creates the build and follows it to its end, or prints it (dry run).
func (o *ExecuteOptions) Run(ctx context.Context) error {
	if err := o.preflight(); err != nil {
		return err
	}
	var nodes func() []corev1.Node
	if o.DryRun != "client" {
		nodes = o.listNodes(ctx) // beside the namespace's read: one round trip less before the pod
	}
	team := o.Team
	if team == "" && o.DryRun == "none" {
		team = o.namespaceTeam(ctx)
	}
	for _, w := range o.warnings() {
		fmt.Fprintf(o.ErrOut, "warning: %s\n", w)
	}
	for taken := ""; ; {
		err := o.runBuild(ctx, team, nextBuildID(o.Now(), taken), nodes)
		var again errBuildIDTaken
		if !errors.As(err, &again) {
			return err
		}
		taken = again.id
	}
}

// nextBuildID is a one-off build's ID: the time in milliseconds, as
// builds sort by their ID, and past the one another execute took first.
func nextBuildID(now time.Time, taken string) string {
	id := now.UnixMilli()
	if last, err := strconv.ParseInt(taken, 10, 64); err == nil && id <= last {
		id = last + 1
	}
	return strconv.FormatInt(id, 10)
}

// errBuildIDTaken is a pod of the same build ID already there: another
// execute started in the same millisecond. Nothing of this build exists
// yet, so it starts again under the next ID.
type errBuildIDTaken struct{ id string }

func (e errBuildIDTaken) Error() string { return "build ID " + e.id + " is taken" }

// listNodes lists the nodes in the background: the build's placement is
// checked against them before its pod is created. Nodes the user may not
// list are none, and leave the placement to the scheduler.
func (o *ExecuteOptions) listNodes(ctx context.Context) func() []corev1.Node {
	listed := make(chan []corev1.Node, 1)
	go func() {
		nodes, err := o.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			listed <- nil
			return
		}
		listed <- nodes.Items
	}()
	return sync.OnceValue(func() []corev1.Node { return <-listed })
}

// runBuild is Run under one build ID.
func (o *ExecuteOptions) runBuild(ctx context.Context, team, buildID string, nodes func() []corev1.Node) (err error) {
	b := o.plan(team, buildID)
	if o.DryRun == "none" && !o.NoCache && o.agent.Allowed() && len(b.Inputs) > 0 {
		l := &cacheLeaser{client: o.Client, ns: b.Namespace, user: cacheUser(), holder: leaseHolder(b.BuildID),
			pod: b.podName(), holdFor: o.PendingTimeout + o.Timeout + time.Minute, now: o.Now}
		if leased := o.leaseCaches(ctx, &b, l); len(leased) > 0 {
			defer func() {
				if o.Background && err == nil {
					return // the task runs on: its pod holds the leases (held)
				}
				if err := l.release(ctx, leased); err != nil {
					fmt.Fprintf(o.ErrOut, "warning: %v\n", err)
				}
			}()
		}
	}
	pod, secrets := b.objects()
	if o.DryRun == "client" {
		return o.print(pod, secrets)
	}
	// The first Ctrl-C (or SIGTERM: cli cancels ctx) aborts the build, and
	// the abort (the pod's deletion) is the first thing sent, as fly sends
	// its abort before anything else; a second one exits at once.
	r := &runner{o: o, b: b, client: o.Client, colour: o.isTerminal(o.Out), secrets: secrets, removed: make(chan struct{}), nodes: nodes}
	result := make(chan error, 1)
	go func() { result <- r.run(ctx, pod) }()
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(o.ErrOut, "\naborting...")
	go r.removeAndWait(ctx)
	select {
	case err := <-result:
		return err
	case <-kernel.InterruptedAgain(ctx):
		fmt.Fprintln(o.ErrOut, "exiting immediately")
		return cmderr.Status{Code: exitErrored, Reason: "exiting immediately",
			Explain: fmt.Sprintf("pod %s may be left behind (it can only fail now, never run the task): kubectl concourse gc removes it",
				printers.EscapeTerminal(b.Namespace+"/"+b.podName()))}
	}
}

// namespaceTeam is the team the namespace is labelled with
// (concourse-ci.org/team), when the user may read the namespace.
func (o *ExecuteOptions) namespaceTeam(ctx context.Context) string {
	ns, err := o.Client.CoreV1().Namespaces().Get(ctx, o.Namespace, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	team, _ := labelenc.Original(ns.Labels, ns.Annotations, selector.LabelTeam)
	return team
}

// print writes the objects a run would create, as a v1 List.
func (o *ExecuteOptions) print(pod *corev1.Pod, secrets []*corev1.Secret) error {
	list := &corev1.List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}}
	list.Items = append(list.Items, runtime.RawExtension{Object: pod})
	for _, s := range secrets {
		list.Items = append(list.Items, runtime.RawExtension{Object: redacted(s)})
	}
	var p printers.ResourcePrinter = &printers.YAMLPrinter{}
	if o.format == "json" {
		p = &printers.JSONPrinter{}
	}
	return p.PrintObj(list, o.Out)
}

// runner is one build being followed.
type runner struct {
	o       *ExecuteOptions
	b       oneOff
	client  kubernetes.Interface
	colour  bool
	secrets []*corev1.Secret // the params' and the image pull's, owned by the pod
	removed chan struct{}    // closed once an abort's removal has ended
	nodes   func() []corev1.Node

	pod     *corev1.Pod
	tethers []*helper.Tether // the outputs keeper's, released at the end
}

func (r *runner) run(ctx context.Context, pod *corev1.Pod) error {
	o, ns := r.o, r.b.Namespace
	if err := r.checkPlacement(); err != nil {
		return r.result(buildStatus{state: "errored"}, err)
	}
	created, err := r.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if ctx.Err() != nil {
		return r.aborted() // the create may have landed after the abort's delete
	}
	if apierrors.IsAlreadyExists(err) {
		return errBuildIDTaken{id: r.b.BuildID}
	}
	if err != nil {
		return fmt.Errorf("create pod %s: %w", pod.Name, cmderr.ExplainForbidden(err, ns, "create", "pods"))
	}
	r.pod = created
	for _, secret := range r.secrets {
		secret.OwnerReferences[0].UID = created.UID
		if _, err := r.client.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			if ctx.Err() != nil {
				return r.aborted()
			}
			r.remove(ctx)
			return fmt.Errorf("create Secret %s: %w", printers.EscapeTerminal(secret.Name), cmderr.ExplainForbidden(err, ns, "create", "secrets"))
		}
	}
	fmt.Fprintf(o.Out, "executing build %s as pod %s\n", r.b.BuildID, printers.EscapeTerminal(ns+"/"+created.Name))
	status, err := r.follow(ctx)
	if ctx.Err() != nil {
		return r.aborted()
	}
	r.releaseAll(ctx)
	switch {
	case o.Background && err == nil:
		r.printFollowUp()
		return nil
	case o.Keep:
		fmt.Fprintf(o.ErrOut, "Kept pod %s; remove it with: kubectl delete pod -n %s %s\n",
			printers.EscapeTerminal(ns+"/"+created.Name), printers.EscapeTerminal(ns), printers.EscapeTerminal(created.Name))
	default:
		r.remove(ctx)
	}
	return r.result(status, err)
}

// result maps the end of a build to fly's output and exit status: the
// task's own exit status when it ran, else 1 failed, 2 errored.
func (r *runner) result(status buildStatus, err error) error {
	switch status.state {
	case "succeeded":
		r.printStatus("succeeded")
		return nil
	case "failed":
		r.printStatus("failed")
		code := status.code
		if code == 0 {
			code = exitFailed
		}
		if err != nil {
			return cmderr.Status{Code: code, Reason: "build failed", Explain: err.Error()}
		}
		return cmderr.Status{Code: code, Reason: "build failed"}
	}
	r.printStatus("errored")
	if err == nil {
		err = errors.New("the build errored")
	}
	return cmderr.Status{Code: exitErrored, Reason: "build errored", Explain: err.Error()}
}

// buildStatus is how the task ended: succeeded, failed (code is its exit
// status, 0 when it had none) or errored (it could not run).
type buildStatus struct {
	state string
	code  int
}

// errOutOfTime is the cause of the plugin's own --timeout.
var errOutOfTime = errors.New("out of time")

// follow takes the build from its creation to the end of its task and its
// outputs' download. --timeout is kept by the plugin's own timer too,
// whatever the node does with activeDeadlineSeconds.
func (r *runner) follow(ctx context.Context) (buildStatus, error) {
	timed, cancel := context.WithTimeoutCause(ctx, r.o.Timeout, errOutOfTime)
	defer cancel()
	status, err := r.runTask(timed)
	if ctx.Err() == nil && errors.Is(context.Cause(timed), errOutOfTime) {
		return buildStatus{state: "failed"}, r.outOfTime()
	}
	if err != nil || len(r.b.Outputs) == 0 || r.o.Background {
		return status, err
	}
	// It starts beside the task, maybe after a task that ended at once.
	if _, err := helper.WaitRunning(ctx, r.client.CoreV1(), r.b.Namespace, r.pod.Name, outputsContainer,
		helper.WaitOptions{Timeout: r.o.PendingTimeout}); err != nil {
		return buildStatus{state: "errored"}, err
	}
	if err := r.download(ctx); err != nil {
		if status.state == "succeeded" {
			status = buildStatus{state: "failed"}
		}
		return status, err
	}
	return status, nil
}

func (r *runner) outOfTime() error {
	return fmt.Errorf("the task ran out of time (--timeout %s)", r.o.Timeout)
}

// runTask takes the build from its creation to the end of its task: the
// pod's start, the inputs' upload, the task's log and exit status.
func (r *runner) runTask(ctx context.Context) (buildStatus, error) {
	o, b := r.o, r.b
	errored := buildStatus{state: "errored"}
	// Only what the user should know: a pod the scheduler cannot place,
	// a failure the kubelet retries.
	report := func(why string, hope helper.Hope) {
		if hope == helper.Retrying || strings.HasPrefix(why, "unschedulable") {
			fmt.Fprintf(o.ErrOut, "waiting: %s\n", why)
		}
	}
	first := taskContainer
	if b.gated() {
		first = inputsContainer
	}
	// Pending: scheduling, image pulls, until the first container runs.
	if _, err := helper.WaitRunning(ctx, r.client.CoreV1(), b.Namespace, r.pod.Name, first,
		helper.WaitOptions{Patient: true, Timeout: o.PendingTimeout, Report: report, Ended: first == taskContainer, Seen: r.pod}); err != nil {
		return errored, r.explainPending(ctx, err)
	}
	if b.gated() {
		if err := r.upload(ctx); err != nil {
			return errored, err
		}
	}
	if o.Background {
		return buildStatus{state: "started"}, nil
	}
	fmt.Fprintln(o.Out, r.bold("initializing"))
	if first != taskContainer { // else the wait above was the task's
		if _, err := helper.WaitRunning(ctx, r.client.CoreV1(), b.Namespace, r.pod.Name, taskContainer,
			helper.WaitOptions{Patient: true, Timeout: o.PendingTimeout, Report: report, Ended: true}); err != nil {
			return errored, err
		}
	}
	argv := append([]string{b.Config.Run.Path}, b.Config.Run.Args...)
	fmt.Fprintln(o.Out, r.bold("running "+printers.EscapeTerminal(strings.TrimSpace(strings.Join(argv, " ")))))
	if len(b.Outputs) > 0 {
		r.tethers = append(r.tethers, helper.Tie(o.Executor, r.container(outputsContainer), helper.DefaultGrace))
	}
	// A log that cannot be read does not end the build: its end and
	// status still can be (a task that never started has no log).
	logErr := r.logs(ctx)
	status, err := r.taskEnd(ctx)
	if logErr != nil && err == nil {
		fmt.Fprintf(o.ErrOut, "warning: %v\n", logErr)
	}
	return status, err
}

func (r *runner) container(name string) podexec.Container {
	return podexec.Container{Namespace: r.b.Namespace, Pod: r.pod.Name, Name: name}
}

// upload sends every input in parallel into the inputs container, then
// releases it so that the task starts. The release is sent only once every
// input has landed whole and verified: on any other path (a failure, an
// abort) the keeper is stopped, its init container fails and the pod with
// it, so the task can never run on a partial input. A plugin that is lost
// sends nothing, and a keeper whose tether is gone is stopped too.
func (r *runner) upload(ctx context.Context) error {
	t := helper.Tie(r.o.Executor, r.container(inputsContainer), helper.DefaultGrace)
	err := r.transferAll(ctx, inputsContainer, len(r.b.Inputs), func(ctx context.Context, ep transfer.Endpoint, s transfer.Settings, i int) error {
		in := r.b.Inputs[i]
		if in.Cache != "" {
			return transfer.UploadCached(ctx, ep, s, in.Local, cacheMount(i))
		}
		return transfer.UploadInto(ctx, ep, s, in.Local, in.Remote)
	})
	if err != nil {
		if ctx.Err() == nil { // an abort deletes the pod, which ends the keeper sooner
			if serr := t.Stop(ctx); serr != nil {
				fmt.Fprintf(r.o.ErrOut, "warning: %v\n", serr)
			}
		}
		return err
	}
	if err := t.Release(ctx); err != nil {
		return fmt.Errorf("start the task after its inputs: %w", err)
	}
	return nil
}

// releaseAll lets the outputs helper end: its work is done.
func (r *runner) releaseAll(ctx context.Context) {
	for _, t := range r.tethers {
		if err := t.Release(ctx); err != nil {
			fmt.Fprintf(r.o.ErrOut, "warning: %v\n", err)
		}
	}
	r.tethers = nil
}

// download brings every -o output back in parallel from the outputs
// container, whatever the task's status (fly's ensure).
func (r *runner) download(ctx context.Context) error {
	err := r.transferAll(ctx, outputsContainer, len(r.b.Outputs), func(ctx context.Context, ep transfer.Endpoint, s transfer.Settings, i int) error {
		return transfer.DownloadAs(ctx, ep, s, r.b.Outputs[i].Remote, r.b.Outputs[i].Local)
	})
	if err != nil {
		return fmt.Errorf("downloading failed: %w", err)
	}
	return nil
}

// transferAll runs n transfers with container at once, each with its bar on
// a terminal (fly draws one per input and output), and joins their errors.
func (r *runner) transferAll(ctx context.Context, container string, n int, move func(context.Context, transfer.Endpoint, transfer.Settings, int) error) error {
	o := r.o
	ep := transfer.Endpoint{Executor: o.Executor, Container: r.container(container), WorkingDir: workingDir}
	tty := o.isTerminal(o.ErrOut)
	prog := transfer.NewProgress(ctx, o.ErrOut, tty, tty)
	warnf := func(format string, a ...any) { fmt.Fprintf(o.ErrOut, format, a...) }
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = move(ctx, ep, o.transferSettings(prog, warnf), i)
		}()
	}
	wg.Wait()
	prog.Wait()
	return errors.Join(errs...)
}

// logs streams the task's log from its first byte to its end.
func (r *runner) logs(ctx context.Context) error {
	stream, err := r.client.CoreV1().Pods(r.b.Namespace).GetLogs(r.pod.Name,
		&corev1.PodLogOptions{Container: taskContainer, Follow: true}).Stream(ctx)
	if err != nil {
		return fmt.Errorf("logs of the task: %w", cmderr.ExplainForbidden(err, r.b.Namespace, "get", "pods/log"))
	}
	defer stream.Close()
	if _, err := io.Copy(r.o.Out, stream); err != nil && ctx.Err() == nil {
		fmt.Fprintf(r.o.ErrOut, "warning: the task's log was cut short: %v\n", err)
	}
	return nil
}

// taskEnd waits until the task's container has ended and reads how.
func (r *runner) taskEnd(ctx context.Context) (buildStatus, error) {
	ended, pod, err := helper.WaitEnded(ctx, r.client.CoreV1(), r.b.Namespace, r.pod.Name, taskContainer)
	if err != nil {
		if pod != nil && pod.Status.Reason == "DeadlineExceeded" {
			return buildStatus{state: "failed"}, r.outOfTime()
		}
		return buildStatus{state: "errored"}, err
	}
	if ended.Reason == "StartError" || ended.Reason == "ContainerCannotRun" {
		// The runtime could not start the task's process: fly's build
		// errors with the runtime's own words, not an exit status.
		return buildStatus{state: "errored"}, fmt.Errorf("the task could not start: %s", printers.EscapeTerminal(startErrorMessage(ended.Message)))
	}
	status := buildStatus{state: "failed", code: int(ended.ExitCode)}
	if status.code == 0 {
		status.state = "succeeded"
	}
	return status, nil
}

// startErrorMessage is the part of a runtime's start error a user can act
// on: runc's `exec: "./nope.sh": stat ./nope.sh: no such file or
// directory` without the layers of OCI runtime wrapping before it.
func startErrorMessage(msg string) string {
	msg = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(msg), ": unknown"))
	if i := strings.LastIndex(msg, "exec: "); i >= 0 {
		return msg[i:]
	}
	return msg
}

// explainPending adds to a pod that never started what the nodes lack, when
// the scheduler found none for it.
func (r *runner) explainPending(ctx context.Context, err error) error {
	if !errors.Is(err, helper.ErrUnschedulable) {
		return err
	}
	nodes, lerr := r.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if lerr != nil {
		return err
	}
	if missing := r.b.unplaceable(nodes.Items); len(missing) > 0 {
		return fmt.Errorf("%w: %s", err, strings.Join(missing, "; "))
	}
	return err
}

// checkPlacement fails at once, before anything is created, when no node
// runs the task's platform, has one of its tags, or takes its team's
// builds, instead of after --pending-timeout. Nodes the user may not list
// leave it to the scheduler.
func (r *runner) checkPlacement() error {
	nodes := r.nodes()
	if len(nodes) == 0 {
		return nil
	}
	if missing := r.b.unplaceable(nodes); len(missing) > 0 {
		return fmt.Errorf("no node can run the build: %s", strings.Join(missing, "; "))
	}
	return nil
}

// removeAndWait is the abort: the pod and its Secret are deleted (by name,
// so that it works before their creation has answered) and awaited.
func (r *runner) removeAndWait(ctx context.Context) {
	defer close(r.removed)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	r.remove(ctx)
	if err := r.waitGone(ctx); err != nil {
		fmt.Fprintf(r.o.ErrOut, "warning: %v\n", err)
	}
}

// aborted ends an aborted run once the abort's removal has ended. The pod
// is deleted again first: its creation may have landed after the abort's
// delete.
func (r *runner) aborted() error {
	<-r.removed
	r.remove(context.Background())
	r.printStatus("aborted")
	return cmderr.Status{Code: exitAborted, Reason: "build aborted"}
}

// remove deletes the pod and its Secrets, even when ctx is cancelled.
func (r *runner) remove(ctx context.Context) {
	ns := r.b.Namespace
	if err := helper.DeletePod(ctx, r.client.CoreV1(), ns, r.b.podName()); err != nil {
		fmt.Fprintf(r.o.ErrOut, "warning: %v\n", err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, secret := range r.secrets {
		if err := r.client.CoreV1().Secrets(ns).Delete(ctx, secret.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			fmt.Fprintf(r.o.ErrOut, "warning: Secret %s is left behind (kubectl concourse gc removes it): %v\n",
				printers.EscapeTerminal(ns+"/"+secret.Name), cmderr.ExplainForbidden(err, ns, "delete", "secrets"))
		}
	}
}

// waitGone waits until the pod and the Secret no longer exist. An answer
// that waiting cannot change (RBAC refuses the read) ends it at once.
func (r *runner) waitGone(ctx context.Context) error {
	ns := r.b.Namespace
	gone := func(ctx context.Context, get func() error, resource string) (bool, error) {
		err := get()
		switch {
		case apierrors.IsNotFound(err):
			return true, nil
		case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
			return false, fmt.Errorf("cannot tell whether the build's objects are gone: %w", cmderr.ExplainForbidden(err, ns, "get", resource))
		}
		return false, nil
	}
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		done, err := gone(ctx, func() error {
			_, err := r.client.CoreV1().Pods(ns).Get(ctx, r.b.podName(), metav1.GetOptions{})
			return err
		}, "pods")
		for _, secret := range r.secrets {
			if !done || err != nil {
				break
			}
			done, err = gone(ctx, func() error {
				_, err := r.client.CoreV1().Secrets(ns).Get(ctx, secret.Name, metav1.GetOptions{})
				return err
			}, "secrets")
		}
		return done, err
	})
	if wait.Interrupted(err) {
		return fmt.Errorf("pod %s was still there a minute after its deletion", printers.EscapeTerminal(ns+"/"+r.b.podName()))
	}
	return err
}

// printFollowUp: -b returns once the task runs; these follow it.
func (r *runner) printFollowUp() {
	ns, id := printers.EscapeTerminal(r.b.Namespace), r.b.BuildID
	fmt.Fprintf(r.o.Out, "build %s runs on in pod %s/%s; follow it with:\n", id, ns, printers.EscapeTerminal(r.pod.Name))
	fmt.Fprintf(r.o.Out, "  kubectl concourse watch -n %s -b %s\n", ns, id)
	fmt.Fprintf(r.o.Out, "  kubectl concourse hijack -n %s -b %s\n", ns, id)
	fmt.Fprintf(r.o.Out, "  kubectl concourse download -n %s -b %s PATH\n", ns, id)
	fmt.Fprintf(r.o.Out, "and remove it when done with: kubectl delete pod -n %s %s (its Secret goes with it)\n", ns, printers.EscapeTerminal(r.pod.Name))
}

// Colours as fly's (fly/ui): on a terminal only.
var statusColours = map[string]string{
	"succeeded": "\x1b[32m", "failed": "\x1b[31m", "errored": "\x1b[1;33m", "aborted": "\x1b[33m",
}

func (r *runner) printStatus(status string) {
	if r.colour {
		status = statusColours[status] + status + "\x1b[0m"
	}
	fmt.Fprintln(r.o.Out, status)
}

func (r *runner) bold(s string) string {
	if r.colour {
		return "\x1b[1m" + s + "\x1b[0m"
	}
	return s
}
