package helper

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
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
		name       string
		given      string
		ask        func(context.Context, string) (string, error)
		want       string
		wantRemedy string
	}{
		{"the flag wins", "/k", ask("/asked", nil), "/k", "give its root directory (its --root-dir) with --kubelet-dir"},
		{"the kubelet's answer", "", ask("/asked", nil), "/asked", "give its root directory"},
		{"no answer: the default, and why", "", ask("", errors.New("you may not ask it")), DefaultKubeletDir,
			"/var/lib/kubelet is the default, the kubelet could not be asked for its --root-dir (you may not ask it): give that directory with --kubelet-dir"},
		{"not asked", "", nil, DefaultKubeletDir, "(not asked)"},
	}
	for _, tt := range tests {
		got := KubeletDirOf(t.Context(), tt.given, tt.ask, "node-1")
		if got.Dir != tt.want || !strings.Contains(got.Remedy(), tt.wantRemedy) {
			t.Errorf("%s: KubeletDirOf() = %q, remedy %q; want %q, %q", tt.name, got.Dir, got.Remedy(), tt.want, tt.wantRemedy)
		}
	}
}

// Why the kubelet could not be asked, by the API server's answer.
func TestKubeletDir(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    string
		wantErr string
	}{
		{"told", http.StatusOK, `{"flags":{"root-dir":"/data/k"}}`, "/data/k", ""},
		{"forbidden", http.StatusForbidden, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403}`, "", `"nodes/proxy"`},
		{"no flagz", http.StatusNotFound, `404 page not found`, "", "does not serve /flagz"},
		{"unreachable", http.StatusBadGateway, `dial tcp: no route`, "", "did not answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/v1/nodes/node-1/proxy/flagz" {
					t.Errorf("asked %s", r.URL.Path)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			client, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			got, err := KubeletDir(t.Context(), client.CoreV1().RESTClient(), "node-1")
			if got != tt.want || (tt.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("KubeletDir() = %q, %v; want %q, %q", got, err, tt.want, tt.wantErr)
			}
		})
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
