package cmderr

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// An exec refused by RBAC reaches the plugin from client-go's own
// executors, SPDY and WebSocket, as they word it today: ExplainForbidden
// must still name the permission. A client-go that words it otherwise
// fails here, not in front of a user.
func TestExplainForbiddenReadsClientGoExecRefusals(t *testing.T) {
	status := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "unit-42",
		errors.New(`User "dev" cannot create resource "pods/exec" in API group "" in the namespace "ci"`)).ErrStatus
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(status)
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL + "/api/v1/namespaces/ci/pods/unit-42/exec?command=sh&stdout=true")
	if err != nil {
		t.Fatal(err)
	}
	config := &rest.Config{Host: srv.URL}
	spdy, err := remotecommand.NewSPDYExecutor(config, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := remotecommand.NewWebSocketExecutor(config, "GET", u.String())
	if err != nil {
		t.Fatal(err)
	}
	for name, ex := range map[string]remotecommand.Executor{"SPDY": spdy, "WebSocket": ws} {
		t.Run(name, func(t *testing.T) {
			err := ex.StreamWithContext(context.Background(), remotecommand.StreamOptions{Stdout: io.Discard})
			if err == nil {
				t.Fatal("the exec was not refused")
			}
			var fe *ForbiddenError
			if got := ExplainForbidden(err, "ci", "create", "pods/exec"); !errors.As(got, &fe) {
				t.Errorf("ExplainForbidden(%q) = %v, want a ForbiddenError: client-go words a refused exec otherwise now", err, got)
			}
		})
	}
}
