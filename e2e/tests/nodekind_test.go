package tests

import (
	"testing"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/nodekind"
)

// nodeKinds are the kinds of node a test that runs on each kind runs on:
// our agent, then a real kubelet (skipped, with the reason, where the
// cluster has no real node).
var nodeKinds = []nodekind.Kind{nodekind.Agent, nodekind.Kubelet}

// onEachNodeKind runs body once per kind of node, as subtests named after
// the kind, each with a namespace whose pods (the plugin's debug pods
// included) run on that kind. Tests whose behaviour can differ between the
// agent and a real runtime use it: the real kubelet is the reference, and
// the agent must not let a test pass that a real cluster would fail.
func onEachNodeKind(t *testing.T, body func(t *testing.T, ns string)) {
	t.Helper()
	for _, kind := range nodeKinds {
		t.Run(string(kind), func(t *testing.T) {
			body(t, testCluster.NamespaceOn(t, kind))
		})
	}
}

// onEachNodeKindWhileWaiting is onEachNodeKind for a test that spends its
// time waiting (a keeper's grace, a watch's settle) rather than working: it
// runs in parallel with the other such tests, once every ordinary test is
// done, and its node kinds run side by side, so the waits overlap instead of
// adding up.
func onEachNodeKindWhileWaiting(t *testing.T, body func(t *testing.T, ns string)) {
	t.Helper()
	t.Parallel()
	for _, kind := range nodeKinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			body(t, testCluster.NamespaceOn(t, kind))
		})
	}
}
