package podexec

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

func TestWebsocketsEnabled(t *testing.T) {
	tests := []struct {
		name, value string
		set, want   bool
	}{
		{name: "unset", want: true},
		{name: "true", value: "true", set: true, want: true},
		{name: "false", value: "false", set: true, want: false},
		{name: "0", value: "0", set: true, want: false},
		{name: "garbage keeps the default", value: "maybe", set: true, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", tt.value)
			if !tt.set {
				os.Unsetenv("KUBECTL_REMOTE_COMMAND_WEBSOCKETS") // t.Setenv restores it afterwards
			}
			if got := websocketsEnabled(); got != tt.want {
				t.Errorf("websocketsEnabled() with %q = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

// transportStub is one transport of spdyFirst: it fails with err and
// counts its streams.
type transportStub struct {
	err     error
	streams int
}

func (s *transportStub) Stream(opts remotecommand.StreamOptions) error {
	return s.StreamWithContext(context.Background(), opts)
}

func (s *transportStub) StreamWithContext(context.Context, remotecommand.StreamOptions) error {
	s.streams++
	return s.err
}

func TestSPDYFirstFallsBackToWebSocket(t *testing.T) {
	// client-go's SPDY round tripper's words for a response other than 101.
	refused := errors.New("unable to upgrade connection: 400 Bad Request")
	exited := errors.New("command terminated with exit code 3")
	tests := []struct {
		name             string
		spdyErr, wsErr   error
		want             error
		spdy, ws         int // streams per transport over two execs
		rememberRefusals bool
	}{
		{name: "SPDY works", want: nil, spdy: 2, ws: 0},
		{name: "SPDY refused: WebSocket, and only WebSocket next time", spdyErr: refused, want: nil, spdy: 1, ws: 2, rememberRefusals: true},
		{name: "the command's own failure is not retried", spdyErr: exited, want: exited, spdy: 2, ws: 0},
		{name: "refused by both: WebSocket's error, SPDY asked again", spdyErr: refused, wsErr: exited, want: exited, spdy: 2, ws: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spdy, ws := &transportStub{err: tt.spdyErr}, &transportStub{err: tt.wsErr}
			var refusedBefore atomic.Bool
			f := &spdyFirst{spdy: spdy, ws: ws, refused: &refusedBefore}
			for i := range 2 {
				if err := f.StreamWithContext(context.Background(), remotecommand.StreamOptions{}); !errors.Is(err, tt.want) {
					t.Fatalf("exec %d: %v, want %v", i+1, err, tt.want)
				}
			}
			if spdy.streams != tt.spdy || ws.streams != tt.ws {
				t.Errorf("streams: SPDY %d, WebSocket %d; want %d, %d", spdy.streams, ws.streams, tt.spdy, tt.ws)
			}
			if refusedBefore.Load() != tt.rememberRefusals {
				t.Errorf("refusal remembered: %v, want %v", refusedBefore.Load(), tt.rememberRefusals)
			}
		})
	}
}

// client-go's SPDY executor says a refused upgrade only in words, which
// spdyUpgradeFailed reads: pinned here against client-go itself, with a
// server that answers the upgrade as one that speaks only WebSocket does.
func TestSPDYUpgradeFailedReadsClientGo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upgrade request required", http.StatusBadRequest)
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL + "/api/v1/namespaces/ci/pods/p/exec?command=sh&stdout=true")
	if err != nil {
		t.Fatal(err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(&rest.Config{Host: srv.URL}, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	err = spdy.StreamWithContext(context.Background(), remotecommand.StreamOptions{Stdout: io.Discard})
	if err == nil || !spdyUpgradeFailed(err) {
		t.Errorf("spdyUpgradeFailed(%v) = false: client-go words a refused SPDY upgrade otherwise now", err)
	}
}
