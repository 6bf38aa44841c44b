package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
)

// Set at build time with -ldflags "-X github.com/kubectl-concourse/kubectl-concourse/cli.version=...".
var (
	version = "dev"
	commit  = "unknown"
	date    = "unknown"
)

// NewCmdVersion prints the plugin's build information.
func NewCmdVersion(streams genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the kubectl concourse version",
		Args:  cmderr.Args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(streams.Out, "kubectl-concourse %s (commit %s, built %s)\n", version, commit, date)
			return err
		},
	}
}
