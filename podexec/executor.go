// Package podexec runs commands in pod containers over the API server's exec
// subresource, WebSocket first with an SPDY fallback, as kubectl exec does.
package podexec

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
)

// Request names the container and the command to run in it.
type Request struct {
	Namespace, Pod, Container string
	Command                   []string
	Stdin, TTY                bool
	// Bulk marks a data transfer (upload, download): it asks for SPDY
	// first, which the API server and the kubelet proxy as it is, where a
	// WebSocket stream is translated to SPDY frame by frame on its way
	// (about 5 ns of CPU per byte on the benchmark machine, the single
	// largest cost of a transfer there). WebSocket is the fallback when
	// SPDY cannot be had (a proxy that only passes WebSocket upgrades).
	Bulk bool
}

// Streams are the local ends of the remote process's stdio. Nil streams are
// not requested from the container.
type Streams struct {
	In          io.Reader
	Out, ErrOut io.Writer
}

// Executor runs a command in a container. A remote non-zero exit comes back
// as a k8s.io/client-go/util/exec.ExitError.
type Executor interface {
	Exec(ctx context.Context, r Request, s Streams, resize remotecommand.TerminalSizeQueue) error
}

// RemoteExecutor is the real Executor.
type RemoteExecutor struct {
	Config *rest.Config
	Client kubernetes.Interface

	// spdyRefused remembers that a bulk exec got through only over
	// WebSocket, so that the next ones do not ask for SPDY again.
	spdyRefused atomic.Bool
}

// NewRemoteExecutor returns an Executor that talks to the API server of config.
func NewRemoteExecutor(config *rest.Config, client kubernetes.Interface) *RemoteExecutor {
	return &RemoteExecutor{Config: config, Client: client}
}

// Exec implements Executor.
func (e *RemoteExecutor) Exec(ctx context.Context, r Request, s Streams, resize remotecommand.TerminalSizeQueue) error {
	opts := &corev1.PodExecOptions{
		Container: r.Container,
		Command:   r.Command,
		Stdin:     r.Stdin && s.In != nil,
		Stdout:    s.Out != nil,
		Stderr:    s.ErrOut != nil && !r.TTY, // a TTY merges stderr into stdout
		TTY:       r.TTY,
	}
	req := e.Client.CoreV1().RESTClient().Post().
		Resource("pods").Namespace(r.Namespace).Name(r.Pod).
		SubResource("exec").
		VersionedParams(opts, scheme.ParameterCodec)
	exec, err := e.newStreamExecutor(req, r.Bulk)
	if err != nil {
		return err
	}
	so := remotecommand.StreamOptions{Tty: r.TTY, TerminalSizeQueue: resize}
	if opts.Stdin {
		so.Stdin = s.In
	}
	if opts.Stdout {
		so.Stdout = s.Out
	}
	if opts.Stderr {
		so.Stderr = s.ErrOut
	}
	if err := exec.StreamWithContext(ctx, so); err != nil {
		if ctx.Err() != nil {
			// client-go words a request the context cut short with the
			// whole exec URL and breaks the error chain ("error sending
			// request: Post ...: operation was canceled"): the context's
			// end is the cause, and an interrupted command exits quietly
			// on it.
			return fmt.Errorf("the exec was cut short: %w", context.Cause(ctx))
		}
		return tidy(err)
	}
	return nil
}

// tidy drops the repeats of a prefix that the API server and the kubelet
// both put before an exec failure ("Internal error occurred: Internal error
// occurred: ..."), keeping the error itself for errors.Is/As.
func tidy(err error) error {
	const internal = "Internal error occurred: "
	msg := err.Error()
	if !strings.Contains(msg, internal+internal) {
		return err
	}
	for strings.Contains(msg, internal+internal) {
		msg = strings.ReplaceAll(msg, internal+internal, internal)
	}
	return &tidyError{msg: msg, err: err}
}

type tidyError struct {
	msg string
	err error
}

func (e *tidyError) Error() string { return e.msg }
func (e *tidyError) Unwrap() error { return e.err }

// newStreamExecutor mirrors kubectl: WebSocket (RFC 6455 wants GET) with a
// fallback to SPDY when the upgrade fails, unless
// KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false asks for SPDY only. A bulk
// request turns the order round (Request.Bulk).
func (e *RemoteExecutor) newStreamExecutor(req *rest.Request, bulk bool) (remotecommand.Executor, error) {
	spdy, err := remotecommand.NewSPDYExecutor(e.Config, "POST", req.URL())
	if err != nil {
		return nil, fmt.Errorf("create SPDY executor: %w", err)
	}
	if !websocketsEnabled() {
		return spdy, nil
	}
	ws, err := remotecommand.NewWebSocketExecutor(e.Config, "GET", req.URL().String())
	if err != nil {
		return nil, fmt.Errorf("create WebSocket executor: %w", err)
	}
	if bulk {
		return &spdyFirst{spdy: spdy, ws: ws, refused: &e.spdyRefused}, nil
	}
	return remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
}

// spdyFirst asks for SPDY, then WebSocket when the SPDY upgrade was
// refused. The upgrade is refused before any stream exists, so nothing of
// stdin has been read when WebSocket takes over. An exec the server
// refuses outright (forbidden, no such pod) is refused over both, and the
// WebSocket error, the one non-bulk execs get, is returned.
type spdyFirst struct {
	spdy, ws remotecommand.Executor
	refused  *atomic.Bool
}

func (f *spdyFirst) Stream(opts remotecommand.StreamOptions) error {
	return f.StreamWithContext(context.Background(), opts)
}

func (f *spdyFirst) StreamWithContext(ctx context.Context, opts remotecommand.StreamOptions) error {
	if !f.refused.Load() {
		err := f.spdy.StreamWithContext(ctx, opts)
		if err == nil || !spdyUpgradeFailed(err) {
			return err
		}
	}
	err := f.ws.StreamWithContext(ctx, opts)
	if err == nil {
		f.refused.Store(true)
	}
	return err
}

// spdyUpgradeFailed: client-go's SPDY round tripper reports a response
// other than 101 Switching Protocols only in words (cmderr reads them), a
// proxy in its own.
func spdyUpgradeFailed(err error) bool {
	return cmderr.UpgradeRefusedInWords(err) || httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
}

func websocketsEnabled() bool {
	v, ok := os.LookupEnv("KUBECTL_REMOTE_COMMAND_WEBSOCKETS")
	if !ok {
		return true
	}
	enabled, err := strconv.ParseBool(v)
	return err != nil || enabled
}
