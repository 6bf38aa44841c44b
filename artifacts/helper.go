package artifacts

import (
	"context"
	"fmt"
	"path"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/kubectl-concourse/kubectl-concourse/helper"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
	"github.com/kubectl-concourse/kubectl-concourse/transfer"
)

const (
	// helperLifetime bounds a helper whose tether was lost and never tied
	// again; a tether ends it with the transfer.
	helperLifetime = time.Hour
	helperTimeout  = 2 * time.Minute
)

// viaHelper runs move in an ephemeral helper container that mounts the
// step container's volumes, for a step whose image has no sh or tar
// (distroless). paths are the absolute remote paths the transfer touches:
// each must lie on a volume, the only part of the step's filesystem the
// helper sees. readOnly mounts them read-only (a download only reads).
func (o *TransferOptions) viaHelper(ctx context.Context, m *selector.Match, readOnly bool, move func(context.Context, transfer.Endpoint) error, cause error, paths ...string) error {
	where := podexec.Container{Namespace: m.Pod.Namespace, Pod: m.Pod.Name, Name: m.Container}
	fail := func(err error) error {
		return fmt.Errorf("%s: %v, and no helper container: %w", where, cause, err)
	}
	if m.Pod.Status.Phase != corev1.PodRunning {
		return fail(fmt.Errorf("pod %s is %s: a helper container needs a running pod",
			printers.EscapeTerminal(m.Pod.Namespace+"/"+m.Pod.Name), m.Pod.Status.Phase))
	}
	step := selector.FindContainer(m.Pod, m.Container)
	if step == nil {
		step = &corev1.Container{Name: m.Container}
	}
	for _, p := range paths {
		if !path.IsAbs(p) {
			return fail(fmt.Errorf("remote path %q is relative and the step has no workingDir: give an absolute path for the helper container", p))
		}
		if !helper.OnWholeMount(step.VolumeMounts, p) {
			return fail(fmt.Errorf("%s is not on a volume of container %s, and the helper container sees only the volumes", p, printers.EscapeTerminal(step.Name)))
		}
	}
	h, err := helper.AddEphemeral(ctx, o.Client.CoreV1(), o.Executor, m.Pod, helper.EphemeralSpec{
		NamePrefix: "artifacts", Image: o.HelperImage, Step: step, ReadOnly: readOnly,
		Lifetime: helperLifetime, Wait: helper.WaitOptions{Timeout: helperTimeout},
	})
	if err != nil {
		return fail(err)
	}
	err = move(ctx, transfer.Endpoint{Executor: o.Executor, Container: h.Container, WorkingDir: m.WorkingDir})
	if serr := h.Stop(ctx); serr != nil {
		o.warnf(nil)("warning: helper %s keeps running for up to %s: %v\n", h.Container, helper.DefaultGrace, serr)
	}
	return err
}
