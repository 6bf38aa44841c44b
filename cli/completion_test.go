package cli

import (
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestCompletion(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // substrings of stdout
	}{
		{"bash script", []string{"completion", "bash"}, []string{"__start_kubectl-concourse", "__complete"}},
		{"zsh script", []string{"completion", "zsh"}, []string{"#compdef kubectl-concourse"}},
		{"fish script", []string{"completion", "fish"}, []string{"complete -c kubectl-concourse"}},
		{"powershell script", []string{"completion", "powershell"}, []string{"Register-ArgumentCompleter"}},
		{"help names kubectl concourse and the shim", []string{"completion", "--help"},
			[]string{"kubectl concourse completion [command]", "kubectl_complete-concourse"}},
		{"subcommands", []string{"__complete", ""}, []string{"completion\t", "version\t", ":4\n"}},
		{"shells", []string{"__complete", "completion", ""}, []string{"bash\t", "zsh\t", "fish\t", "powershell\t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			streams, _, out, errOut := genericiooptions.NewTestIOStreams()
			root := NewCmdRoot(streams)
			root.SetArgs(tt.args)
			if err := root.Execute(); err != nil {
				t.Fatalf("%v: %v (stderr %q)", tt.args, err, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("%v: stdout lacks %q:\n%s", tt.args, w, out)
				}
			}
		})
	}
}
