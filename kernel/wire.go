package kernel

import (
	"context"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/selector/complete"
)

// Command is an Options' three phases, as kubectl's commands have them:
// Complete turns the arguments and the kubeconfig into typed fields
// (filling only those tests did not preset), Validate checks the flags
// without calling any API, Run does the work.
type Command interface {
	Complete(getter genericclioptions.RESTClientGetter, cmd *cobra.Command, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// Wire makes cmd run c: Complete, Validate (whose failure is a usage
// error, printed with kubectl's hint to the command's help), then Run with
// the command's context, which cli cancels on SIGINT and SIGTERM. It
// registers the completion of the target flags cmd has, and returns cmd.
func Wire(cmd *cobra.Command, getter genericclioptions.RESTClientGetter, c Command) *cobra.Command {
	cmd.DisableFlagsInUseLine = true
	cmd.RunE = func(cc *cobra.Command, args []string) error {
		if err := c.Complete(getter, cc, args); err != nil {
			return err
		}
		if err := c.Validate(); err != nil {
			return cmderr.Usage(err)
		}
		return c.Run(cc.Context())
	}
	complete.Register(cmd, func() (kubernetes.Interface, string, error) {
		clients := ClientsOf(getter)
		namespace, _, err := clients.Namespace()
		if err != nil {
			return nil, "", err
		}
		client, err := clients.Kube()
		return client, namespace, err
	})
	return cmd
}

// NoArgs makes cmd take no positional arguments (a usage error, with
// kubectl's hint) and complete none, and returns it.
func NoArgs(cmd *cobra.Command) *cobra.Command {
	cmd.Args, cmd.ValidArgsFunction = cmderr.Args(cobra.NoArgs), cobra.NoFileCompletions
	return cmd
}
