package hijack_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-concourse/kubectl-concourse/cli"
)

// apiServer answers the pod LIST of namespace ci with status and body.
func apiServer(t *testing.T, status int, body string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/namespaces/ci/pods" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	config := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: ci}}]
current-context: c
`, srv.URL)
	if err := os.WriteFile(kubeconfig, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return kubeconfig
}

func TestHijackCommand(t *testing.T) {
	empty := `{"kind":"PodList","apiVersion":"v1","items":[]}`
	forbidden := `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,
		"message":"pods is forbidden: User \"dev\" cannot list resource \"pods\" in API group \"\" in the namespace \"ci\""}`
	tests := []struct {
		name       string
		status     int
		body       string
		args       []string
		wantStatus int
		wantOut    string
		wantErr    string
	}{
		{"help through an alias", 200, empty, []string{"intercept", "-h"}, 0, "kubectl concourse hijack [flags] [-- COMMAND [ARGS...]]", ""},
		{"validation adds the usage hint", 200, empty, []string{"i", "-j", "nojob"}, 1, "",
			"error: -j/--job: \"nojob\": want PIPELINE/NAME or PIPELINE/KEY:VALUE/NAME\nSee 'kubectl concourse hijack -h' for help and examples\n"},
		{"bad flag adds the usage hint", 200, empty, []string{"hijack", "--nope"}, 1, "", "See 'kubectl concourse hijack -h'"},
		{"nothing matches", 200, empty, []string{"hijack", "-j", "main/test", "-b", "1", "-s", "unit", "--", "ls", "-l"}, 1, "",
			`error: no container matched step "unit" of main/test #1 in namespace ci`},
		{"forbidden names the permission", 403, forbidden, []string{"hijack", "-j", "main/test"}, 1, "",
			`error: permission denied: you need "list" on "pods" in namespace ci`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kubeconfig := apiServer(t, tt.status, tt.body)
			streams, _, out, errOut := genericiooptions.NewTestIOStreams()
			status := cli.Main(t.Context(), append([]string{"--kubeconfig", kubeconfig}, tt.args...), streams)
			if status != tt.wantStatus || !strings.Contains(out.String(), tt.wantOut) || !strings.Contains(errOut.String(), tt.wantErr) {
				t.Errorf("status %d\nstdout %q\nstderr %q\nwant %d, %q, %q", status, out.String(), errOut.String(), tt.wantStatus, tt.wantOut, tt.wantErr)
			}
		})
	}
}
