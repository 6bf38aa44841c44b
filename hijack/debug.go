package hijack

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

const (
	// Debug pods are ours, not Concourse's: they carry none of the
	// contract's labels, so that no view or lookup takes them for a step.
	labelDebugManagedBy = "kubectl-concourse"
	annotationDebugOf   = "kubectl-concourse.dev/debug-of"

	// keeperPIDFile is where the ephemeral keeper writes its pid, in the
	// debug container's own filesystem, so that cleanup can end it.
	keeperPIDFile = "/tmp/.kubectl-concourse-debug.pid"
	// keeperLifetime bounds what a killed plugin leaves running.
	keeperLifetime = "86400"

	pollInterval   = 250 * time.Millisecond
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
// /proc/PID/root) and
// mounts its volumes. Ephemeral containers cannot be removed from a pod:
// the keeper is stopped when the session ends, on every path, and the
// container stays listed as terminated.
func (o *HijackOptions) debugEphemeral(ctx context.Context, m *selector.Match) error {
	pod, step := m.Pod, selector.FindContainer(m.Pod, m.Container)
	name := "debugger-" + utilrand.String(5)
	ec := corev1.EphemeralContainer{
		TargetContainerName: m.Container,
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name:  name,
			Image: o.DebugImage,
			// $$$$ is the kubelet's escape for the shell's $$ (the pid):
			// container commands expand $(VAR) and turn $$ into $.
			Command: []string{"sh", "-c", `echo $$$$ >"$1" && exec sleep "$2"`, "sh", keeperPIDFile, keeperLifetime},
		},
	}
	if step != nil {
		ec.Env, ec.EnvFrom, ec.WorkingDir = step.Env, step.EnvFrom, o.debugDir(step)
		for _, vm := range step.VolumeMounts {
			if vm.SubPath != "" || vm.SubPathExpr != "" {
				// The API forbids subPath in ephemeral containers.
				fmt.Fprintf(o.ErrOut, "warning: volume %s is not mounted at %s: ephemeral containers cannot mount a subPath\n",
					printers.EscapeTerminal(vm.Name), printers.EscapeTerminal(vm.MountPath))
				continue
			}
			ec.VolumeMounts = append(ec.VolumeMounts, vm)
		}
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"ephemeralContainers": []corev1.EphemeralContainer{ec}}})
	if err != nil {
		return err
	}
	pods := o.Client.CoreV1().Pods(pod.Namespace)
	where := printers.EscapeTerminal(pod.Namespace + "/" + pod.Name)
	if _, err := pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "ephemeralcontainers"); err != nil {
		return fmt.Errorf("add debug container to pod %s: %w", where, cmderr.ExplainForbidden(err, pod.Namespace, "patch", "pods/ephemeralcontainers"))
	}
	defer o.stopKeeper(ctx, pod, name)
	fmt.Fprintf(o.ErrOut, "Debug container %s (%s) targets container %s of pod %s; its processes, and their root filesystems as /proc/PID/root, are visible where the runtime supports targeting.\n",
		name, printers.EscapeTerminal(o.DebugImage), printers.EscapeTerminal(m.Container), where)
	running, err := o.waitRunning(ctx, pod, name)
	if err != nil {
		return err
	}
	return o.enter(ctx, running, name, o.debugDir(step))
}

// stopKeeper ends the ephemeral container, even after Ctrl-C.
func (o *HijackOptions) stopKeeper(ctx context.Context, pod *corev1.Pod, container string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	req := podexec.Request{Namespace: pod.Namespace, Pod: pod.Name, Container: container,
		Command: []string{"sh", "-c", `kill "$(cat "$1")"`, "sh", keeperPIDFile}}
	var out strings.Builder
	if err := o.Executor.Exec(ctx, req, podexec.Streams{Out: &out, ErrOut: &out}, nil); err != nil {
		fmt.Fprintf(o.ErrOut, "warning: debug container %s in pod %s/%s keeps running for up to %ss: %v\n",
			container, printers.EscapeTerminal(pod.Namespace), printers.EscapeTerminal(pod.Name), keeperLifetime, err)
	}
}

// debugCopy starts a copy of a finished step's pod: the debug image with the
// step container's volumes, environment and working directory. PVC data
// is visible; emptyDirs start empty. The copy is deleted when the session
// ends, on every path, unless --keep.
func (o *HijackOptions) debugCopy(ctx context.Context, m *selector.Match) error {
	orig, step := m.Pod, selector.FindContainer(m.Pod, m.Container)
	c := corev1.Container{
		Name:    m.Container,
		Image:   o.DebugImage,
		Command: []string{"sleep", keeperLifetime},
	}
	if step != nil {
		c.Env, c.EnvFrom, c.VolumeMounts, c.WorkingDir = step.Env, step.EnvFrom, step.VolumeMounts, step.WorkingDir
		c.SecurityContext = step.SecurityContext
	}
	grace := int64(1)
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
		defer fmt.Fprintf(o.ErrOut, "Kept debug pod %s; remove it with: kubectl delete pod -n %s %s\n",
			where, printers.EscapeTerminal(created.Namespace), printers.EscapeTerminal(created.Name))
	} else {
		defer o.deletePod(ctx, created)
	}
	fmt.Fprintf(o.ErrOut, "Pod %s has %s; debugging copy %s (%s) with its volumes.\n",
		printers.EscapeTerminal(orig.Namespace+"/"+orig.Name), orig.Status.Phase, where, printers.EscapeTerminal(o.DebugImage))
	running, err := o.waitRunning(ctx, created, c.Name)
	if err != nil {
		return err
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

// waitRunning polls the pod until container runs; a container that cannot
// start (image pull, bad command) or a pod that ends is an error.
func (o *HijackOptions) waitRunning(ctx context.Context, pod *corev1.Pod, container string) (*corev1.Pod, error) {
	pods := o.Client.CoreV1().Pods(pod.Namespace)
	where := fmt.Sprintf("debug container %s of pod %s", container, printers.EscapeTerminal(pod.Namespace+"/"+pod.Name))
	var current *corev1.Pod
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, cmderr.ExplainForbidden(err, pod.Namespace, "get", "pods")
		}
		current = p
		switch p.Status.Phase {
		case corev1.PodSucceeded, corev1.PodFailed:
			return false, fmt.Errorf("%s: the pod has %s", where, p.Status.Phase)
		}
		statuses := append(append([]corev1.ContainerStatus{}, p.Status.ContainerStatuses...), p.Status.EphemeralContainerStatuses...)
		for _, s := range statuses {
			if s.Name != container {
				continue
			}
			switch {
			case s.State.Running != nil:
				return true, nil
			case s.State.Terminated != nil:
				return false, fmt.Errorf("%s ended (%s, exit code %d) before the session began: does image %s have sh and sleep?",
					where, printers.EscapeTerminal(s.State.Terminated.Reason), s.State.Terminated.ExitCode, printers.EscapeTerminal(o.DebugImage))
			case s.State.Waiting != nil && fatalWaiting(s.State.Waiting.Reason):
				return false, fmt.Errorf("%s cannot start: %s: %s", where,
					printers.EscapeTerminal(s.State.Waiting.Reason), printers.EscapeTerminal(s.State.Waiting.Message))
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("wait for %s: %w", where, err)
	}
	return current, nil
}

// fatalWaiting reasons do not go away by waiting.
func fatalWaiting(reason string) bool {
	switch reason {
	case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
		"CreateContainerConfigError", "CreateContainerError", "RunContainerError":
		return true
	}
	return false
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
