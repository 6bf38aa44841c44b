package selector

import (
	"github.com/kubectl-concourse/kubectl-concourse/selector/labelenc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Steps lists every step container of pod with what its labels say, decoded:
// one per step-* container of a Tekton pod, else the contract's container.
// The views (containers, volumes, builds, watch) show them all, unfiltered.
func Steps(pod *corev1.Pod) []Match {
	return query{}.expand(pod)
}

// Owner reads what an object's labels say of the step it belongs to (a
// PVC's owner), decoded; Pod, Container and WorkingDir are left empty.
func Owner(obj metav1.Object) Match {
	get := func(key string) string {
		v, _ := labelenc.Original(obj.GetLabels(), obj.GetAnnotations(), key)
		return v
	}
	m := Match{
		Team: get(LabelTeam), Pipeline: get(LabelPipeline), Job: get(LabelJob),
		Build: get(LabelBuildName), BuildID: get(LabelBuildID), Step: get(LabelStepName),
		StepType: get(LabelStepType), Attempt: get(LabelAttempt), Resource: get(LabelResource),
	}
	if raw := obj.GetAnnotations()[AnnotationInstanceVars]; raw != "" {
		m.InstanceVars, _ = ParseInstanceVarsJSON(raw) // unreadable vars are shown as none
	}
	return m
}
