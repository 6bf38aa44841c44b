package nodeagent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/images"
)

func TestContainerCommand(t *testing.T) {
	img := images.Config{Entrypoint: []string{"/entry"}, Cmd: []string{"default", "$(NAME)"}}
	env := []string{"NAME=world", "PATH=/bin"}
	tests := []struct {
		name        string
		command     []string
		args        []string
		img         images.Config
		want        []string
		description string
	}{
		{name: "image defaults, unexpanded", img: img, want: []string{"/entry", "default", "$(NAME)"}},
		{name: "args replace Cmd", img: img, args: []string{"hello", "$(NAME)"}, want: []string{"/entry", "hello", "world"}},
		{name: "command drops Entrypoint and Cmd", img: img, command: []string{"sh", "-c"}, want: []string{"sh", "-c"}},
		{name: "command and args", img: img, command: []string{"echo"}, args: []string{"$(NAME)", "$$(NAME)", "$(MISSING)"}, want: []string{"echo", "world", "$(NAME)", "$(MISSING)"}},
		{name: "image with Cmd only", img: images.Config{Cmd: []string{"sh"}}, want: []string{"sh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &corev1.Container{Command: tt.command, Args: tt.args}
			if got := containerCommand(c, tt.img, env); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("containerCommand = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLookPath(t *testing.T) {
	rootfs := t.TempDir()
	for _, d := range []string{"bin", "usr/bin", "opt"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(rootfs, p), []byte("#!"), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("bin/busybox", 0o755)
	write("opt/data", 0o644)
	if err := os.Symlink("/bin/busybox", filepath.Join(rootfs, "usr/bin/env")); err != nil {
		t.Fatal(err)
	}
	// A link that points outside the rootfs on the host must not count.
	if err := os.Symlink("/bin/../../../../usr/bin/env", filepath.Join(rootfs, "bin/escape")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		argv0    string
		env      []string
		want     string
		notFound bool
	}{
		{argv0: "env", want: "/usr/bin/env"},
		{argv0: "busybox", env: []string{"PATH=/usr/bin:/bin"}, want: "/bin/busybox"},
		{argv0: "busybox", env: []string{"PATH=/usr/bin"}, notFound: true},
		{argv0: "/bin/busybox", want: "/bin/busybox"},
		{argv0: "/opt/data", notFound: true},
		{argv0: "sh", notFound: true},
		{argv0: "escape", want: "/bin/escape"},
		{argv0: "", notFound: true},
	}
	for _, tt := range tests {
		got, err := lookPath(rootfs, tt.argv0, tt.env)
		if tt.notFound {
			if err == nil {
				t.Errorf("lookPath(%q) = %q, want an error", tt.argv0, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("lookPath(%q) = %q, %v, want %q", tt.argv0, got, err, tt.want)
		}
	}
	var notFound errCommandNotFound
	if _, err := lookPath(rootfs, "sh", nil); !errors.As(err, &notFound) {
		t.Errorf("lookPath(sh) error = %v, want errCommandNotFound", err)
	}
}

func TestContainerEnv(t *testing.T) {
	client := fake.NewSimpleClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "ns"}, Data: map[string]string{"a": "1", "b": "2"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "ns"}, Data: map[string][]byte{"token": []byte("s3cret")}},
	)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u-1", Labels: map[string]string{"app": "x"}}}
	c := &corev1.Container{
		EnvFrom: []corev1.EnvFromSource{
			{Prefix: "CM_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}},
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Optional: ptr.To(true)}},
		},
		Env: []corev1.EnvVar{
			{Name: "GREETING", Value: "hi $(POD_NAME)"},
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "REF", Value: "$(CM_a)-$(POD_NAME)"},
			{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "token"}}},
			{Name: "B", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: "b"}}},
			{Name: "OPT", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: "zz", Optional: ptr.To(true)}}},
			{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "UID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}}},
		},
	}
	img := images.Config{Env: []string{"PATH=/custom/bin", "LANG=C"}}
	got, err := containerEnv(context.Background(), newObjectSource(client, "ns"), pod, c, img)
	if err != nil {
		t.Fatalf("containerEnv: %v", err)
	}
	want := []string{
		"PATH=/custom/bin", "HOSTNAME=p", "LANG=C", "HOME=/root", "CM_a=1", "CM_b=2",
		// GREETING is expanded before POD_NAME is defined, as on a kubelet.
		"GREETING=hi $(POD_NAME)", "POD_NAME=p", "REF=1-p", "TOKEN=s3cret", "B=2", "IP=127.0.0.1", "APP=x", "UID=u-1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("containerEnv =\n%q\nwant\n%q", got, want)
	}

	c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "missing"}}}}
	if _, err := containerEnv(context.Background(), newObjectSource(client, "ns"), pod, c, img); err == nil {
		t.Error("containerEnv with a missing required key succeeded")
	}
}

func TestRunAs(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(1000))}}}
	tests := []struct {
		name     string
		pod      *corev1.Pod
		c        *corev1.Container
		img      images.Config
		uid, gid uint32
	}{
		{name: "root by default", pod: &corev1.Pod{}, c: &corev1.Container{}},
		{name: "image user", pod: &corev1.Pod{}, c: &corev1.Container{}, img: images.Config{User: "65532:65533"}, uid: 65532, gid: 65533},
		{name: "pod overrides image", pod: pod, c: &corev1.Container{}, img: images.Config{User: "65532"}, uid: 1000},
		{name: "container overrides pod", pod: pod, c: &corev1.Container{SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To(int64(7)), RunAsGroup: ptr.To(int64(8))}}, uid: 7, gid: 8},
	}
	for _, tt := range tests {
		uid, gid := runAs(tt.pod, tt.c, tt.img)
		if uid != tt.uid || gid != tt.gid {
			t.Errorf("%s: runAs = %d:%d, want %d:%d", tt.name, uid, gid, tt.uid, tt.gid)
		}
	}
}
