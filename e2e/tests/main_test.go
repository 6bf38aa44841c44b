// Package tests holds the black-box end-to-end tests: the built plugin, run
// through the real kubectl, against one test cluster per test binary.
package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/cluster"
)

// testCluster is shared by every test of this package.
var testCluster *cluster.Cluster

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if err := buildPlugin(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	realNodes, whyNone, err := cluster.RealNodesFromEnv("")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if realNodes == 0 {
		fmt.Fprintf(os.Stderr, "e2e: NO REAL NODE: tests run on the node agent only; their kubelet subtests are skipped (%s)\n", whyNone)
	}
	testCluster, err = cluster.Start(ctx, cluster.Options{LinkRate: 25_000_000, RealNodes: realNodes})
	if err != nil {
		fmt.Fprintf(os.Stderr, "start test cluster: %v\n", err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprint(os.Stderr, testCluster.Logs())
	}
	if err := testCluster.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop test cluster: %v\n", err)
		return 1
	}
	return code
}

// buildPlugin builds the plugin from this checkout into bin/, so the tests
// always run the code they sit next to; as make build and a release build
// it (static, -trimpath), so the tests run what ships and share its
// compiled packages.
func buildPlugin() error {
	root := cluster.RepoRoot()
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(root, "bin", "kubectl-concourse"), "./cmd/kubectl-concourse")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build kubectl-concourse: %v\n%s", err, out)
	}
	return nil
}
