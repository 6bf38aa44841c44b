package helper

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestParseFlagz(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"structured (1.36+)", `{"kind":"Flagz","apiVersion":"config.k8s.io/v1beta1","metadata":{"name":"kubelet"},"flags":{"root-dir":"/data/kubelet/","v":"2"}}`, "/data/kubelet"},
		{"text, one of its separators", "\nkubelet flagz\nWarning: This endpoint is not meant to be machine parseable.\n\nregister-node: true\nroot-dir: /var/lib/k0s/kubelet\n", "/var/lib/k0s/kubelet"},
		{"text with =", "root-dir=/var/lib/kubelet\n", "/var/lib/kubelet"},
		{"no root-dir", `{"flags":{"v":"2"}}`, ""},
		{"a relative one is no answer", "root-dir rel\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlagz([]byte(tt.in))
			if got != tt.want || (err == nil) != (tt.want != "") {
				t.Errorf("parseFlagz() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestKubeletDirOf(t *testing.T) {
	ask := func(dir string, err error) func(context.Context, string) (string, error) {
		return func(context.Context, string) (string, error) { return dir, err }
	}
	tests := []struct {
		name  string
		given string
		ask   func(context.Context, string) (string, error)
		want  string
	}{
		{"the flag wins", "/k", ask("/asked", nil), "/k"},
		{"the kubelet's answer", "", ask("/asked", nil), "/asked"},
		{"no answer: the default", "", ask("", errors.New("forbidden")), DefaultKubeletDir},
		{"not asked", "", nil, DefaultKubeletDir},
	}
	for _, tt := range tests {
		if got := KubeletDirOf(t.Context(), tt.given, tt.ask, "node-1"); got != tt.want {
			t.Errorf("%s: KubeletDirOf() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestOnStepNode(t *testing.T) {
	claim := func(name string, modes ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: name},
			Status: corev1.PersistentVolumeClaimStatus{AccessModes: modes}}
	}
	client := fake.NewClientset(claim("shared", corev1.ReadWriteMany), claim("rwo", corev1.ReadWriteOnce), claim("rwop", corev1.ReadWriteOncePod))
	tests := []struct {
		claims []string
		want   bool
	}{
		{nil, false},
		{[]string{"shared"}, false},
		{[]string{"shared", "rwo"}, true},
		{[]string{"rwop"}, true},
		{[]string{"unreadable"}, true},
	}
	for _, tt := range tests {
		if got := OnStepNode(t.Context(), client.CoreV1(), "ci", tt.claims); got != tt.want {
			t.Errorf("OnStepNode(%v) = %v, want %v", tt.claims, got, tt.want)
		}
	}
}

func TestClaimOf(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "unit-1"}}
	tests := []struct {
		v      corev1.Volume
		want   string
		wantOK bool
	}{
		{corev1.Volume{Name: "c", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "cache"}}}, "cache", true},
		{corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}}, "unit-1-scratch", true},
		{corev1.Volume{Name: "e", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}, "", false},
	}
	for _, tt := range tests {
		if got, ok := ClaimOf(pod, &tt.v); got != tt.want || ok != tt.wantOK {
			t.Errorf("ClaimOf(%s) = %q, %v", tt.v.Name, got, ok)
		}
	}
}
