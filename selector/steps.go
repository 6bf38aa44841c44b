package selector

import corev1 "k8s.io/api/core/v1"

// Steps lists every step container of pod with what its labels say, decoded:
// one per step-* container of a Tekton pod, else the contract's container.
// The views (containers, volumes, builds, watch) show them all, unfiltered.
func Steps(pod *corev1.Pod) []Match {
	return query{}.expand(pod)
}
