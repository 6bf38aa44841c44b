package execute

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
)

// The command as cli runs it, through kernel.Wire: a mistake in the flags
// or arguments is a usage error (kubectl's hint to the help), what the
// task file asks that Kubernetes cannot do is not.
func TestCmdExecuteErrors(t *testing.T) {
	dir := t.TempDir()
	task := func(yaml string) string {
		f, err := os.CreateTemp(dir, "task-*.yml")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(yaml); err != nil {
			t.Fatal(err)
		}
		return f.Name()
	}
	good := task("platform: linux\nimage_resource: {type: registry-image, source: {repository: busybox}}\nrun: {path: sh}\n")
	tests := []struct {
		name  string
		args  []string
		want  string // in the error; "": none
		usage bool
	}{
		{"a dry run", []string{"-c", good, "--dry-run=client", "-o", "yaml", "--", "-v"}, "", false},
		{"an argument before --", []string{"-c", good, "stray"}, `unexpected "stray": arguments for the task go after --`, true},
		{"a flag Validate refuses", []string{"-c", good, "--dry-run=server"}, "only --dry-run=client is supported", true},
		{"no helper image", []string{"-c", good, "--dry-run=client", "-o", "yaml", "--helper-image="}, "--helper-image must name an image", true},
		{"a param no Secret can hold", []string{"-c", task("platform: linux\nimage_resource: {type: registry-image, source: {repository: x}}\nparams: {\"A B\": 1}\nrun: {path: sh}\n"),
			"--dry-run=client", "-o", "yaml"}, `param "A B"`, false},
		{"an output that cannot land", []string{"-c", task("platform: linux\nimage_resource: {type: registry-image, source: {repository: x}}\noutputs: [{name: out}]\nrun: {path: sh}\n"),
			"--dry-run=client", "-o", "yaml", "-o", "out=" + filepath.Join(dir, "no", "out")}, "is not a directory to land it in", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flags := genericclioptions.NewConfigFlags(false)
			ns := "ci"
			flags.Namespace = &ns
			var out bytes.Buffer
			cmd := NewCmdExecute(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &bytes.Buffer{}}, flags)
			cmd.SetArgs(tt.args)
			cmd.SilenceErrors, cmd.SilenceUsage = true, true
			err := cmd.ExecuteContext(t.Context())
			if tt.want == "" {
				if err != nil || !strings.Contains(out.String(), "kind: List") {
					t.Fatalf("Execute() = %v, printed %q; want the objects", err, out.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Execute() = %v, want an error with %q", err, tt.want)
			}
			if isUsage := errors.As(err, new(*cmderr.UsageError)); isUsage != tt.usage {
				t.Errorf("usage error = %v, want %v", isUsage, tt.usage)
			}
		})
	}
}
