package helper

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/cli-runtime/pkg/printers"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// EphemeralSpec describes an ephemeral helper container for a running step.
type EphemeralSpec struct {
	NamePrefix string // the container is named NamePrefix-<5 random characters>
	Image      string
	// Step is the step's container: the helper targets it (its processes
	// are visible where the runtime shares them) and mounts its volumes.
	Step *corev1.Container
	// ReadOnly mounts every volume read-only: for a helper that only reads.
	ReadOnly bool
	// StepEnv gives the helper the step's environment and WorkingDir.
	StepEnv    bool
	WorkingDir string
	Lifetime   time.Duration // the keeper's last bound
	Grace      time.Duration // how long it outlives a lost plugin; default DefaultGrace
	Wait       WaitOptions
}

// Ephemeral is a running ephemeral helper container, tied to this process.
type Ephemeral struct {
	Container podexec.Container
	// Skipped are the step's mounts it lacks: the API forbids subPath
	// mounts in ephemeral containers.
	Skipped []corev1.VolumeMount
	tether  *Tether
}

// AddEphemeral adds an ephemeral helper container to pod, waits until it
// runs and ties its keeper. Kubernetes cannot remove an ephemeral container
// from a pod: Stop ends its process and it stays listed as terminated.
func AddEphemeral(ctx context.Context, pods corev1client.PodsGetter, ex podexec.Executor, pod *corev1.Pod, spec EphemeralSpec) (*Ephemeral, error) {
	name := spec.NamePrefix + "-" + utilrand.String(5)
	ec := corev1.EphemeralContainer{
		TargetContainerName: spec.Step.Name,
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name: name, Image: spec.Image, Command: KeeperCommand(spec.Lifetime),
		},
	}
	e := &Ephemeral{Container: podexec.Container{Namespace: pod.Namespace, Pod: pod.Name, Name: name}}
	for _, vm := range spec.Step.VolumeMounts {
		if vm.SubPath != "" || vm.SubPathExpr != "" {
			e.Skipped = append(e.Skipped, vm)
			continue
		}
		if spec.ReadOnly {
			vm.ReadOnly = true
		}
		ec.VolumeMounts = append(ec.VolumeMounts, vm)
	}
	if spec.StepEnv {
		ec.Env, ec.EnvFrom, ec.WorkingDir = spec.Step.Env, spec.Step.EnvFrom, spec.WorkingDir
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"ephemeralContainers": []corev1.EphemeralContainer{ec}}})
	if err != nil {
		return nil, err
	}
	where := printers.EscapeTerminal(pod.Namespace + "/" + pod.Name)
	if _, err := pods.Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "ephemeralcontainers"); err != nil {
		return nil, fmt.Errorf("add helper container to pod %s: %w", where, cmderr.ExplainForbidden(err, pod.Namespace, "patch", "pods/ephemeralcontainers"))
	}
	if _, err := WaitRunning(ctx, pods, pod.Namespace, pod.Name, name, spec.Wait); err != nil {
		// Its keeper, untied, ends by itself within a minute if it ever starts.
		return nil, err
	}
	grace := spec.Grace
	if grace == 0 {
		grace = DefaultGrace
	}
	e.tether = Tie(ex, e.Container, grace)
	return e, nil
}

// Stop ends the helper's process, even when ctx is cancelled.
func (e *Ephemeral) Stop(ctx context.Context) error { return e.tether.Stop(ctx) }
