// Package cli builds the root `kubectl concourse` command, wires signals into
// the context, prints errors once and maps them to exit codes.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // cloud auth providers, as kubectl
	utilexec "k8s.io/client-go/util/exec"

	"github.com/kubectl-concourse/kubectl-concourse/artifacts"
	"github.com/kubectl-concourse/kubectl-concourse/hijack"
	"github.com/kubectl-concourse/kubectl-concourse/views"
)

// Main runs the plugin with args and returns the process exit status.
func Main(ctx context.Context, args []string, streams genericiooptions.IOStreams) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewCmdRoot(streams)
	root.SetArgs(args)
	return exitStatus(root.ExecuteContext(ctx), streams)
}

// exitStatus prints err once and chooses the exit status: a remote or build
// status travels as an ExitError and is returned as is, without a message.
func exitStatus(err error, streams genericiooptions.IOStreams) int {
	if err == nil {
		return 0
	}
	var exit utilexec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitStatus()
	}
	fmt.Fprintf(streams.ErrOut, "error: %v\n", err)
	return 1
}

// NewCmdRoot returns the root command with every kubectl global flag.
func NewCmdRoot(streams genericiooptions.IOStreams) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{
		Use:   "kubectl-concourse",
		Short: "Debug and move files in Concourse builds that run on Kubernetes",
		Long: `kubectl concourse brings fly's hijack, one-off artifacts (upload, download), workers,
containers, volumes, builds and watch to Concourse builds that run as pods, found through labels.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl concourse"},
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError(c, err) })
	addKubectlFlags(root.PersistentFlags(), flags)

	root.AddCommand(
		NewCmdVersion(streams),
		hijack.NewCmdHijack(streams, flags),
		artifacts.NewCmdUpload(streams, flags), artifacts.NewCmdDownload(streams, flags),
		views.NewCmdWorkers(streams, flags),
		views.NewCmdContainers(streams, flags),
		views.NewCmdVolumes(streams, flags),
		views.NewCmdBuilds(streams, flags),
		views.NewCmdWatch(streams, flags),
	)
	addCompletion(root)
	hintArgErrors(root)
	return root
}

// hintArgErrors makes a wrong number of positional arguments a usage error
// like a bad flag: cobra reports it outside the flag error func.
func hintArgErrors(c *cobra.Command) {
	for _, sub := range c.Commands() {
		hintArgErrors(sub)
	}
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError(cmd, err)
			}
			return nil
		}
	}
}

// addKubectlFlags adds kubectl's global flags, except that --server loses its
// -s shorthand: in fly's vocabulary, shared by hijack and friends, -s is the step.
func addKubectlFlags(dst *pflag.FlagSet, flags *genericclioptions.ConfigFlags) {
	kubectl := pflag.NewFlagSet("kubectl", pflag.ContinueOnError)
	flags.AddFlags(kubectl)
	kubectl.VisitAll(func(f *pflag.Flag) {
		if f.Name == "server" {
			f.Shorthand = ""
		}
		dst.AddFlag(f)
	})
}

// usageError adds kubectl's hint to an error caused by how the command was called.
func usageError(c *cobra.Command, err error) error {
	return fmt.Errorf("%w\nSee '%s -h' for help and examples", err, c.CommandPath())
}
