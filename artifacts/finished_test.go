package artifacts

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-concourse/kubectl-concourse/helper"
)

// finishedPod is a finished step with an emptyDir working directory, a
// claim beside it and one inside it, a host path, a Secret, and a claim
// made for a generic ephemeral volume.
func finishedPod() (*corev1.Pod, *corev1.Container) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "unit-1", UID: "u1"},
		Spec: corev1.PodSpec{NodeName: "node-1", Volumes: []corev1.Volume{
			{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "cache", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "cache"}}},
			{Name: "deps", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "deps"}}},
			{Name: "sock", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/run/x"}}},
			{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
			{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}},
		}},
		Status: corev1.PodStatus{Phase: corev1.PodFailed},
	}
	step := &corev1.Container{Name: "main", WorkingDir: "/tmp/build/work", VolumeMounts: []corev1.VolumeMount{
		{Name: "work", MountPath: "/tmp/build/work"},
		{Name: "deps", MountPath: "/tmp/build/work/deps"},
		{Name: "cache", MountPath: "/tmp/build/cache/"},
		{Name: "cache", MountPath: "/tmp/build/cache/sub", SubPath: "inner"},
		{Name: "sock", MountPath: "/tmp/build/cache/sock"},
		{Name: "creds", MountPath: "/etc/creds"},
		{Name: "scratch", MountPath: "/scratch"},
	}}
	return pod, step
}

func TestPlanFinished(t *testing.T) {
	tests := []struct {
		src                  string
		root, rel, helperSrc string
		included, excluded   []string
		needsNode            bool
		err                  string
	}{
		{src: "/tmp/build/work/out", root: "work", rel: "out", helperSrc: "/.kubectl-concourse-node/work/out",
			needsNode: true},
		{src: "/tmp/build/work", root: "work", helperSrc: "/.kubectl-concourse-node/work",
			excluded: []string{"/tmp/build/work/deps"}, needsNode: true},
		{src: "/tmp/build/cache", root: "cache", helperSrc: "/tmp/build/cache",
			included: []string{"/tmp/build/cache/sub", "/tmp/build/cache/sock"}, needsNode: true},
		{src: "/tmp/build/cache/sub/x", root: "cache", rel: "x", helperSrc: "/tmp/build/cache/sub/x"},
		{src: "/scratch/a", root: "scratch", rel: "a", helperSrc: "/scratch/a"},
		{src: "/tmp/build", err: "was in the container's own filesystem"},
		{src: "/etc/creds/token", err: "not what the step made"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			p, err := planFinished(helper.ReadFinished(finishedPod()), tt.src)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("planFinished() = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.root.Name != tt.root || p.rel != tt.rel || p.helperPath() != tt.helperSrc || p.needsNode() != tt.needsNode {
				t.Errorf("root %s, rel %q, helper path %s, node %v", p.root.Name, p.rel, p.helperPath(), p.needsNode())
			}
			if got := mountPaths(p.included); got != strings.Join(tt.included, ",") {
				t.Errorf("included %s, want %v", got, tt.included)
			}
			if got := mountPaths(p.excluded); got != strings.Join(tt.excluded, ",") {
				t.Errorf("excluded %s, want %v", got, tt.excluded)
			}
		})
	}
}

func mountPaths(ms []helper.StepMount) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.MountPath)
	}
	return strings.Join(out, ",")
}

// The files helper mounts everything read-only, reads the node through one
// host path of the kubelet's directory, and loses only that without it.
func TestFilesHelperSpec(t *testing.T) {
	pod, step := finishedPod()
	root := int64(0)
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: &root}
	f := helper.ReadFinished(pod, step)
	f.Root, f.OnNode = helper.KubeletRoot{Dir: "/var/lib/kubelet"}, true
	p, err := planFinished(f, "/tmp/build/cache")
	if err != nil {
		t.Fatal(err)
	}
	spec := p.podSpec(f, "busybox")
	if spec.NodeName != "node-1" || *spec.AutomountServiceAccountToken || spec.SecurityContext.FSGroup != nil ||
		len(spec.SecurityContext.SupplementalGroups) != 1 {
		t.Errorf("pod spec %+v", spec)
	}
	for _, vm := range spec.Containers[0].VolumeMounts {
		if !vm.ReadOnly {
			t.Errorf("%s is mounted writable", vm.MountPath)
		}
	}
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim != nil && !v.PersistentVolumeClaim.ReadOnly {
			t.Errorf("claim %s is not read-only", v.Name)
		}
	}
	if len(spec.Volumes) != 2 || withoutNode(spec).Volumes[0].Name != "cache" || len(withoutNode(spec).Containers[0].VolumeMounts) != 2 {
		t.Errorf("volumes %+v; without the node %+v", spec.Volumes, withoutNode(spec))
	}

	p, _ = planFinished(f, "/tmp/build/work/out")
	spec = p.podSpec(f, "busybox")
	if hp := spec.Volumes[0].HostPath; hp == nil || hp.Path != "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir" || *hp.Type != corev1.HostPathDirectory {
		t.Errorf("node volume %+v", spec.Volumes)
	}
}

func TestReaderSecurity(t *testing.T) {
	yes, uid := true, int64(1000)
	tests := []struct {
		name   string
		pod    *corev1.PodSecurityContext
		step   *corev1.SecurityContext
		wantAs int64 // -1: unset (the image's user)
	}{
		{"no context: the image's user", nil, nil, -1},
		{"the step's user", nil, &corev1.SecurityContext{RunAsUser: &uid}, 1000},
		{"non-root without a user: nobody", &corev1.PodSecurityContext{RunAsNonRoot: &yes}, nil, nobody},
		{"privileges are not copied", nil, &corev1.SecurityContext{Privileged: &yes, Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}}}, -1},
	}
	for _, tt := range tests {
		c := readerSecurity(tt.step)
		p := readerPodSecurity(tt.pod, c)
		as := int64(-1)
		switch {
		case c.RunAsUser != nil:
			as = *c.RunAsUser
		case p.RunAsUser != nil:
			as = *p.RunAsUser
		}
		if as != tt.wantAs || c.Privileged != nil || c.Capabilities != nil && len(c.Capabilities.Add) > 0 || *c.AllowPrivilegeEscalation {
			t.Errorf("%s: runs as %d, %+v", tt.name, as, c)
		}
	}
}
