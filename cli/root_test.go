package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	utilexec "k8s.io/client-go/util/exec"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"

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
		{"unknown command", []string{"hijak"},
			"error: unknown command \"hijak\" for \"kubectl concourse\"\n\nDid you mean this?\n\thijack\n\nSee 'kubectl concourse -h' for help and examples\n"},
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

// TestExitStatus pins what reaches the user for each kind of failure: only a
// cmderr.Status is silent; a remote helper's exit status, however wrapped,
// is an ordinary error with its message (it once exited 2 with nothing).
func TestExitStatus(t *testing.T) {
	remoteExit := fmt.Errorf("upload into /full: receive: %w: tar: write error: No space left on device",
		utilexec.CodeExitError{Err: errors.New("command terminated with exit code 2"), Code: 2})
	// A real refusal: nothing listens on port 1.
	_, refused := http.Get("http://127.0.0.1:1/api/v1/pods")
	if refused == nil {
		t.Fatal("something answered on port 1")
	}
	tests := []struct {
		name     string
		err      error
		cause    error
		wantCode int
		wantOut  string
	}{
		{"success", nil, nil, 0, ""},
		{"the command's own result is silent", fmt.Errorf("session: %w", cmderr.Status{Code: 42}), nil, 42, ""},
		{"a wrapped remote exit is reported", remoteExit, nil, 1,
			"error: upload into /full: receive: command terminated with exit code 2: tar: write error: No space left on device\n"},
		{"usage", cmderr.Usagef("--bad %q", "x"), nil, 1,
			"error: --bad \"x\"\nSee 'kubectl concourse hijack -h' for help and examples\n"},
		{"interrupted", fmt.Errorf("wait: %w", context.Canceled), cmderr.Interrupted{Signal: syscall.SIGINT}, 130, ""},
		{"a command that returns the interruption", fmt.Errorf("session ended: %w", cmderr.Interrupted{Signal: syscall.SIGINT}),
			cmderr.Interrupted{Signal: syscall.SIGINT}, 130, ""},
		{"terminated", context.Canceled, cmderr.Interrupted{Signal: syscall.SIGTERM}, 143, ""},
		{"interrupted with a cleanup failure", errors.New("pod x/y is left behind"), cmderr.Interrupted{Signal: syscall.SIGINT}, 130,
			"error: pod x/y is left behind\n"},
		{"the API server refuses the connection: kubectl's words", fmt.Errorf("find a/b: list pods: %w", refused), nil, 1,
			"error: The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?\n"},
		{"an unknown host", fmt.Errorf("list pods: %w", &url.Error{Op: "Get", URL: "https://nowhere.invalid/api",
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}}}), nil, 1,
			"error: Unable to connect to the server: dial tcp: lookup nowhere.invalid: no such host\n"},
		{"an untrusted certificate", fmt.Errorf("list pods: %w", &url.Error{Op: "Get", URL: "https://k/api",
			Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}}), nil, 1,
			"error: Unable to connect to the server: tls: failed to verify certificate: x509: certificate signed by unknown authority\n"},
		{"a connection broken mid-transfer keeps its context", fmt.Errorf("download /x: receive: %w", &url.Error{Op: "Get", URL: "https://k/exec",
			Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}}), nil, 1,
			"error: download /x: receive: Get \"https://k/exec\": read tcp: connection reset by peer\n"},
	}
	root := NewCmdRoot(genericiooptions.NewTestIOStreamsDiscard())
	hijack, _, err := root.Find([]string{"hijack"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			streams, _, _, errOut := genericiooptions.NewTestIOStreams()
			if code := exitStatus(hijack, tt.err, tt.cause, streams); code != tt.wantCode {
				t.Errorf("exitStatus(%v) = %d, want %d", tt.err, code, tt.wantCode)
			}
			if errOut.String() != tt.wantOut {
				t.Errorf("exitStatus(%v) printed %q, want %q", tt.err, errOut.String(), tt.wantOut)
			}
		})
	}
}

// The first signal cancels the command as interrupted by it; the second
// is the command's to hear (execute exits at once on it).
func TestHearInterrupts(t *testing.T) {
	signals := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancelCause(context.Background())
	again, finished := make(chan struct{}), make(chan struct{})
	defer close(finished)
	go hearInterrupts(signals, cancel, again, finished)
	signals <- syscall.SIGTERM
	<-ctx.Done()
	var stop cmderr.Interrupted
	if !errors.As(context.Cause(ctx), &stop) || stop.Code() != 143 {
		t.Fatalf("cause %v, want an interruption by SIGTERM", context.Cause(ctx))
	}
	select {
	case <-again:
		t.Fatal("again closed by the first signal")
	case <-time.After(50 * time.Millisecond):
	}
	signals <- syscall.SIGINT
	select {
	case <-again:
	case <-time.After(10 * time.Second):
		t.Fatal("the second signal did not close again")
	}
}
