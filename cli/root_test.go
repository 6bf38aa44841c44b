package cli

import (
	"context"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// TestUsageErrors: a bad flag, a wrong number of arguments and a failed
// Validate all print one error with kubectl's hint and exit 1.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"workers", "--bogus"},
			"error: unknown flag: --bogus\nSee 'kubectl concourse workers -h' for help and examples\n"},
		{"missing argument", []string{"upload"},
			"error: accepts between 1 and 2 arg(s), received 0\nSee 'kubectl concourse upload -h' for help and examples\n"},
		{"extra argument", []string{"version", "x"},
			"error: unknown command \"x\" for \"kubectl concourse version\"\nSee 'kubectl concourse version -h' for help and examples\n"},
		{"validation", []string{"hijack", "-j", "nopipe"},
			"error: -j/--job: \"nopipe\": want PIPELINE/NAME or PIPELINE/KEY:VALUE/NAME\nSee 'kubectl concourse hijack -h' for help and examples\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			streams, _, out, errOut := genericiooptions.NewTestIOStreams()
			if code := Main(context.Background(), tt.args, streams); code != 1 {
				t.Errorf("Main(%q) = %d, want 1", tt.args, code)
			}
			if errOut.String() != tt.want {
				t.Errorf("Main(%q) printed %q, want %q", tt.args, errOut.String(), tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("Main(%q) wrote %q on stdout", tt.args, out.String())
			}
		})
	}
}
