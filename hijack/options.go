// Package hijack implements `kubectl concourse hijack`: a shell or command in
// the container of a Concourse build step, found by fly's flags, started in
// the step's working directory.
package hijack

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/kubectl-concourse/kubectl-concourse/helper"
	"github.com/kubectl-concourse/kubectl-concourse/kernel"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// HijackOptions is the state of one hijack.
type HijackOptions struct {
	genericiooptions.IOStreams

	Target     selector.Target
	WorkDir    string // -w; used only when workDirSet
	workDirSet bool
	Debug      bool
	DebugImage string // "": the helper image next to a running step, the step's own for a copy
	// HelperImage has a static busybox and sh: the debug container next
	// to a running step, the tools a copy brings along, and the copy's
	// image when the step's cannot run.
	HelperImage string
	KubeletDir  string // the kubelet's root on a finished step's node ("": asked, else the default)
	Keep        bool
	Command     []string // after the flags; empty: fly's default shell

	kernel.Connection
	Term string // the local $TERM, forwarded as fly does

	// isTerminal decides about stdin/stdout; a field so tests can fake a terminal.
	isTerminal func(any) bool
	// askKubelet asks a node's kubelet for its root directory (nil: not asked).
	askKubelet func(ctx context.Context, node string) (string, error)
}

// NewHijackOptions sets every default.
func NewHijackOptions(streams genericiooptions.IOStreams) *HijackOptions {
	return &HijackOptions{IOStreams: streams, HelperImage: helper.DefaultImage}
}

// AddFlags binds the target flags (shared with the other commands) and hijack's own.
func (o *HijackOptions) AddFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	o.Target.AddFlags(fs)
	fs.StringVarP(&o.WorkDir, "workdir", "w", o.WorkDir, "Directory to start in (default: the step's working directory)")
	fs.BoolVar(&o.Debug, "debug", o.Debug, "Enter through a debug container: an ephemeral container next to a running step, or a copy of a finished step's pod from its image, with its volumes")
	fs.StringVar(&o.DebugImage, "debug-image", o.DebugImage, "Image of the debug container (default: --helper-image next to a running step, the step's own image for a copy of a finished one)")
	kernel.AddHelperImageFlag(fs, &o.HelperImage, "Image with a static busybox: the debug container next to a running step, the tools a copy brings along, and the copy's image when the step's cannot run")
	kernel.AddKubeletDirFlag(fs, &o.KubeletDir)
	fs.BoolVar(&o.Keep, "keep", o.Keep, "With --debug on a finished step, keep the copy pod after the session")
}

// Complete fills what the flags do not say: the command, the namespace and,
// when still nil, the clients.
func (o *HijackOptions) Complete(getter genericclioptions.RESTClientGetter, cmd *cobra.Command, args []string) error {
	o.Command = args
	o.workDirSet = cmd.Flags().Changed("workdir")
	if o.Term == "" {
		o.Term = os.Getenv("TERM")
	}
	if o.isTerminal == nil {
		o.isTerminal = printers.IsTerminal
	}
	if err := kernel.Connect(getter, &o.Connection); err != nil {
		return err
	}
	if o.askKubelet == nil {
		o.askKubelet = helper.AskKubelet(o.Client.CoreV1().RESTClient())
	}
	return nil
}

// Validate checks the flags; it calls no API.
func (o *HijackOptions) Validate() error {
	if err := o.Target.Validate(); err != nil {
		return err
	}
	if err := kernel.ValidateHelperImage(o.HelperImage); err != nil {
		return err
	}
	if err := kernel.ValidateKubeletDir(o.KubeletDir); err != nil {
		return err
	}
	if o.Keep && !o.Debug {
		return errors.New("--keep applies to --debug only")
	}
	return nil
}

// Run finds the step, lets the user choose when several match, and enters it.
func (o *HijackOptions) Run(ctx context.Context) error {
	m, err := kernel.ResolveOne(ctx, o.Client.CoreV1(), o.Namespace, o.Target, o.In, o.ErrOut, o.terminal(o.In))
	if err != nil || m == nil {
		return err // nil: fly's chooser was dismissed, which is not an error either
	}
	if o.Debug {
		return o.runDebug(ctx, m)
	}
	if err := enterable(m.Pod, m.Container); err != nil {
		return err
	}
	return o.enter(ctx, m.Pod, m.Container, m.WorkingDir, "")
}

// enterable explains why a step's container cannot be exec'd into, pointing
// at --debug.
func enterable(pod *corev1.Pod, container string) error {
	name := printers.EscapeTerminal(pod.Namespace + "/" + pod.Name)
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		return fmt.Errorf("pod %s has %s, so its containers are gone; --debug opens a copy of it from the step's image, with its volumes",
			name, pod.Status.Phase)
	}
	for _, s := range append(pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses...) {
		if s.Name != container {
			continue
		}
		switch {
		case s.State.Waiting != nil:
			return fmt.Errorf("container %s of pod %s is waiting (%s) and cannot be entered yet",
				printers.EscapeTerminal(container), name, printers.EscapeTerminal(s.State.Waiting.Reason))
		case s.State.Terminated != nil:
			return fmt.Errorf("container %s of pod %s has terminated (%s, exit code %d); --debug adds a container next to it with its volumes",
				printers.EscapeTerminal(container), name, printers.EscapeTerminal(s.State.Terminated.Reason), s.State.Terminated.ExitCode)
		}
	}
	return nil
}

func (o *HijackOptions) terminal(stream any) bool {
	return stream != nil && o.isTerminal != nil && o.isTerminal(stream)
}
