package helper

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// stepWithVolumes mounts an emptyDir, a claim, a generic ephemeral volume, a
// host path and a Secret.
func stepWithVolumes() (*corev1.Pod, *corev1.Container) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "unit-1", UID: "u1"},
		Spec: corev1.PodSpec{NodeName: "node-1", NodeSelector: map[string]string{"pool": "ci"}, Volumes: []corev1.Volume{
			{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "unused", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "cache", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "cache"}}},
			{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}},
			{Name: "sock", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/run/x"}}},
			{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
		}},
	}
	step := &corev1.Container{Name: "main", VolumeMounts: []corev1.VolumeMount{
		{Name: "work", MountPath: "/tmp/build/work/"},
		{Name: "cache", MountPath: "/tmp/build/cache"},
		{Name: "scratch", MountPath: "/scratch"},
		{Name: "sock", MountPath: "/run/x"},
		{Name: "creds", MountPath: "/etc/creds"},
	}}
	return pod, step
}

func TestReadFinished(t *testing.T) {
	f := ReadFinished(stepWithVolumes())
	want := []struct {
		path  string
		kind  MountKind
		claim string
	}{
		{"/tmp/build/work", OnEmptyDir, ""}, {"/tmp/build/cache", OnClaim, "cache"}, {"/scratch", OnClaim, "unit-1-scratch"},
		{"/run/x", OnHostPath, ""}, {"/etc/creds", OnOther, ""},
	}
	if len(f.Mounts) != len(want) {
		t.Fatalf("mounts %+v", f.Mounts)
	}
	for i, w := range want {
		if m := f.Mounts[i]; m.MountPath != w.path || m.Kind != w.kind || m.Claim != w.claim {
			t.Errorf("mount %d = %s %d %q, want %s %d %q", i, m.MountPath, m.Kind, m.Claim, w.path, w.kind, w.claim)
		}
	}
	vols := f.Volumes()
	if len(vols) != 5 || vols[2].PersistentVolumeClaim == nil || vols[2].PersistentVolumeClaim.ClaimName != "unit-1-scratch" {
		t.Errorf("Volumes() = %+v, want the step's five, the ephemeral one as its claim", vols)
	}
}

// Place puts a reader of the emptyDirs on the step's node with the kubelet's
// root; a reader of shared claims alone goes where the step could.
func TestPlace(t *testing.T) {
	many := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "cache"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}}}
	client := fake.NewClientset(many)
	asked := 0
	ask := func(context.Context, string) (string, error) { asked++; return "/data/kubelet", nil }

	f := ReadFinished(stepWithVolumes())
	f.Place(t.Context(), client.CoreV1(), "", ask, f.Mounts[1:2])
	var spec corev1.PodSpec
	f.Schedule(&spec)
	if f.OnNode || f.Root.Dir != "" || asked != 0 || spec.NodeName != "" || spec.NodeSelector["pool"] != "ci" {
		t.Errorf("a shared claim: on node %v, root %q, asked %d, spec %+v", f.OnNode, f.Root.Dir, asked, spec)
	}

	f = ReadFinished(stepWithVolumes())
	f.Place(t.Context(), client.CoreV1(), "", ask, f.Mounts)
	spec = corev1.PodSpec{}
	f.Schedule(&spec)
	if !f.OnNode || f.Root.Dir != "/data/kubelet" || spec.NodeName != "node-1" {
		t.Errorf("with emptyDirs: on node %v, root %q, spec %+v", f.OnNode, f.Root.Dir, spec)
	}
	if v := f.NodeEmptyDirs(); v.Name != NodeVolumeName || v.HostPath.Path != "/data/kubelet/pods/u1/volumes/kubernetes.io~empty-dir" {
		t.Errorf("NodeEmptyDirs() = %+v", v)
	}
}

func TestBelow(t *testing.T) {
	tests := []struct {
		p, mount, rel string
		ok            bool
	}{
		{"/a/b", "/a/b", "", true},
		{"/a/b/c/d", "/a/b", "c/d", true},
		{"/a/bc", "/a/b", "", false},
		{"/a", "/a/b", "", false},
		{"/a/b", "/", "a/b", true},
	}
	for _, tt := range tests {
		if rel, ok := Below(tt.p, tt.mount); rel != tt.rel || ok != tt.ok {
			t.Errorf("Below(%q, %q) = %q, %v; want %q, %v", tt.p, tt.mount, rel, ok, tt.rel, tt.ok)
		}
	}
	mounts := []corev1.VolumeMount{{MountPath: "/work/"}, {MountPath: "/sub", SubPath: "x"}}
	for p, want := range map[string]bool{"/work/x": true, "/work": true, "/sub/x": false, "/other": false} {
		if got := OnWholeMount(mounts, p); got != want {
			t.Errorf("OnWholeMount(%q) = %v, want %v", p, got, want)
		}
	}
}
