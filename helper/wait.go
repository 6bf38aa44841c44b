package helper

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/printers"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/listwatch"
)

// Hope says whether waiting longer can make a container run.
type Hope int

const (
	// Running: it runs; nothing to wait for.
	Running Hope = iota
	// Pending: on its way (being scheduled, pulled, created).
	Pending
	// Retrying: the kubelet keeps trying something that failed (an image
	// pull, a crash, a missing Secret); it may come right, or never.
	Retrying
	// Hopeless: it ended, or cannot start however long one waits.
	Hopeless
)

// Waiting says why container of pod is not running yet, in the cluster's
// own words (escaped: they are the cluster's), and whether there is hope.
// container may be an init, regular or ephemeral container.
func Waiting(pod *corev1.Pod, container string) (string, Hope) {
	if pod.DeletionTimestamp != nil {
		return "the pod is being deleted", Hopeless
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		if s := findStatus(pod, container); s == nil || s.State.Running == nil {
			why := fmt.Sprintf("the pod has %s", pod.Status.Phase)
			if name, t := failedInit(pod); t != nil {
				// The init container that failed is why, unless it is
				// container itself.
				s := corev1.ContainerStatus{State: corev1.ContainerState{Terminated: t}}
				ended, _ := containerWaiting(&s)
				if name != container {
					why += ": init container " + printers.EscapeTerminal(name)
				}
				why += " " + ended
			}
			return why, Hopeless
		}
	}
	if c := unschedulable(pod); c != nil {
		return "unschedulable: " + printers.EscapeTerminal(c.Message), Pending
	}
	// Init containers run first, in order: the first that has not
	// completed is what the pod waits for.
	if !isInit(pod, container) {
		for i := range pod.Status.InitContainerStatuses {
			s := &pod.Status.InitContainerStatuses[i]
			if t := s.State.Terminated; t != nil && t.ExitCode == 0 {
				continue
			}
			if isSidecar(pod, s.Name) && s.State.Running != nil {
				continue
			}
			why, hope := containerWaiting(s)
			if hope == Running {
				why = "it runs"
			}
			return fmt.Sprintf("init container %s: %s", printers.EscapeTerminal(s.Name), why), max(hope, Pending)
		}
	}
	s := findStatus(pod, container)
	if s == nil {
		return "pending", Pending
	}
	return containerWaiting(s)
}

// unschedulable is the scheduler's condition on a pod it found no node
// for, else nil.
func unschedulable(pod *corev1.Pod) *corev1.PodCondition {
	for i, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func containerWaiting(s *corev1.ContainerStatus) (string, Hope) {
	switch st := s.State; {
	case st.Running != nil:
		return "", Running
	case st.Terminated != nil:
		why := fmt.Sprintf("ended (%s, exit code %d)", printers.EscapeTerminal(st.Terminated.Reason), st.Terminated.ExitCode)
		if msg := strings.TrimSpace(st.Terminated.Message); msg != "" {
			why += ": " + printers.EscapeTerminal(msg)
		}
		return why, Hopeless
	case st.Waiting != nil && st.Waiting.Reason != "":
		why := printers.EscapeTerminal(st.Waiting.Reason)
		if msg := strings.TrimSpace(st.Waiting.Message); msg != "" {
			why += ": " + printers.EscapeTerminal(msg)
		}
		return why, waitingHope(st.Waiting.Reason, st.Waiting.Message)
	}
	return "pending", Pending
}

// waitingHope sorts the kubelet's waiting reasons: an image name that can
// never be pulled, or a pull the registry answered with "no such image" or
// "denied", is hopeless; failures the kubelet retries (pulls that may heal,
// crashes, configuration it cannot read yet) may heal; anything else is on
// its way.
func waitingHope(reason, message string) Hope {
	switch reason {
	case "InvalidImageName", "ErrImageNeverPull":
		return Hopeless
	case "ErrImagePull":
		if pullRefused(message) {
			return Hopeless
		}
	case "ContainerCreating", "PodInitializing":
		return Pending
	}
	if strings.Contains(reason, "Err") || strings.HasSuffix(reason, "BackOff") {
		return Retrying
	}
	return Pending
}

// pullRefusals are the words of a registry's final answer to a pull, as
// the kubelet passes them on from the runtime (containerd: "...: not
// found", "pull access denied, repository does not exist or may require
// authorization", "401 Unauthorized"; the registry API's MANIFEST_UNKNOWN
// and NAME_UNKNOWN). Only that text says so: the reason is ErrImagePull
// for a registry that is down as much as for an image that is not there,
// and a retry helps only the first.
var pullRefusals = []string{
	"not found", "manifest unknown", "name unknown", "repository does not exist",
	"pull access denied", "unauthorized", "insufficient_scope",
}

func pullRefused(message string) bool {
	m := strings.ToLower(message)
	for _, words := range pullRefusals {
		if strings.Contains(m, words) {
			return true
		}
	}
	return false
}

// failedInit is the init container that failed a pod, and how it ended.
func failedInit(pod *corev1.Pod) (string, *corev1.ContainerStateTerminated) {
	for _, s := range pod.Status.InitContainerStatuses {
		if t := s.State.Terminated; t != nil && t.ExitCode != 0 {
			return s.Name, t
		}
	}
	return "", nil
}

func findStatus(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

func isInit(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// isSidecar: an init container that keeps running beside the others.
func isSidecar(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		}
	}
	return false
}

// WaitOptions tune WaitRunning.
type WaitOptions struct {
	Interval time.Duration // between polls; default 250ms
	Timeout  time.Duration // how long it may wait; 0: until ctx ends
	// Patient keeps waiting while the kubelet retries (image pulls,
	// crashes) instead of giving up at once.
	Patient bool
	// Report, when set, is told each new reason the container waits, and
	// how much hope there is.
	Report func(why string, hope Hope)
	// Ended counts a container that ran and ended as started: a task may
	// end before the first look.
	Ended bool
	// Events, when set, explains a pod that waits on its volumes from its
	// warning events (a claim that does not attach, a host path that is
	// not there), which its status does not say. Best effort: without the
	// right to list events it waits as it would without them.
	Events corev1client.EventsGetter
	// Seen, when set, is the pod as the caller last had it (the answer to
	// its creation, say): the wait watches from it without reading the
	// pod first, a round trip less before the first change arrives.
	Seen *corev1.Pod
}

// WaitRunning polls the pod until container runs and returns the pod as it
// then is. It gives up with the reason when there is no hope (or, unless
// Patient, when the kubelet is retrying a failure), and when Timeout
// passes; the error names the container.
func WaitRunning(ctx context.Context, pods corev1client.PodsGetter, namespace, name, container string, o WaitOptions) (*corev1.Pod, error) {
	if o.Interval == 0 {
		o.Interval = 250 * time.Millisecond
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	var current *corev1.Pod
	var why string
	var hostPath bool // why is a host path that is not there
	var volumes *volumeEvents
	if o.Events != nil {
		volumes = &volumeEvents{events: o.Events}
	}
	check := func(ctx context.Context, p *corev1.Pod) (bool, error) {
		current = p
		if s := findStatus(p, container); o.Ended && s != nil && s.State.Terminated != nil && s.State.Terminated.StartedAt != (metav1.Time{}) {
			return true, nil
		}
		reason, hope := Waiting(p, container)
		hostPath = false
		if hope == Pending && volumes != nil {
			reason, hope, hostPath = volumes.explain(ctx, p, reason, hope)
		}
		if reason != why && reason != "" && o.Report != nil {
			o.Report(reason, hope)
		}
		why = reason
		switch {
		case hope == Running:
			return true, nil
		case hope == Hopeless, hope == Retrying && !o.Patient:
			return false, errCannotStart
		}
		return false, nil
	}
	err := followPod(ctx, pods.Pods(namespace), namespace, name, o.Seen, o.Interval, check)
	if err == nil {
		return current, nil
	}
	we := &WaitError{Namespace: namespace, Pod: name, Container: container, Why: why, Err: err,
		unschedulable: current != nil && unschedulable(current) != nil, hostPathMissing: hostPath}
	switch {
	case errors.Is(err, errCannotStart):
		we.Err = nil
	case o.Timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded):
		we.Err, we.Timeout = nil, o.Timeout
	default:
		we.unschedulable, we.hostPathMissing = false, false // the wait failed, not the container
	}
	return nil, we
}

// errCannotStart ends a wait that cannot help.
var errCannotStart = errors.New("cannot start")

// Kinds of WaitError, for errors.Is.
var (
	// ErrTimedOut: WaitOptions.Timeout passed first.
	ErrTimedOut = errors.New("did not start in time")
	// ErrUnschedulable: the scheduler found no node for the pod.
	ErrUnschedulable = errors.New("unschedulable")
	// ErrHostPathMissing: a hostPath volume of type Directory (or File)
	// is not there on the node, which no wait mends.
	ErrHostPathMissing = errors.New("host path missing")
)

// WaitError is a container that did not come to run: where, why in the
// cluster's words (escaped), and, for errors.Is, what kind of why
// (ErrTimedOut, ErrUnschedulable, ErrHostPathMissing). Err is the failure
// of the wait itself (the API refused, ctx ended), nil when the container
// is what failed.
type WaitError struct {
	Namespace, Pod, Container string
	Why                       string
	Timeout                   time.Duration // > 0: it gave up after that long
	Err                       error

	unschedulable, hostPathMissing bool
}

func (e *WaitError) Error() string {
	where := fmt.Sprintf("container %s of pod %s", printers.EscapeTerminal(e.Container), printers.EscapeTerminal(e.Namespace+"/"+e.Pod))
	switch {
	case e.Err != nil:
		return fmt.Sprintf("%s: %v", where, e.Err)
	case e.Timeout > 0 && e.Why == "":
		return fmt.Sprintf("%s did not start within %s", where, e.Timeout)
	case e.Timeout > 0:
		return fmt.Sprintf("%s did not start within %s: %s", where, e.Timeout, e.Why)
	}
	return fmt.Sprintf("%s: cannot start: %s", where, e.Why)
}

func (e *WaitError) Unwrap() error { return e.Err }

func (e *WaitError) Is(target error) bool {
	switch target {
	case ErrTimedOut:
		return e.Timeout > 0
	case ErrUnschedulable:
		return e.unschedulable
	case ErrHostPathMissing:
		return e.hostPathMissing
	}
	return false
}

// followPod calls check with the pod as seen (or, without it, as a GET
// finds it), then as each change of it arrives (listwatch: a container is
// seen running the moment the kubelet says so), and again every interval
// in any case (check reads more than the pod: its events, the time).
// Where the LIST and WATCH fail (a Role without watch) it GETs the pod
// every interval instead: slower, as good.
// A pod that goes is an error (NotFound), as the GET would say.
func followPod(ctx context.Context, pods corev1client.PodInterface, namespace, name string, seen *corev1.Pod, interval time.Duration, check func(context.Context, *corev1.Pod) (bool, error)) error {
	get := func() (*corev1.Pod, error) {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		return p, cmderr.ExplainForbidden(err, namespace, "get", "pods")
	}
	current := seen
	if current == nil {
		var err error
		if current, err = get(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes := listwatch.Follow(ctx, listwatch.Source{List: listwatch.Lister(pods.List), Watch: pods.Watch,
		Options:  metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()},
		Resource: "pods", Namespace: namespace, ResourceVersion: current.ResourceVersion, Known: []runtime.Object{current}})
	events, ended := changes.Events(), changes.Done()
	polling := false
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		done, err := check(ctx, current)
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ended:
			polling, events, ended = true, nil, nil
		case <-tick.C:
			if polling {
				if current, err = get(); err != nil {
					return err
				}
			}
		case ev := <-events:
			p, ok := ev.Object.(*corev1.Pod)
			switch {
			case !ok || p.Name != name:
				continue
			case ev.Type == watch.Deleted:
				return apierrors.NewNotFound(corev1.Resource("pods"), name)
			}
			current = p
		}
	}
}

// WaitEnded waits until container of pod has ended and returns how, with
// the pod as it then was. It gives up when the pod is gone.
func WaitEnded(ctx context.Context, pods corev1client.PodsGetter, namespace, name, container string) (*corev1.ContainerStateTerminated, *corev1.Pod, error) {
	var ended *corev1.ContainerStateTerminated
	var current *corev1.Pod
	err := followPod(ctx, pods.Pods(namespace), namespace, name, nil, 250*time.Millisecond, func(_ context.Context, p *corev1.Pod) (bool, error) {
		current = p
		if s := findStatus(p, container); s != nil && s.State.Terminated != nil {
			ended = s.State.Terminated
			return true, nil
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			return false, fmt.Errorf("pod %s has %s (%s) and its container %s never ended",
				printers.EscapeTerminal(namespace+"/"+name), p.Status.Phase, printers.EscapeTerminal(p.Status.Reason), printers.EscapeTerminal(container))
		}
		return false, nil
	})
	return ended, current, err
}

// volumeEvents reads why a scheduled pod cannot mount its volumes from its
// warning events, at most every volumeEventsEvery.
type volumeEvents struct {
	events    corev1client.EventsGetter
	last      time.Time
	forbidden bool
	found     string // the latest explanation
	hopeless  bool
}

const volumeEventsEvery = time.Second

// Reasons of the kubelet's and the attach controller's volume events.
var volumeEventReasons = map[string]bool{"FailedMount": true, "FailedAttachVolume": true, "FailedMapVolume": true}

// explain also says whether the reason is a host path that is not there.
func (v *volumeEvents) explain(ctx context.Context, pod *corev1.Pod, reason string, hope Hope) (string, Hope, bool) {
	if pod.Spec.NodeName == "" || v.forbidden {
		return reason, hope, false
	}
	if time.Since(v.last) >= volumeEventsEvery {
		v.last = time.Now()
		list, err := v.events.Events(pod.Namespace).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
			"involvedObject.uid": string(pod.UID), "type": corev1.EventTypeWarning}.String()})
		if err != nil {
			v.forbidden = true // or unreadable: the status alone must do
			return reason, hope, false
		}
		var latest *corev1.Event
		for i := range list.Items {
			e := &list.Items[i]
			if volumeEventReasons[e.Reason] && (latest == nil || eventTime(e).After(eventTime(latest))) {
				latest = e
			}
		}
		if latest != nil {
			v.found = printers.EscapeTerminal(latest.Reason + ": " + strings.TrimSpace(latest.Message))
			// A host path that is not there (or not a directory) will not
			// appear by waiting; an attach or a mount may still succeed.
			v.hopeless = hostPathTypeCheckFailed(latest.Message)
		}
	}
	switch {
	case v.found == "":
		return reason, hope, false
	case v.hopeless:
		return v.found, Hopeless, true
	}
	return v.found, Retrying, false
}

// hostPathTypeCheckFailed reads the kubelet's FailedMount event of a
// hostPath volume whose type (Directory, File, ...) its path does not
// have: the kubelet gives that only in words (pkg/volume/hostpath's
// checkType: "hostPath type check failed: PATH is not a directory").
func hostPathTypeCheckFailed(message string) bool {
	return strings.Contains(message, "hostPath type check failed")
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.FirstTimestamp.Time
}
