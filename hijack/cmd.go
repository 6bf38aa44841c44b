package hijack

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-concourse/kubectl-concourse/kernel"
)

var (
	hijackLong = templates.LongDesc(`
		Run a shell or a command in the container of a Concourse build step, as fly hijack
		does, found by the step's labels: one LIST of pods by label selector.

		The process starts in the step's working directory (-w overrides it). With no
		command, bash is started, or sh when the image has no bash. When stdin and stdout
		are terminals the session gets a TTY; otherwise stdin is streamed and closed at
		EOF. The remote exit status is the exit status of this command.

		Several matching containers are offered in fly's chooser on a terminal, or listed
		with the flags that pick each. With no job and no build, the most recent one-off
		build (fly execute) is used.

		A step that has finished, or whose image has no shell, can be entered with --debug:
		a running step gets an ephemeral container (--debug-image, else --helper-image)
		that sees its processes and mounts its volumes. A finished step is copied from its
		own image (--debug-image another), with its environment, working directory and
		claims, on its node when they need it; its emptyDirs start with what the node still
		holds of them when the cluster admits a read-only host path (--kubelet-dir names
		the kubelet's root), and the copy says when they cannot. The copy needs neither a
		shell nor sleep in the image: an init container brings the helper image's static
		busybox, whose applets come after the image's own on PATH. It is removed afterwards,
		Ctrl-C included, unless --keep.`)

	hijackExample = templates.Examples(`
		# Open a shell in the "unit" step of build 42 of job "test" in pipeline "main"
		kubectl concourse hijack -j main/test -b 42 -s unit

		# Run a command in the step of an instanced pipeline, starting in /tmp
		kubectl concourse hijack -j main/branch:feature/test -s unit -w /tmp -- ls -la

		# Enter the container a Concourse web URL points at
		kubectl concourse hijack -u https://ci.example.com/teams/main/pipelines/main/jobs/test/builds/42 -s unit

		# Pipe a script into the step of the most recent one-off build (fly execute)
		echo 'go test ./...' | kubectl concourse hijack -s one-off -- sh

		# Run the step's own tools again in a copy of a finished step, with its files
		kubectl concourse hijack -j main/test -b 42 -s unit --debug -- make test`)
)

// NewCmdHijack returns `hijack` (aliases intercept, i).
func NewCmdHijack(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := NewHijackOptions(streams)
	cmd := &cobra.Command{
		Use:     "hijack [flags] [-- COMMAND [ARGS...]]",
		Aliases: []string{"intercept", "i"},
		Short:   "Run a shell or command in the container of a build step",
		Long:    hijackLong,
		Example: hijackExample,
	}
	// As in kubectl exec, flags end at the command: `hijack -s x ls -l`
	// runs `ls -l`.
	cmd.Flags().SetInterspersed(false)
	o.AddFlags(cmd)
	return kernel.Wire(cmd, getter, o)
}
