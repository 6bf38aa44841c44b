package gc

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

func TestOrphaned(t *testing.T) {
	execute := map[string]string{selector.LabelCreatedBy: selector.CreatedByExecute}
	kept := map[string]string{selector.AnnotationKept: "true"}
	tests := []struct {
		name        string
		labels      map[string]string
		annotations map[string]string
		phase       corev1.PodPhase
		want        bool
	}{
		{"a followed build that failed", execute, nil, corev1.PodFailed, true},
		{"a followed build that succeeded", execute, nil, corev1.PodSucceeded, true},
		{"a followed build that runs", execute, nil, corev1.PodRunning, false},
		{"a followed build that waits", execute, nil, corev1.PodPending, false},
		{"a kept build that ended", execute, kept, corev1.PodFailed, false},
		{"a helper pod that ended", map[string]string{selector.LabelManagedBy: selector.ManagedByPlugin}, nil, corev1.PodSucceeded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: tt.labels, Annotations: tt.annotations}, Status: corev1.PodStatus{Phase: tt.phase}}
			if got := orphaned(p); got != tt.want {
				t.Errorf("orphaned = %v, want %v", got, tt.want)
			}
		})
	}
}
