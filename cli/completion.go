package cli

import "github.com/spf13/cobra"

// completionViaKubectl is appended to cobra's help for `completion`: users
// type `kubectl concourse <TAB>`, which these scripts do not cover.
const completionViaKubectl = `
Completing "kubectl concourse ..." is kubectl's own job: kubectl 1.26 and later
run kubectl_complete-concourse from PATH, which ships beside the binary in every
release archive and forwards to "kubectl-concourse __complete". The scripts
generated here complete the kubectl-concourse executable when it is run directly.
`

// addCompletion adds cobra's `completion bash|zsh|fish|powershell` now rather
// than when the command runs, so that the reference docs list it.
func addCompletion(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Long += completionViaKubectl
		}
	}
}
