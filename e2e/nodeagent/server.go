package nodeagent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

const (
	streamIdleTimeout     = 4 * time.Hour
	streamCreationTimeout = remotecommand.DefaultStreamCreationTimeout
)

// startServer serves the kubelet API on Address:Port over TLS, requiring a
// client certificate signed by ClientCAFile (the API server's).
func (a *Agent) startServer(ctx context.Context) (*http.Server, error) {
	cert, err := tls.LoadX509KeyPair(a.cfg.ServingCertFile, a.cfg.ServingKeyFile)
	if err != nil {
		return nil, fmt.Errorf("load serving certificate: %w", err)
	}
	caPEM, err := os.ReadFile(a.cfg.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("read client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in client CA file %s", a.cfg.ClientCAFile)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(a.cfg.Address, strconv.Itoa(a.cfg.Port)))
	if err != nil {
		return nil, fmt.Errorf("listen for the kubelet API: %w", err)
	}
	a.port = ln.Addr().(*net.TCPAddr).Port

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("/exec/{namespace}/{pod}/{container}", a.serveExec)
	mux.HandleFunc("/exec/{namespace}/{pod}/{uid}/{container}", a.serveExec)
	mux.HandleFunc("/attach/{namespace}/{pod}/{container}", a.serveAttach)
	mux.HandleFunc("/attach/{namespace}/{pod}/{uid}/{container}", a.serveAttach)
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", a.serveLogs)

	srv := &http.Server{
		Handler: mux,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
			MinVersion:   tls.VersionTLS12,
			// Streaming upgrades (SPDY, WebSocket) need HTTP/1.1.
			NextProtos: []string{"http/1.1"},
		},
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.logf("kubelet API: %v", err)
		}
	}()
	return srv, nil
}

// writeError answers with a plain-text error, as the kubelet does; the API
// server relays it to the client.
func writeError(w http.ResponseWriter, code int, err error) {
	http.Error(w, err.Error(), code)
}

func (a *Agent) lookup(w http.ResponseWriter, r *http.Request) (*podRuntime, *corev1.Pod, bool) {
	p, pod, err := a.podByName(r.PathValue("namespace"), r.PathValue("pod"))
	if err != nil {
		code := http.StatusInternalServerError
		if apierrors.IsNotFound(err) {
			code = http.StatusNotFound
		}
		writeError(w, code, err)
		return nil, nil, false
	}
	return p, pod, true
}

func (a *Agent) serveExec(w http.ResponseWriter, r *http.Request) {
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	// The pod as the informer has it now: its fault injection annotations
	// apply to this session.
	p, pod, ok := a.lookup(w, r)
	if !ok {
		return
	}
	session := &execSession{pod: p, podObj: pod}
	remotecommand.ServeExec(w, r, session, pod.Namespace+"/"+pod.Name, string(pod.UID), r.PathValue("container"),
		r.URL.Query()["command"], opts, streamIdleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

func (a *Agent) serveAttach(w http.ResponseWriter, r *http.Request) {
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	p, _, ok := a.lookup(w, r)
	if !ok {
		return
	}
	name := r.PathValue("container")
	p.mu.Lock()
	c := p.containers[name]
	var ap *attachPoint
	if c != nil {
		ap = c.attach
	}
	p.mu.Unlock()
	if ap == nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("container %q is not running", name))
		return
	}
	remotecommand.ServeAttach(w, r, attacher{ap}, r.PathValue("namespace")+"/"+r.PathValue("pod"), "", name,
		opts, streamIdleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

type attacher struct{ ap *attachPoint }

func (at attacher) AttachContainer(ctx context.Context, _, _, _ string, in io.Reader, out, errOut io.WriteCloser, _ bool, resize <-chan remotecommand.TerminalSize) error {
	at.ap.serve(ctx, in, out, errOut, resize)
	return nil
}

func (a *Agent) serveLogs(w http.ResponseWriter, r *http.Request) {
	opts, err := parseLogOptions(r.URL.Query(), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	p, _, ok := a.lookup(w, r)
	if !ok {
		return
	}
	name := r.PathValue("container")
	p.mu.Lock()
	c := p.containers[name]
	var path string
	var run *containerRun
	waitReason := "ContainerCreating"
	if c != nil {
		run = c.run
	}
	if s, ok := p.state.statuses[name]; ok && s.State.Waiting != nil {
		waitReason = s.State.Waiting.Reason
	}
	p.mu.Unlock()
	podName := r.PathValue("pod")
	switch {
	case c == nil || run == nil:
		writeError(w, http.StatusBadRequest, fmt.Errorf("container %q in pod %q is waiting to start: %s", name, podName, waitReason))
		return
	case opts.previous:
		// The run before the most recent one, as the kubelet counts.
		if run.index < 1 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("previous terminated container %q in pod %q not found", name, podName))
			return
		}
		path = c.logPath(run.index - 1)
		run = nil
	default:
		path = run.logPath
	}
	finished := func() bool {
		if run == nil {
			return true
		}
		select {
		case <-run.done:
			return true
		default:
			return false
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	fw := &flushWriter{w: w}
	if err := readLog(r.Context(), path, opts, fw, finished); err != nil {
		if !fw.wrote {
			writeError(w, http.StatusInternalServerError, fmt.Errorf("read log: %w", err))
		}
	}
}

// flushWriter sends each write at once, for followed logs.
type flushWriter struct {
	w     http.ResponseWriter
	wrote bool
}

func (f *flushWriter) Write(b []byte) (int, error) {
	f.wrote = true
	return f.w.Write(b)
}

func (f *flushWriter) Flush() {
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
}
