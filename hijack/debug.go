package hijack

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/helper"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

const (
	// Debug pods are ours, not Concourse's: they carry none of the
	// contract's labels, so that no view or lookup takes them for a step.
	labelDebugManagedBy = "kubectl-concourse"
	annotationDebugOf   = "kubectl-concourse.dev/debug-of"

	// debugLifetime bounds a debug container whose tether was lost; the
	// tether ends it with the session, and within helper.DefaultGrace of a
	// lost plugin. A debug copy pod gets it as its activeDeadlineSeconds.
	debugLifetime = 12 * time.Hour
	// debugStartTimeout bounds the wait for a debug container to run.
	debugStartTimeout = 5 * time.Minute

	cleanupTimeout = 30 * time.Second
)

// runDebug enters a step through a debug container: an ephemeral container
// next to a running step (even one whose image has no shell), or a copy of a
// finished step's pod with the same volumes.
func (o *HijackOptions) runDebug(ctx context.Context, m *selector.Match) error {
	switch m.Pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		return o.debugCopy(ctx, m)
	}
	return o.debugEphemeral(ctx, m)
}

// debugEphemeral adds an ephemeral container that targets the step's
// container (its processes are visible, their root filesystems as
// /proc/PID/root) and mounts its volumes. Ephemeral containers cannot be
// removed from a pod: the keeper is stopped when the session ends, on every
// path, and the container stays listed as terminated.
func (o *HijackOptions) debugEphemeral(ctx context.Context, m *selector.Match) error {
	pod, step := m.Pod, selector.FindContainer(m.Pod, m.Container)
	if step == nil {
		step = &corev1.Container{Name: m.Container}
	}
	where := printers.EscapeTerminal(pod.Namespace + "/" + pod.Name)
	fmt.Fprintf(o.ErrOut, "Adding a debug container (%s) that targets container %s of pod %s; its processes, and their root filesystems as /proc/PID/root, are visible where the runtime supports targeting.\n",
		printers.EscapeTerminal(o.DebugImage), printers.EscapeTerminal(m.Container), where)
	h, err := helper.AddEphemeral(ctx, o.Client.CoreV1(), o.Executor, pod, helper.EphemeralSpec{
		NamePrefix: "debugger", Image: o.DebugImage, Step: step, StepEnv: true, WorkingDir: o.debugDir(step),
		Lifetime: debugLifetime, Wait: helper.WaitOptions{Timeout: debugStartTimeout},
	})
	if err != nil {
		return fmt.Errorf("debug container: %w", err)
	}
	defer o.stopKeeper(ctx, h)
	for _, vm := range h.Skipped {
		fmt.Fprintf(o.ErrOut, "warning: volume %s is not mounted at %s: ephemeral containers cannot mount a subPath\n",
			printers.EscapeTerminal(vm.Name), printers.EscapeTerminal(vm.MountPath))
	}
	return o.enter(ctx, pod, h.Container.Name, o.debugDir(step))
}

// stopKeeper ends the ephemeral container, even after Ctrl-C.
func (o *HijackOptions) stopKeeper(ctx context.Context, h *helper.Ephemeral) {
	if err := h.Stop(ctx); err != nil {
		fmt.Fprintf(o.ErrOut, "warning: debug %s keeps running for up to %s: %v\n", h.Container, helper.DefaultGrace, err)
	}
}

// debugCopy starts a copy of a finished step's pod: the debug image with the
// step container's volumes, environment and working directory. PVC data
// is visible; emptyDirs start empty. The copy is deleted when the session
// ends, on every path, unless --keep; its keeper ends it within
// helper.DefaultGrace of a lost plugin, and activeDeadlineSeconds bounds it
// in any case (a kept copy lives that long at most).
func (o *HijackOptions) debugCopy(ctx context.Context, m *selector.Match) error {
	orig, step := m.Pod, selector.FindContainer(m.Pod, m.Container)
	c := corev1.Container{
		Name:    m.Container,
		Image:   o.DebugImage,
		Command: helper.KeeperCommand(debugLifetime),
	}
	if o.Keep {
		// Kept for later sessions, so tied to none: it sleeps until the
		// deadline or its deletion.
		c.Command = []string{"sleep", strconv.Itoa(int(debugLifetime / time.Second))}
	}
	if step != nil {
		c.Env, c.EnvFrom, c.VolumeMounts, c.WorkingDir = step.Env, step.EnvFrom, step.VolumeMounts, step.WorkingDir
		c.SecurityContext = step.SecurityContext
	}
	grace := int64(1)
	deadline := int64(debugLifetime / time.Second)
	prefix := orig.Name
	if len(prefix) > 40 {
		prefix = prefix[:40]
	}
	cp := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: strings.TrimRight(prefix, "-.") + "-debug-",
			Namespace:    orig.Namespace,
			Labels:       map[string]string{selector.LabelManagedBy: labelDebugManagedBy},
			Annotations:  map[string]string{annotationDebugOf: orig.Name},
		},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{c},
			Volumes:                       orig.Spec.Volumes,
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: &grace,
			ActiveDeadlineSeconds:         &deadline,
			ServiceAccountName:            orig.Spec.ServiceAccountName,
			AutomountServiceAccountToken:  orig.Spec.AutomountServiceAccountToken,
			SecurityContext:               orig.Spec.SecurityContext,
			ImagePullSecrets:              orig.Spec.ImagePullSecrets,
			NodeSelector:                  orig.Spec.NodeSelector,
			Affinity:                      orig.Spec.Affinity,
			Tolerations:                   orig.Spec.Tolerations,
			OS:                            orig.Spec.OS,
		},
	}
	pods := o.Client.CoreV1().Pods(orig.Namespace)
	created, err := pods.Create(ctx, cp, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create a copy of pod %s/%s: %w", printers.EscapeTerminal(orig.Namespace), printers.EscapeTerminal(orig.Name),
			cmderr.ExplainForbidden(err, orig.Namespace, "create", "pods"))
	}
	where := printers.EscapeTerminal(created.Namespace + "/" + created.Name)
	if o.Keep {
		defer fmt.Fprintf(o.ErrOut, "Kept debug pod %s (for up to %s); remove it with: kubectl delete pod -n %s %s\n",
			where, debugLifetime, printers.EscapeTerminal(created.Namespace), printers.EscapeTerminal(created.Name))
	} else {
		defer o.deletePod(ctx, created)
	}
	fmt.Fprintf(o.ErrOut, "Pod %s has %s; debugging copy %s (%s) with its volumes.\n",
		printers.EscapeTerminal(orig.Namespace+"/"+orig.Name), orig.Status.Phase, where, printers.EscapeTerminal(o.DebugImage))
	running, err := helper.WaitRunning(ctx, o.Client.CoreV1(), created.Namespace, created.Name, c.Name,
		helper.WaitOptions{Timeout: debugStartTimeout})
	if err != nil {
		return fmt.Errorf("debug copy: %w", err)
	}
	if !o.Keep {
		t := helper.Tie(o.Executor, podexec.Container{Namespace: created.Namespace, Pod: created.Name, Name: c.Name}, helper.DefaultGrace)
		// Deleting the pod ends it too; stopping first ends the session's
		// process at once instead of after the pod's grace period.
		defer func() { _ = t.Stop(ctx) }()
	}
	return o.enter(ctx, running, c.Name, c.WorkingDir)
}

func (o *HijackOptions) deletePod(ctx context.Context, pod *corev1.Pod) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	grace := int64(0)
	err := o.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
	if err != nil {
		fmt.Fprintf(o.ErrOut, "warning: debug pod %s/%s is left behind: %v\n",
			printers.EscapeTerminal(pod.Namespace), printers.EscapeTerminal(pod.Name), err)
	}
}

// debugDir is where a debug session starts: the step's working directory
// when the debug container sees it too (a volume covers it), else the
// debug image's own.
func (o *HijackOptions) debugDir(step *corev1.Container) string {
	if step == nil || step.WorkingDir == "" {
		return ""
	}
	for _, vm := range step.VolumeMounts {
		if vm.SubPath == "" && vm.SubPathExpr == "" && within(step.WorkingDir, vm.MountPath) {
			return step.WorkingDir
		}
	}
	return ""
}

func within(dir, mount string) bool {
	mount = strings.TrimRight(mount, "/")
	return dir == mount || strings.HasPrefix(dir, mount+"/") || mount == ""
}
