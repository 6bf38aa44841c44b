package artifacts

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-concourse/kubectl-concourse/podexec"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// DefaultHelperImage has sh, tar, gzip and sha256sum.
const DefaultHelperImage = "busybox"

const (
	helperPIDFile  = "/tmp/.kubectl-concourse-helper.pid"
	helperLifetime = "3600" // seconds: the helper outlives a lost plugin by at most this
	helperTimeout  = 2 * time.Minute
)

// helper adds an ephemeral container that mounts the step container's
// volumes, for a step whose image has no sh or tar (distroless). Ephemeral
// containers cannot be removed: stop ends the helper's process, and the
// container stays listed as terminated.
type helper struct {
	client   kubernetes.Interface
	exec     podexec.Executor
	image    string
	pod      *corev1.Pod
	step     *corev1.Container
	name     string
	interval time.Duration
}

// start adds the helper and waits until it runs. paths are the absolute
// remote paths the transfer touches: each must lie on a volume, the only
// part of the step's filesystem the helper sees.
func (h *helper) start(ctx context.Context, paths ...string) (Target, error) {
	where := printers.EscapeTerminal(h.pod.Namespace + "/" + h.pod.Name)
	if h.pod.Status.Phase != corev1.PodRunning {
		return Target{}, fmt.Errorf("pod %s is %s: a helper container needs a running pod", where, h.pod.Status.Phase)
	}
	var mounts []corev1.VolumeMount
	if h.step != nil {
		for _, vm := range h.step.VolumeMounts {
			if vm.SubPath == "" && vm.SubPathExpr == "" { // forbidden in ephemeral containers
				mounts = append(mounts, vm)
			}
		}
	}
	for _, p := range paths {
		if !path.IsAbs(p) {
			return Target{}, fmt.Errorf("remote path %q is relative and the step has no workingDir: give an absolute path for the helper container", p)
		}
		if !onVolume(mounts, p) {
			return Target{}, fmt.Errorf("%s is not on a volume of container %s, and the helper container sees only the volumes", p, h.step.Name)
		}
	}
	h.name = "artifacts-" + utilrand.String(5)
	ec := corev1.EphemeralContainer{
		TargetContainerName: h.step.Name,
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name: h.name, Image: h.image, VolumeMounts: mounts,
			Command: []string{"sh", "-c", `echo $$ >"$1" && exec sleep "$2"`, "sh", helperPIDFile, helperLifetime},
		},
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"ephemeralContainers": []corev1.EphemeralContainer{ec}}})
	if err != nil {
		return Target{}, err
	}
	pods := h.client.CoreV1().Pods(h.pod.Namespace)
	if _, err := pods.Patch(ctx, h.pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "ephemeralcontainers"); err != nil {
		if apierrors.IsForbidden(err) {
			return Target{}, fmt.Errorf("a helper container needs permission to patch pods/ephemeralcontainers in namespace %s: %w", h.pod.Namespace, err)
		}
		return Target{}, fmt.Errorf("add helper container to pod %s: %w", where, err)
	}
	ctx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	err = wait.PollUntilContextCancel(ctx, h.interval, true, func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, h.pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, s := range p.Status.EphemeralContainerStatuses {
			if s.Name != h.name {
				continue
			}
			switch {
			case s.State.Running != nil:
				return true, nil
			case s.State.Terminated != nil:
				return false, fmt.Errorf("it ended (%s): does image %s have sh and sleep?", printers.EscapeTerminal(s.State.Terminated.Reason), h.image)
			case s.State.Waiting != nil && strings.Contains(s.State.Waiting.Reason, "Err") || s.State.Waiting != nil && strings.HasSuffix(s.State.Waiting.Reason, "BackOff"):
				return false, fmt.Errorf("%s: %s", printers.EscapeTerminal(s.State.Waiting.Reason), printers.EscapeTerminal(s.State.Waiting.Message))
			}
		}
		return false, nil
	})
	if err != nil {
		return Target{}, fmt.Errorf("helper container %s in pod %s: %w", h.name, where, err)
	}
	return Target{Namespace: h.pod.Namespace, Pod: h.pod.Name, Container: h.name}, nil
}

// stop ends the helper's process, even after Ctrl-C.
func (h *helper) stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return h.exec.Exec(ctx, podexec.Request{Namespace: h.pod.Namespace, Pod: h.pod.Name, Container: h.name,
		Command: []string{"sh", "-c", `kill "$(cat "$1")"`, "sh", helperPIDFile}}, podexec.Streams{}, nil)
}

func onVolume(mounts []corev1.VolumeMount, p string) bool {
	for _, vm := range mounts {
		mp := path.Clean(vm.MountPath)
		if p == mp || strings.HasPrefix(p, strings.TrimSuffix(mp, "/")+"/") {
			return true
		}
	}
	return false
}

// stepContainer finds the match's container in its pod.
func stepContainer(m *selector.Match) *corev1.Container {
	c := selector.FindContainer(m.Pod, m.Container)
	if c == nil {
		c = &corev1.Container{Name: m.Container}
	}
	return c
}
