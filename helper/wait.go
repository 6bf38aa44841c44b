package helper

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/cli-runtime/pkg/printers"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
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
			return fmt.Sprintf("the pod has %s", pod.Status.Phase), Hopeless
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return "unschedulable: " + printers.EscapeTerminal(c.Message), Pending
		}
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
		return why, waitingHope(st.Waiting.Reason)
	}
	return "pending", Pending
}

// waitingHope sorts the kubelet's waiting reasons: an image name that can
// never be pulled is hopeless; failures the kubelet retries (pulls, crashes,
// configuration it cannot read yet) may heal; anything else is on its way.
func waitingHope(reason string) Hope {
	switch reason {
	case "InvalidImageName", "ErrImageNeverPull":
		return Hopeless
	case "ContainerCreating", "PodInitializing":
		return Pending
	}
	if strings.Contains(reason, "Err") || strings.HasSuffix(reason, "BackOff") {
		return Retrying
	}
	return Pending
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
	check := func(ctx context.Context) (bool, error) {
		p, err := pods.Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, cmderr.ExplainForbidden(err, namespace, "get", "pods")
		}
		current = p
		if s := findStatus(p, container); o.Ended && s != nil && s.State.Terminated != nil && s.State.Terminated.StartedAt != (metav1.Time{}) {
			return true, nil
		}
		reason, hope := Waiting(p, container)
		if reason != why && reason != "" && o.Report != nil {
			o.Report(reason, hope)
		}
		why = reason
		switch {
		case hope == Running:
			return true, nil
		case hope == Hopeless, hope == Retrying && !o.Patient:
			return false, fmt.Errorf("cannot start: %s", reason)
		}
		return false, nil
	}
	err := pollOrWatch(ctx, pods.Pods(namespace), name, o.Interval, check)
	if err == nil {
		return current, nil
	}
	where := fmt.Sprintf("container %s of pod %s", printers.EscapeTerminal(container), printers.EscapeTerminal(namespace+"/"+name))
	if o.Timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) && why != "" {
		return nil, fmt.Errorf("%s did not start within %s: %s", where, o.Timeout, why)
	}
	return nil, fmt.Errorf("%s: %w", where, err)
}

// pollOrWatch calls check at once, then at every change of the pod that a
// watch reports (so that a container is seen running the moment the kubelet
// says so), and every interval in any case (a watch may lag or be refused:
// polling alone is then as good as before).
func pollOrWatch(ctx context.Context, pods corev1client.PodInterface, name string, interval time.Duration, check func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changed := make(chan struct{}, 1)
	if w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()}); err == nil {
		defer w.Stop()
		go func() {
			for range w.ResultChan() {
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		}()
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		done, err := check(ctx)
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		case <-changed:
		}
	}
}

// WaitEnded waits until container of pod has ended and returns how, with
// the pod as it then was. It gives up when the pod is gone.
func WaitEnded(ctx context.Context, pods corev1client.PodsGetter, namespace, name, container string) (*corev1.ContainerStateTerminated, *corev1.Pod, error) {
	var ended *corev1.ContainerStateTerminated
	var current *corev1.Pod
	err := pollOrWatch(ctx, pods.Pods(namespace), name, 250*time.Millisecond, func(ctx context.Context) (bool, error) {
		p, err := pods.Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, cmderr.ExplainForbidden(err, namespace, "get", "pods")
		}
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
