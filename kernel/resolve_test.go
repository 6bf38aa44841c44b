package kernel

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

func stepPod(name, build string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: name, Labels: map[string]string{
			selector.LabelManagedBy: selector.ManagedByValue, selector.LabelPipeline: "main", selector.LabelJob: "test",
			selector.LabelBuildName: build, selector.LabelStepName: "unit", selector.LabelStepType: "task", selector.LabelAttempt: "1"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}},
	}
}

// Every command's lookup names the permission it lacked, where: the LIST
// in the namespace, in every namespace with -A, the GET of --pod.
func TestResolveExplainsARefusal(t *testing.T) {
	tests := []struct {
		name          string
		target        selector.Target
		verb, wantNS  string
		refusedAction string
	}{
		{"a list in the namespace", selector.Target{Job: "main/test"}, "list", "ci", "list"},
		{"a list in every namespace", selector.Target{Job: "main/test", AllNamespaces: true}, "list", "", "list"},
		{"the get of --pod", selector.Target{Pod: "unit-1"}, "get", "ci", "get"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset()
			client.PrependReactor(tt.refusedAction, "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New(`User "dev" cannot `+tt.verb+` resource "pods"`))
			})
			_, err := Resolve(t.Context(), client.CoreV1(), "ci", tt.target)
			var fe *cmderr.ForbiddenError
			if !errors.As(err, &fe) || fe.Verb != tt.verb || fe.Resource != "pods" || fe.Namespace != tt.wantNS || !apierrors.IsForbidden(err) {
				t.Errorf("Resolve() = %v, want a ForbiddenError for %s pods in %q that keeps the API's", err, tt.verb, tt.wantNS)
			}
		})
	}
}

func TestResolveOne(t *testing.T) {
	client := fake.NewClientset(stepPod("unit-1", "1"), stepPod("unit-2", "2"))
	tests := []struct {
		name        string
		target      selector.Target
		in          string
		interactive bool
		wantPod     string // "": none
		wantErr     string // substring; "": none
	}{
		{"one match", selector.Target{Job: "main/test", Build: "2"}, "", false, "unit-2", ""},
		{"chosen", selector.Target{Job: "main/test"}, "1\n", true, "unit-1", ""},
		{"the chooser dismissed is no error", selector.Target{Job: "main/test"}, "", true, "", ""},
		{"several without a terminal list the candidates", selector.Target{Job: "main/test"}, "", false, "", "2 containers match"},
		{"none", selector.Target{Job: "main/other"}, "", false, "", "no container matched"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prompt strings.Builder
			m, err := ResolveOne(t.Context(), client.CoreV1(), "ci", tt.target, strings.NewReader(tt.in), &prompt, tt.interactive)
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("ResolveOne() = %v, want an error with %q", err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Errorf("ResolveOne() = %v", err)
			case tt.wantPod == "" && m != nil, tt.wantPod != "" && (m == nil || m.Pod.Name != tt.wantPod):
				t.Errorf("ResolveOne() = %+v, want pod %q", m, tt.wantPod)
			}
		})
	}
}
