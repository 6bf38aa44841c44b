package execute

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

const privateImageTask = `platform: linux
image_resource:
  type: registry-image
  source: {repository: registry.example:5000/team/app, tag: "1", username: robot, password: hunter2}
run: {path: sh}
`

func TestPullSecretKeepsCredentialsOutOfThePodAndTheOutput(t *testing.T) {
	o, err := prepared(t, privateImageTask, func(o *ExecuteOptions) { o.InputFlags = nil })
	if err != nil {
		t.Fatal(err)
	}
	b := o.plan("", "1")
	pod, secrets := b.objects()
	if len(secrets) != 1 || secrets[0].Type != corev1.SecretTypeDockerConfigJson {
		t.Fatalf("secrets %v, want one pull Secret", secrets)
	}
	var config struct {
		Auths map[string]struct{ Username, Password, Auth string }
	}
	if err := json.Unmarshal(secrets[0].Data[corev1.DockerConfigJsonKey], &config); err != nil {
		t.Fatal(err)
	}
	if a := config.Auths["registry.example:5000"]; a.Username != "robot" || a.Password != "hunter2" || a.Auth != "cm9ib3Q6aHVudGVyMg==" {
		t.Errorf("auths = %+v", config.Auths)
	}
	if len(pod.Spec.ImagePullSecrets) != 1 || pod.Spec.ImagePullSecrets[0].Name != secrets[0].Name {
		t.Errorf("imagePullSecrets = %v", pod.Spec.ImagePullSecrets)
	}
	if len(pod.Spec.InitContainers) != 1 {
		t.Errorf("no gate holds the pull back until its Secret exists: init containers %v", pod.Spec.InitContainers)
	}
	spec, _ := json.Marshal(pod)
	if bytes.Contains(spec, []byte("hunter2")) {
		t.Error("the password is in the pod's spec")
	}
	streams, _, out, _ := genericiooptions.NewTestIOStreams()
	o.IOStreams = streams
	if err := o.print(pod, secrets); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "hunter2") || strings.Contains(out.String(), "cm9ib3Q6aHVudGVyMg") {
		t.Errorf("the dry run prints the credentials:\n%s", out)
	}
}

func TestRegistryOf(t *testing.T) {
	for repo, want := range map[string]string{
		"busybox": dockerHub, "library/busybox": dockerHub, "ghcr.io/org/app": "ghcr.io",
		"localhost/app": "localhost", "registry:5000/app": "registry:5000",
	} {
		if got := registryOf(repo); got != want {
			t.Errorf("registryOf(%q) = %q, want %q", repo, got, want)
		}
	}
}
