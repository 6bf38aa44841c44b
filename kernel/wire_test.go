package kernel

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
)

// phases records what Wire called, in order.
type phases struct {
	calls       []string
	args        []string
	validateErr error
	ctxKey      any
}

type key struct{}

func (p *phases) Complete(_ genericclioptions.RESTClientGetter, _ *cobra.Command, args []string) error {
	p.calls, p.args = append(p.calls, "complete"), args
	return nil
}

func (p *phases) Validate() error {
	p.calls = append(p.calls, "validate")
	return p.validateErr
}

func (p *phases) Run(ctx context.Context) error {
	p.calls, p.ctxKey = append(p.calls, "run"), ctx.Value(key{})
	return nil
}

func TestWire(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		noArgs    bool
		invalid   error
		wantCalls string
		wantUsage bool
	}{
		{name: "the three phases in order, with the arguments", args: []string{"--", "ls", "-l"}, wantCalls: "complete,validate,run"},
		{name: "a failed Validate is a usage error and nothing runs", invalid: errors.New("--x must be set"), wantCalls: "complete,validate", wantUsage: true},
		{name: "NoArgs refuses an argument before any phase", args: []string{"extra"}, noArgs: true, wantUsage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &phases{validateErr: tt.invalid}
			cmd := &cobra.Command{Use: "x", SilenceErrors: true, SilenceUsage: true}
			if tt.noArgs {
				NoArgs(cmd)
			}
			Wire(cmd, genericclioptions.NewConfigFlags(false), p)
			cmd.SetArgs(tt.args)
			err := cmd.ExecuteContext(context.WithValue(t.Context(), key{}, "cli's"))
			var usage *cmderr.UsageError
			if errors.As(err, &usage) != tt.wantUsage || !tt.wantUsage && err != nil {
				t.Errorf("Execute() = %v, want a usage error: %v", err, tt.wantUsage)
			}
			if got := strings.Join(p.calls, ","); got != tt.wantCalls {
				t.Errorf("phases %q, want %q", got, tt.wantCalls)
			}
			if tt.wantCalls == "complete,validate,run" && (p.ctxKey != "cli's" || strings.Join(p.args, " ") != "ls -l") {
				t.Errorf("Run's context %v, arguments %q: want the command's context and what follows --", p.ctxKey, p.args)
			}
			if !cmd.DisableFlagsInUseLine {
				t.Error("the usage line lists every flag")
			}
		})
	}
}
