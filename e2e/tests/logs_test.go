package tests

import (
	"strings"
	"testing"
	"time"
)

// `logs -f` of a build whose pods have all ended prints what there is and
// exits once no next step came for --settle, instead of following forever.
func TestLogsFollowAFinishedBuildExits(t *testing.T) {
	ns := testCluster.Namespace(t)
	for _, s := range []step{
		{name: "compile", pipeline: "main", job: "test", build: "5", step: "compile", command: []string{"sh", "-c", "echo compiled"}},
		{name: "test", pipeline: "main", job: "test", build: "5", step: "test", command: []string{"sh", "-c", "echo tested; exit 1"}},
	} {
		createPod(t, stepPod(ns, s), finished)
	}
	began := time.Now()
	r := logsOf(t, ns, "-j", "main/test", "-f", "--settle", "3s")
	if took := time.Since(began); took > 30*time.Second {
		t.Errorf("logs -f of a finished build took %s", took)
	}
	if want := "compile | compiled\ntest    | tested\n"; r.exitCode != 0 || r.stdout != want || r.stderr != "" {
		t.Errorf("exit %d, stdout %q (want %q), stderr %q", r.exitCode, r.stdout, want, r.stderr)
	}
	if strings.Contains(r.stderr, "error") {
		t.Errorf("stderr %q", r.stderr)
	}
}
