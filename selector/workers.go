package selector

import corev1 "k8s.io/api/core/v1"

// Worker states, as Concourse names them (atc/db/worker.go).
const (
	WorkerRunning = "running"
	WorkerLanding = "landing" // cordoned, Concourse step pods still unfinished on it
	WorkerLanded  = "landed"  // cordoned, none left: safe to take away
	WorkerStalled = "stalled" // NotReady or Unknown: the node stopped reporting
)

// WorkerState is a node's state as a Concourse worker, given how many
// unfinished step pods of the contract are bound to it (see Unfinished).
// A worker that is not Ready is stalled; one that takes no new pods
// (cordoned, which is what landing does) is landing while unfinished step
// pods remain, and landed once none do, as Concourse's
// LandFinishedLandingWorkers moves a landing worker to landed when no
// unfinished build has a container on it (atc/db/worker_lifecycle.go:148-176).
func WorkerState(node *corev1.Node, unfinished int) string {
	ready := corev1.ConditionUnknown
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ready = c.Status
		}
	}
	switch {
	case ready != corev1.ConditionTrue:
		return WorkerStalled
	case !node.Spec.Unschedulable:
		return WorkerRunning
	case unfinished > 0:
		return WorkerLanding
	default:
		return WorkerLanded
	}
}

// Unfinished reports whether a step pod may still run on its node: its
// phase is neither Succeeded nor Failed. A pod being deleted is unfinished
// until it is gone, as its containers may still be stopping.
func Unfinished(pod *corev1.Pod) bool {
	return pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
}
