package hijack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/kubectl-concourse/kubectl-concourse/helper"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

const (
	// debugLifetime bounds a debug container whose tether was lost; the
	// tether ends it with the session, and within helper.DefaultGrace of a
	// lost plugin. A debug copy pod gets it as its activeDeadlineSeconds.
	debugLifetime = 12 * time.Hour
	// debugStartTimeout bounds the wait for a debug container to run.
	debugStartTimeout = 5 * time.Minute
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
		printers.EscapeTerminal(o.debugImage()), printers.EscapeTerminal(m.Container), where)
	h, err := helper.AddEphemeral(ctx, o.Client.CoreV1(), o.Executor, pod, helper.EphemeralSpec{
		NamePrefix: "debugger", Image: o.debugImage(), Step: step, StepEnv: true, WorkingDir: o.debugDir(step),
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
	return o.enter(ctx, pod, h.Container.Name, o.debugDir(step), "")
}

// debugImage is the image of a debug container next to a running step.
func (o *HijackOptions) debugImage() string {
	if o.DebugImage != "" {
		return o.DebugImage
	}
	return o.HelperImage
}

// stopKeeper ends the ephemeral container, even after Ctrl-C.
func (o *HijackOptions) stopKeeper(ctx context.Context, h *helper.Ephemeral) {
	if err := h.Stop(ctx); err != nil {
		fmt.Fprintf(o.ErrOut, "warning: debug %s keeps running for up to %s: %v\n", h.Container, helper.DefaultGrace, err)
	}
}

// debugCopy enters a copy of a finished step's pod, as kubectl debug
// --copy-to does: the step's container from its own image (--debug-image
// another), with its environment, working directory, security context and
// volumes, on its node when its claims or its emptyDirs need that. The copy's
// keeper runs on the toolbox, so the image needs neither sh nor sleep; only
// an image that cannot run at all gives way to the helper image. The
// emptyDirs start with what the node still holds of the step's, when the
// cluster lets a pod read the node's disk, and say so when not. The copy is
// deleted when the session ends, on every path, unless --keep; its keeper
// ends it within helper.DefaultGrace of a lost plugin, and its deadline
// bounds it in any case (a kept copy lives that long at most).
func (o *HijackOptions) debugCopy(ctx context.Context, m *selector.Match) error {
	orig := m.Pod
	step := selector.FindContainer(orig, m.Container)
	if step == nil {
		return fmt.Errorf("pod %s has no container %s to copy", printers.EscapeTerminal(orig.Namespace+"/"+orig.Name), printers.EscapeTerminal(m.Container))
	}
	if isWindows(orig) {
		return errors.New("a copy of a finished Windows step cannot be made: its keeper and tools are Linux programs")
	}
	f := helper.ReadFinished(orig, step)
	c := debugCopyOf(f)
	emptyDirs := c.emptyDirs()
	f.Place(ctx, o.Client.CoreV1(), o.KubeletDir, o.askKubelet, f.Mounts)
	image, own := o.DebugImage, o.DebugImage == ""
	if own {
		image = step.Image
	}
	where := printers.EscapeTerminal(orig.Namespace + "/" + orig.Name)
	var fallback func(corev1.PodSpec) corev1.PodSpec
	if len(emptyDirs) > 0 {
		// Without the node's disk (refused, or a kubelet root elsewhere),
		// the emptyDirs start empty and the claims are still there.
		fallback = func(spec corev1.PodSpec) corev1.PodSpec { return helper.DropCopyFromNode(spec, helper.NodeVolumeName) }
	}
	for {
		p, err := f.Start(ctx, o.Client.CoreV1(), o.Executor, helper.PodSpec{
			Of: orig, Purpose: "debug", Spec: c.spec(image, o.HelperImage), Main: step.Name,
			Keeper: helper.ToolboxKeeper, Lifetime: debugLifetime, Keep: o.Keep, Fallback: fallback,
			Created: func(p *corev1.Pod) {
				fmt.Fprintf(o.ErrOut, "Pod %s has %s; debugging a copy, %s, from image %s with its volumes.\n",
					where, orig.Status.Phase, printers.EscapeTerminal(p.Name), printers.EscapeTerminal(image))
			},
			Wait: helper.WaitOptions{Timeout: debugStartTimeout},
		})
		var se *helper.StartError
		if why, ok := startFailure(err, &se); own && ok && image != o.HelperImage {
			fmt.Fprintf(o.ErrOut, "warning: the step's image %s cannot run here (%s); the copy runs the helper image %s instead, without the step's tools\n",
				printers.EscapeTerminal(image), why, printers.EscapeTerminal(o.HelperImage))
			image = o.HelperImage
			continue
		}
		if err != nil {
			return fmt.Errorf("debug copy: %w", err)
		}
		return o.enterCopy(ctx, p, orig, emptyDirs, step)
	}
}

// startFailure says whether err is a copy whose image cannot run, and why.
func startFailure(err error, se **helper.StartError) (string, bool) {
	if !errors.As(err, se) {
		return "", false
	}
	return (*se).ImageCannotRun()
}

// enterCopy says what the copy's emptyDirs hold, runs the session, and ends
// the copy (unless kept).
func (o *HijackOptions) enterCopy(ctx context.Context, p *helper.Pod, orig *corev1.Pod, emptyDirs []string, step *corev1.Container) error {
	where := printers.EscapeTerminal(p.Namespace + "/" + p.Name)
	if o.Keep {
		defer fmt.Fprintf(o.ErrOut, "Kept debug pod %s (for up to %s); remove it with: kubectl delete pod -n %s %s\n",
			where, debugLifetime, printers.EscapeTerminal(p.Namespace), printers.EscapeTerminal(p.Name))
	} else {
		defer func() {
			if err := p.End(ctx); err != nil {
				fmt.Fprintf(o.ErrOut, "warning: %v\n", err)
			}
		}()
	}
	node := printers.EscapeTerminal(orig.Spec.NodeName)
	switch {
	case len(emptyDirs) == 0:
	case errors.Is(p.Refused, helper.ErrHostPathMissing):
		fmt.Fprintf(o.ErrOut, "warning: the emptyDirs %s start empty: %v\n", printers.EscapeTerminal(strings.Join(emptyDirs, ", ")), p.Refused)
	case p.Refused != nil:
		fmt.Fprintf(o.ErrOut, "warning: the emptyDirs %s start empty: copying them from node %s needs a pod with a read-only host path volume, which the cluster refused: %v\n",
			printers.EscapeTerminal(strings.Join(emptyDirs, ", ")), node, p.Refused)
	default:
		var report bytes.Buffer
		if err := podexec.RunScript(ctx, o.Executor, p.Container, `cat -- "$1"`, []string{helper.CopyReport}, nil, &report); err != nil {
			fmt.Fprintf(o.ErrOut, "warning: what was copied from node %s is unknown: %v\n", node, err)
		}
		for _, line := range strings.Split(report.String(), "\n") {
			if name, ok := strings.CutPrefix(line, "gone "); ok {
				fmt.Fprintf(o.ErrOut, "warning: emptyDir %s starts empty: the kubelet of node %s removed it when the pod finished\n",
					printers.EscapeTerminal(name), node)
			}
		}
	}
	return o.enter(ctx, p.Pod, step.Name, step.WorkingDir, helper.ToolboxBin)
}

// debugCopySpec is a copy of a finished step's container and what it mounts.
type debugCopySpec struct {
	finished  *helper.Finished
	container corev1.Container
	volumes   []corev1.Volume
}

// debugCopyOf copies the finished step f, and the volumes it mounts as
// f.Volumes gives them again: its emptyDirs new ones, which CopyFromNode
// may fill.
func debugCopyOf(f *helper.Finished) debugCopySpec {
	c := f.Step.DeepCopy()
	// What made it a step, and would end or disturb a copy that waits for
	// a session: probes, hooks, ports, its terminal.
	c.LivenessProbe, c.ReadinessProbe, c.StartupProbe, c.Lifecycle = nil, nil, nil, nil
	c.Ports, c.Stdin, c.StdinOnce, c.TTY, c.RestartPolicy, c.ResizePolicy = nil, false, false, false, nil, nil
	return debugCopySpec{finished: f, container: *c, volumes: f.Volumes()}
}

// emptyDirs names the emptyDirs of the copy: the step's, on its node.
func (d debugCopySpec) emptyDirs() []string {
	var names []string
	for _, v := range d.volumes {
		if v.EmptyDir != nil {
			names = append(names, v.Name)
		}
	}
	return names
}

// spec is the copy's pod spec, in image, with the toolbox of helperImage
// and, when it has emptyDirs, their contents copied from the node; where
// the finished step was placed.
func (d debugCopySpec) spec(image, helperImage string) corev1.PodSpec {
	orig := d.finished.Pod
	c := *d.container.DeepCopy()
	c.Image = image
	spec := corev1.PodSpec{
		Containers:                   []corev1.Container{c},
		Volumes:                      append([]corev1.Volume(nil), d.volumes...),
		ServiceAccountName:           orig.Spec.ServiceAccountName,
		AutomountServiceAccountToken: orig.Spec.AutomountServiceAccountToken,
		SecurityContext:              orig.Spec.SecurityContext,
		ImagePullSecrets:             orig.Spec.ImagePullSecrets,
		Tolerations:                  orig.Spec.Tolerations,
		OS:                           orig.Spec.OS,
		HostAliases:                  orig.Spec.HostAliases,
		DNSPolicy:                    orig.Spec.DNSPolicy,
		DNSConfig:                    orig.Spec.DNSConfig,
		EnableServiceLinks:           orig.Spec.EnableServiceLinks,
		RuntimeClassName:             orig.Spec.RuntimeClassName,
	}
	d.finished.Schedule(&spec)
	helper.AddToolbox(&spec, helperImage, c.Name)
	if names := d.emptyDirs(); len(names) > 0 {
		helper.CopyFromNode(&spec, helperImage, d.finished.NodeEmptyDirs(), names)
	}
	return spec
}

// debugDir is where a debug session starts: the step's working directory
// when the debug container sees it too (a volume covers it), else the
// debug image's own.
func (o *HijackOptions) debugDir(step *corev1.Container) string {
	if step == nil || step.WorkingDir == "" {
		return ""
	}
	if helper.OnWholeMount(step.VolumeMounts, step.WorkingDir) {
		return step.WorkingDir
	}
	return ""
}
