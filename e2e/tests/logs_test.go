package tests

import (
	"slices"
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
	// The steps' logs stream side by side: their lines in any order.
	got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	slices.Sort(got)
	if want := "compile | compiled|test    | tested"; r.exitCode != 0 || strings.Join(got, "|") != want || r.stderr != "" {
		t.Errorf("exit %d, stdout %q (want the lines %q), stderr %q", r.exitCode, r.stdout, want, r.stderr)
	}
}
