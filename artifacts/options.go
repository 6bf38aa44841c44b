// Package artifacts implements `kubectl concourse upload` and `download`:
// files in and out of a build step's container, found by fly's flags, or
// through a helper container or pod of the plugin's own where the step
// cannot run the transfer itself (no sh or tar, a container or pod that has
// ended). Package transfer moves the files.
package artifacts

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/helper"
	"github.com/kubectl-concourse/kubectl-concourse/kernel"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
	"github.com/kubectl-concourse/kubectl-concourse/transfer"
)

// TransferOptions is the state both commands share.
type TransferOptions struct {
	genericiooptions.IOStreams

	Target        selector.Target
	Compress      string
	Verify        bool
	Retries       int
	PreserveOwner bool
	Quiet         bool
	Progress      bool // draw progress even when stderr is not a terminal
	Verbose       bool // say which way the transfer went (the agent or the scripts)
	HelperImage   string
	// KubeletDir is the kubelet's root directory on a finished step's
	// node ("": asked of the kubelet, else helper.DefaultKubeletDir).
	KubeletDir string

	kernel.Connection

	// isTerminal decides about progress and the chooser; a field for tests.
	isTerminal func(any) bool
	// agent says whether the in-container agent carries the transfer
	// (transfer.AgentFromEnv).
	agent transfer.AgentUse
	// askKubelet asks a node's kubelet for its root directory (nil: not
	// asked).
	askKubelet func(ctx context.Context, node string) (string, error)
}

func newTransferOptions(streams genericiooptions.IOStreams) TransferOptions {
	d := transfer.DefaultSettings(nil)
	return TransferOptions{IOStreams: streams, Compress: d.Compress, Verify: d.Verify, Retries: d.Retries, HelperImage: helper.DefaultImage}
}

func (o *TransferOptions) addFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	o.Target.AddFlags(fs)
	fs.StringVar(&o.Compress, "compress", o.Compress, "Compress the stream: auto (when the measured link, not the CPUs, is the limit), gzip or none")
	fs.BoolVar(&o.Verify, "verify", o.Verify, "Compare every file's checksum end to end (md5 or sha256: needs md5sum or sha256sum in the container); a cut stream is caught either way")
	fs.IntVar(&o.Retries, "retries", o.Retries, "Resume a broken stream this many times, with only the files not yet intact; negative: no limit")
	fs.BoolVar(&o.PreserveOwner, "preserve-owner", o.PreserveOwner, "Keep numeric owners and groups (default: files belong to whoever writes them)")
	fs.BoolVarP(&o.Quiet, "quiet", "q", o.Quiet, "Draw no progress")
	fs.BoolVar(&o.Progress, "progress", o.Progress, "Draw progress on stderr even when it is not a terminal")
	fs.BoolVarP(&o.Verbose, "verbose", "v", o.Verbose, "Say on stderr which way the transfer goes: the in-container agent, or the container's shell scripts and why")
	kernel.AddHelperImageFlag(fs, &o.HelperImage, "Image of the ephemeral helper container used when the step's image has no sh or tar")
}

func (o *TransferOptions) complete(getter genericclioptions.RESTClientGetter) error {
	if o.isTerminal == nil {
		o.isTerminal = printers.IsTerminal
	}
	var err error
	if o.agent, err = transfer.AgentFromEnv(); err != nil {
		return err
	}
	if err := kernel.Connect(getter, &o.Connection); err != nil {
		return err
	}
	if o.askKubelet == nil {
		o.askKubelet = helper.AskKubelet(o.Client.CoreV1().RESTClient())
	}
	return nil
}

func (o *TransferOptions) validate() error {
	if err := o.Target.Validate(); err != nil {
		return err
	}
	if !transfer.ValidCompress(o.Compress) {
		return fmt.Errorf("--compress must be auto, gzip or none, not %q", o.Compress)
	}
	if err := kernel.ValidateHelperImage(o.HelperImage); err != nil {
		return err
	}
	if o.Quiet && o.Progress {
		return errors.New("--quiet and --progress contradict each other")
	}
	return kernel.ValidateKubeletDir(o.KubeletDir)
}

// run resolves the step and runs move in its container, or in a helper
// container beside it when the step's image cannot (no sh or no tar) or its
// container has ended in a pod that runs on. remotePath is the remote path
// the transfer touches, which the helper checks lies on a volume; readOnly
// says the transfer only reads there. A step whose pod has finished is
// finished's to reach (nil: it cannot be).
func (o *TransferOptions) run(ctx context.Context, remotePath string, readOnly bool, move func(context.Context, transfer.Endpoint, transfer.Settings) error,
	finished func(context.Context, *selector.Match, transfer.Settings) error) error {
	m, err := kernel.ResolveOne(ctx, o.Client.CoreV1(), o.Namespace, o.Target, o.In, o.ErrOut, o.isTerminal(o.In) && o.isTerminal(o.ErrOut))
	if err != nil || m == nil {
		return err // nil: fly's chooser was dismissed, which is not an error either
	}
	tty := o.isTerminal(o.ErrOut)
	prog := transfer.NewProgress(ctx, o.ErrOut, !o.Quiet && (o.Progress || tty), tty)
	s := transfer.Settings{Compress: o.Compress, Verify: o.Verify, Retries: o.Retries, PreserveOwner: o.PreserveOwner,
		Warnf: o.warnf(prog), Progress: prog, Agent: o.agent}
	if o.Verbose {
		s.Verbosef = s.Warnf
	}
	step := podexec.Container{Namespace: m.Pod.Namespace, Pod: m.Pod.Name, Name: m.Container}
	viaHelper := func(cause error) error {
		return o.viaHelper(ctx, m, readOnly, func(ctx context.Context, ep transfer.Endpoint) error {
			return move(ctx, ep, s)
		}, cause, transfer.RemoteAbs(m.WorkingDir, remotePath))
	}
	switch phase, ended := stepState(m); {
	case phase == corev1.PodSucceeded || phase == corev1.PodFailed:
		if finished == nil {
			err = fmt.Errorf("pod %s has %s: a finished step's containers are gone, and nothing can be put into it",
				printers.EscapeTerminal(m.Pod.Namespace+"/"+m.Pod.Name), phase)
			break
		}
		err = finished(ctx, m, s)
	case ended != "":
		err = viaHelper(errors.New(ended))
	default:
		err = move(ctx, transfer.Endpoint{Executor: o.Executor, Container: step, WorkingDir: m.WorkingDir}, s)
		if errors.Is(err, transfer.ErrNoTar) {
			err = viaHelper(err)
		}
	}
	prog.Wait()
	return cmderr.ExplainForbidden(err, m.Pod.Namespace, "create", "pods/exec")
}

// stepState is the phase of the step's pod and, when the step's container
// has ended while the pod runs on (other containers keep it), how.
func stepState(m *selector.Match) (corev1.PodPhase, string) {
	if m.Pod.Status.Phase != corev1.PodRunning {
		return m.Pod.Status.Phase, ""
	}
	for _, st := range m.Pod.Status.ContainerStatuses {
		if t := st.State.Terminated; st.Name == m.Container && t != nil {
			return m.Pod.Status.Phase, fmt.Sprintf("the step's container has ended (%s, exit code %d)", printers.EscapeTerminal(t.Reason), t.ExitCode)
		}
	}
	return m.Pod.Status.Phase, ""
}

// warnf prints warnings above the progress bars when there are any.
func (o *TransferOptions) warnf(p *transfer.Progress) func(string, ...any) {
	w := p.Writer(o.ErrOut)
	return func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
}
