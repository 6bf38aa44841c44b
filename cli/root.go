// Package cli builds the root `kubectl concourse` command, wires signals into
// the context, prints errors once and maps them to exit codes.
package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // cloud auth providers, as kubectl

	"github.com/kubectl-concourse/kubectl-concourse/artifacts"
	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/execute"
	"github.com/kubectl-concourse/kubectl-concourse/gc"
	"github.com/kubectl-concourse/kubectl-concourse/hijack"
	"github.com/kubectl-concourse/kubectl-concourse/kernel"
	"github.com/kubectl-concourse/kubectl-concourse/logs"
	"github.com/kubectl-concourse/kubectl-concourse/manage"
	"github.com/kubectl-concourse/kubectl-concourse/views"
)

// Main runs the plugin with args and returns the process exit status.
// SIGINT and SIGTERM cancel the command's context, so that every command
// cleans up before it returns; the exit status is then the shell's for that
// signal (130, 143), as kubectl's when it is interrupted. A second one is
// the command's to hear (kernel.InterruptedAgain): execute exits at once.
func Main(ctx context.Context, args []string, streams genericiooptions.IOStreams) int {
	// client-go reports what it also returns (a stdin copy that failed on a
	// cut stream) through klog: the error reaches the user once, from cli.
	klog.SetLogger(logr.Discard())
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	again, finished := make(chan struct{}), make(chan struct{})
	defer close(finished)
	ctx = kernel.WithInterruptedAgain(ctx, again)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	go hearInterrupts(signals, cancel, again, finished)
	root := NewCmdRoot(streams)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	return exitStatus(cmd, err, context.Cause(ctx), streams)
}

// hearInterrupts turns the first signal into the command's cancellation
// and the second into again's close, until finished.
func hearInterrupts(signals <-chan os.Signal, cancel context.CancelCauseFunc, again, finished chan struct{}) {
	select {
	case sig := <-signals:
		cancel(cmderr.Interrupted{Signal: sig.(syscall.Signal)})
	case <-finished:
		return
	}
	select {
	case <-signals:
		close(again)
	case <-finished:
	}
}

// exitStatus prints err once and chooses the exit status. A cmderr.Status is
// the command's result and exits quietly with its code; a usage error gets
// kubectl's hint. An interrupted command exits as the signal would have
// made it (128+signal), silently when the interruption is its only error:
// a cmderr.Interrupted, or the context.Canceled of a call it cut short.
func exitStatus(cmd *cobra.Command, err, cause error, streams genericiooptions.IOStreams) int {
	if err == nil {
		return 0
	}
	var status cmderr.Status
	if errors.As(err, &status) {
		if status.Explain != "" {
			fmt.Fprintf(streams.ErrOut, "error: %s\n", status.Explain)
		}
		return status.Code
	}
	var stop cmderr.Interrupted
	if errors.As(err, &stop) {
		return stop.Code()
	}
	code := 1
	if errors.As(cause, &stop) {
		code = stop.Code()
		if errors.Is(err, context.Canceled) {
			return code
		}
	}
	msg := err.Error()
	if m, ok := unreachable(err); ok {
		msg = m
	}
	var usage *cmderr.UsageError
	// cobra's lookup reports an unknown subcommand as a plain error, before
	// any command (or our Args checks) could type it.
	unknown := strings.HasPrefix(msg, "unknown command ")
	if (errors.As(err, &usage) || unknown) && cmd != nil {
		msg += fmt.Sprintf("\nSee '%s -h' for help and examples", cmd.CommandPath())
	}
	fmt.Fprintf(streams.ErrOut, "error: %s\n", msg)
	return code
}

// unreachable says what kubectl says (k8s.io/kubectl/pkg/cmd/util's
// StandardErrorMessage) when the API server could not be reached at all:
// refused, unknown host, untrusted certificate. The request's whole URL,
// which our wrapped error would print, says less than that. A connection
// that broke later, mid-transfer, keeps its own, longer message.
func unreachable(err error) (string, bool) {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return "", false
	}
	var op *net.OpError
	var tlsErr *tls.CertificateVerificationError
	switch {
	case errors.As(ue.Err, &op) && op.Op == "dial":
		if errors.Is(op.Err, syscall.ECONNREFUSED) {
			host := ue.URL
			if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
				host = u.Host
			}
			return fmt.Sprintf("The connection to the server %s was refused - did you specify the right host or port?", host), true
		}
	case errors.As(ue.Err, &tlsErr):
	default:
		return "", false
	}
	return fmt.Sprintf("Unable to connect to the server: %v", ue.Err), true
}

// NewCmdRoot returns the root command with every kubectl global flag.
func NewCmdRoot(streams genericiooptions.IOStreams) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{
		Use:   "kubectl-concourse",
		Short: "Debug and move files in Concourse builds that run on Kubernetes",
		Long: `kubectl concourse brings fly's hijack, execute (a task file as a one-off build), one-off
artifacts (upload, download), logs, workers, containers, volumes, builds and watch to Concourse builds
that run as pods, found through labels.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl concourse"},
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cmderr.Usage(err) })
	addKubectlFlags(root.PersistentFlags(), flags)
	// The commands make their clients from the flags through one Clients,
	// each client once and only when asked for.
	getter := kernel.NewClients(flags)

	root.AddCommand(
		NewCmdVersion(streams),
		hijack.NewCmdHijack(streams, getter),
		artifacts.NewCmdUpload(streams, getter), artifacts.NewCmdDownload(streams, getter),
		logs.NewCmdLogs(streams, getter), logs.NewCmdWatch(streams, getter),
		execute.NewCmdExecute(streams, getter), gc.NewCmdGC(streams, getter),
		views.NewCmdWorkers(streams, getter),
		views.NewCmdContainers(streams, getter),
		views.NewCmdVolumes(streams, getter),
		views.NewCmdBuilds(streams, getter),
		manage.NewCmdClearTaskCache(streams, getter), manage.NewCmdClearResourceCache(streams, getter),
		manage.NewCmdLandWorker(streams, getter), manage.NewCmdPruneWorker(streams, getter),
		manage.NewCmdAbortBuild(streams, getter),
	)
	addCompletion(root)
	return root
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
