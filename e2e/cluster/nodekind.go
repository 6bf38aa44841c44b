package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/nodekind"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/realnode"
)

// RealNodesEnv chooses the real nodes of a test binary's cluster:
//
//	unset, "auto"  one if this machine can run it, else none (and tests say why)
//	"0", "off"     none
//	"N"            N, and failing to start them is an error (CI sets 1)
const RealNodesEnv = "TESTCLUSTER_REAL_NODES"

// RealNodesFromEnv reads RealNodesEnv. It returns how many real nodes to
// start and, when none, why (for the tests that skip because of it); err
// is set when real nodes are required but this machine cannot run them.
func RealNodesFromEnv(binDir string) (n int, whyNone string, err error) {
	if binDir == "" {
		binDir = filepath.Join(RepoRoot(), "bin")
	}
	switch v := os.Getenv(RealNodesEnv); v {
	case "0", "off":
		return 0, RealNodesEnv + "=" + v, nil
	case "", "auto":
		if err := realnode.Prerequisites(binDir); err != nil {
			return 0, err.Error(), nil
		}
		return 1, "", nil
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, "", fmt.Errorf("%s=%q: want auto, off or a number of nodes", RealNodesEnv, v)
		}
		if err := realnode.Prerequisites(binDir); err != nil {
			return 0, "", fmt.Errorf("%s=%s: %w", RealNodesEnv, v, err)
		}
		return n, "", nil
	}
}

// NamespaceOn is Namespace for pods on one kind of node: the namespace's
// annotations (admission plugins PodNodeSelector and
// PodTolerationRestriction) give every pod created in it, the plugin's own
// debug pods included, a nodeSelector for the kind and, for real nodes, the
// toleration of their taint. A test asking for real nodes in a cluster that
// has none is skipped with the reason.
func (c *Cluster) NamespaceOn(t testing.TB, kind nodekind.Kind) string {
	t.Helper()
	annotations := map[string]string{"scheduler.alpha.kubernetes.io/node-selector": nodekind.Label + "=" + string(kind)}
	if kind == nodekind.Kubelet {
		if len(c.RealNodes) == 0 {
			t.Skipf("no real node: %s", c.NoRealNodes)
		}
		tolerations, err := json.Marshal([]corev1.Toleration{{Key: nodekind.Label, Operator: corev1.TolerationOpEqual,
			Value: string(nodekind.Kubelet), Effect: corev1.TaintEffectNoSchedule}})
		if err != nil {
			t.Fatal(err)
		}
		annotations["scheduler.alpha.kubernetes.io/defaultTolerations"] = string(tolerations)
	}
	return c.namespace(t, annotations)
}
