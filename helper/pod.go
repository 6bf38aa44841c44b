package helper

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/cli-runtime/pkg/printers"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// PodSpec describes a pod of the plugin's own beside a step's pod: a
// helper that reaches a finished step's volumes, a debug copy.
type PodSpec struct {
	// Of is the step's pod: the new pod goes to its namespace, is named
	// after it, and records it (selector.AnnotationHelperOf).
	Of *corev1.Pod
	// Purpose says what the pod is for, in its name and its
	// selector.LabelPurpose label: "files", "debug".
	Purpose string
	// Spec is the pod's spec. StartPod makes it the plugin's: the restart
	// policy Never, Lifetime as its deadline, a short grace period, and the
	// keeper as the command of container Main.
	Spec corev1.PodSpec
	// Main names the container whose main process is the keeper; "" is
	// the first container.
	Main string
	// Keeper says how Main runs its keeper (the zero Keeper: its image's
	// sh and sleep; a Toolbox's when the image may have neither).
	Keeper Keeper
	// Lifetime bounds the pod whatever happens to this process.
	Lifetime time.Duration
	// Keep leaves the pod for later sessions: its keeper is tied to none
	// and sleeps until the deadline, and End does not delete it.
	Keep bool
	// Fallback, when set, is tried once when the cluster refuses Spec (Pod
	// Security, an admission policy): it returns Spec without what a
	// stricter policy refuses, such as a node's host path. Pod.Refused
	// then says why the first was refused.
	Fallback func(corev1.PodSpec) corev1.PodSpec
	// Created, when set, is told the pod's name as soon as it exists,
	// before the wait: a pull of a big image takes a while.
	Created func(*corev1.Pod)
	// Wait tunes the wait until Main runs; events explain a pod that
	// waits on its volumes.
	Wait WaitOptions
}

// Pod is a running pod of the plugin's own, its keeper tied to this process
// unless it is kept.
type Pod struct {
	*corev1.Pod // as it was when Main started to run
	// Container is Main, with the keeper's shell for scripts.
	Container podexec.Container
	// Refused is why PodSpec.Spec did not run, when PodSpec.Fallback
	// did instead: the cluster refused it, or (Finished.Start) the node's
	// directory is not there (ErrHostPathMissing); nil otherwise.
	Refused error

	pods   corev1client.PodsGetter
	tether *Tether
	keep   bool
}

const (
	// podGrace is the pods' termination grace: their keeper ends at once
	// on SIGTERM.
	podGrace = 1
	// endTimeout bounds the cleanup of an interrupted session.
	endTimeout = 30 * time.Second
)

// StartPod creates the pod, waits until its Main container runs and ties
// its keeper. The pod is deleted on every path that does not return it: a
// failure, a wait that gives up, a cancelled ctx (Ctrl-C). Its name is
// chosen here, not by the API server, so that even a create whose answer
// was lost can be deleted.
func StartPod(ctx context.Context, client corev1client.CoreV1Interface, ex podexec.Executor, spec PodSpec) (*Pod, error) {
	of := spec.Of
	where := printers.EscapeTerminal(of.Namespace)
	pod := spec.pod(spec.Spec)
	created, err := client.Pods(of.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	var refused error
	if policyRefusal(err) && spec.Fallback != nil {
		refused = cmderr.Refused(err)
		pod = spec.pod(spec.Fallback(*spec.Spec.DeepCopy()))
		created, err = client.Pods(of.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	}
	if err != nil {
		err = fmt.Errorf("create a %s pod in namespace %s: %w", spec.Purpose, where,
			cmderr.ExplainForbidden(cmderr.Refused(err), of.Namespace, "create", "pods"))
		if ctx.Err() != nil {
			// It may exist though the answer was lost: one left behind is
			// said, with what removes it.
			if derr := DeletePod(ctx, client, of.Namespace, pod.Name); derr != nil {
				err = fmt.Errorf("%w; and %w", err, derr)
			}
		}
		return nil, err
	}
	if spec.Created != nil {
		spec.Created(created)
	}
	p := &Pod{Pod: created, Refused: refused, pods: client, keep: spec.Keep,
		Container: podexec.Container{Namespace: created.Namespace, Pod: created.Name, Name: spec.main(), Shell: spec.Keeper.Shell}}
	wait := spec.Wait
	if wait.Events == nil {
		wait.Events = client
	}
	running, err := WaitRunning(ctx, client, created.Namespace, created.Name, spec.main(), wait)
	if err != nil {
		last, _ := client.Pods(created.Namespace).Get(context.WithoutCancel(ctx), created.Name, metav1.GetOptions{})
		if said := initSaid(ctx, client, last); said != "" {
			err = fmt.Errorf("%w: %s", err, said)
		}
		if derr := p.delete(ctx); derr != nil {
			err = fmt.Errorf("%w; and %w", err, derr)
		}
		return nil, &StartError{Pod: last, Container: spec.main(), Err: fmt.Errorf("%s pod: %w", spec.Purpose, err)}
	}
	p.Pod = running
	if !spec.Keep {
		p.tether = spec.Keeper.Tie(ex, p.Container, DefaultGrace)
	}
	return p, nil
}

// End stops the keeper and deletes the pod, even when ctx is cancelled; a
// kept pod is left as it is.
func (p *Pod) End(ctx context.Context) error {
	if p.keep {
		return nil
	}
	// Deleting the pod ends the keeper too; stopping it first ends the
	// session's processes at once instead of after the grace period, so
	// a stop that fails costs only that wait: the delete decides.
	_ = p.tether.Stop(ctx)
	return p.delete(ctx)
}

func (p *Pod) delete(ctx context.Context) error {
	return DeletePod(ctx, p.pods, p.Namespace, p.Name)
}

// DeletePod deletes a pod of the plugin's own by name at once (no grace),
// even when ctx is cancelled; one that stays is said with what removes it.
// By name, so that it works before the pod's creation has answered.
func DeletePod(ctx context.Context, pods corev1client.PodsGetter, namespace, name string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
	defer cancel()
	grace := int64(0)
	err := pods.Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("pod %s is left behind (kubectl concourse gc removes it): %w",
			printers.EscapeTerminal(namespace+"/"+name), cmderr.ExplainForbidden(err, namespace, "delete", "pods"))
	}
	return nil
}

// initSaid is the last line that a failed init container of pod printed:
// the plugin's own say why they fail. Best effort (it needs pods/log).
func initSaid(ctx context.Context, client corev1client.PodsGetter, pod *corev1.Pod) string {
	if pod == nil {
		return ""
	}
	name, _ := failedInit(pod)
	if name == "" {
		return ""
	}
	tail := int64(5)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	raw, err := client.Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: name, TailLines: &tail}).DoRaw(ctx)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	return printers.EscapeTerminal(strings.TrimSpace(lines[len(lines)-1]))
}

// StartError is a pod of the plugin's own that was created but did not
// come to run; Pod is how it last was (nil when it could not be read).
type StartError struct {
	Pod       *corev1.Pod
	Container string
	Err       error
}

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// ImageCannotRun says, of a StartError, whether the container's image is
// what failed: it cannot be pulled, or the keeper cannot be started in it.
func (e *StartError) ImageCannotRun() (string, bool) {
	if e.Pod == nil {
		return "", false
	}
	s := findStatus(e.Pod, e.Container)
	if s == nil {
		return "", false
	}
	switch st := s.State; {
	case st.Waiting != nil:
		switch st.Waiting.Reason {
		case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "CreateContainerError", "RunContainerError":
			why, _ := containerWaiting(s)
			return why, true
		}
	case st.Terminated != nil:
		if st.Terminated.Reason == "StartError" || st.Terminated.ExitCode == 126 || st.Terminated.ExitCode == 127 {
			why, _ := containerWaiting(s)
			return why, true
		}
	}
	return "", false
}

// policyRefusal: the cluster refused a pod for what it holds, which a pod
// without it may pass.
func policyRefusal(err error) bool {
	var refused *cmderr.RefusedError
	return errors.As(cmderr.Refused(err), &refused)
}

func (s PodSpec) main() string {
	if s.Main != "" {
		return s.Main
	}
	return s.Spec.Containers[0].Name
}

// pod is the object StartPod creates from spec.
func (s PodSpec) pod(spec corev1.PodSpec) *corev1.Pod {
	grace, deadline := int64(podGrace), int64(s.Lifetime/time.Second)
	spec.RestartPolicy = corev1.RestartPolicyNever
	spec.TerminationGracePeriodSeconds = &grace
	spec.ActiveDeadlineSeconds = &deadline
	for i := range spec.Containers {
		c := &spec.Containers[i]
		if c.Name != s.main() {
			continue
		}
		c.Command, c.Args = s.Keeper.Command(s.Lifetime), nil
		if s.Keep {
			// Kept for later sessions, so tied to none: it sleeps until the
			// deadline or its deletion.
			c.Command = s.Keeper.sleepCommand(s.Lifetime)
		}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        podName(s.Of.Name, s.Purpose),
			Namespace:   s.Of.Namespace,
			Labels:      map[string]string{selector.LabelManagedBy: selector.ManagedByPlugin, selector.LabelPurpose: s.Purpose},
			Annotations: map[string]string{selector.AnnotationHelperOf: s.Of.Name},
		},
		Spec: spec,
	}
}

// podName is NAME-PURPOSE-xxxxx, short enough to be the pod's host name
// (63 characters).
func podName(of, purpose string) string {
	suffix := "-" + purpose + "-" + utilrand.String(5)
	prefix := of
	if max := 63 - len(suffix); len(prefix) > max {
		prefix = prefix[:max]
	}
	return strings.TrimRight(prefix, "-.") + suffix
}

// sleepCommand keeps a container alive for lifetime, tied to nothing.
func (k Keeper) sleepCommand(lifetime time.Duration) []string {
	secs := max(int64(lifetime/time.Second), 1)
	return []string{k.shell(), "-c", EscapeExpansion(k.script(`exec sleep "$1"`)), "sh", strconv.FormatInt(secs, 10)}
}
