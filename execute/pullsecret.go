package execute

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// registryAuth is the credentials of a task's image_resource
// (source.username and source.password, as the registry-image resource
// takes them), for the registry its repository names.
type registryAuth struct {
	registry, username, password string
}

// dockerHub is the registry of a repository that names none, as Docker's
// config files key it.
const dockerHub = "https://index.docker.io/v1/"

// imageAuth reads an image_resource's credentials; nil when it has none.
func imageAuth(ir *ImageResource) *registryAuth {
	if ir == nil {
		return nil
	}
	user, _ := ir.Source["username"].(string)
	pass, _ := ir.Source["password"].(string)
	if user == "" && pass == "" {
		return nil
	}
	repo, _ := ir.Source["repository"].(string)
	return &registryAuth{registry: registryOf(repo), username: user, password: pass}
}

// registryOf is the registry a repository lives on: its first part when
// that names a host (a dot, a port, localhost), else Docker Hub, as the
// container runtimes read an image reference.
func registryOf(repo string) string {
	host, _, ok := strings.Cut(repo, "/")
	if ok && (strings.ContainsAny(host, ".:") || host == "localhost") {
		return host
	}
	return dockerHub
}

func (b oneOff) pullSecretName() string { return b.podName() + "-pull" }

// pullSecret is the Secret the kubelet pulls the task's image with: the
// credentials reach the registry only through it, never through the pod's
// spec or the plugin's output. The pod owns it, as it owns the params'.
func (b oneOff) pullSecret() *corev1.Secret {
	a := b.PullAuth
	config := map[string]map[string]map[string]string{"auths": {a.registry: {
		"username": a.username, "password": a.password,
		"auth": base64.StdEncoding.EncodeToString([]byte(a.username + ":" + a.password)),
	}}}
	data, _ := json.Marshal(config) // maps of strings always marshal
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: b.ownedMeta(b.pullSecretName()),
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: data},
	}
}

// ownedMeta is the metadata of an object the build's pod owns; the owner's
// UID is filled once the pod exists.
func (b oneOff) ownedMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: b.Namespace,
		Labels:          map[string]string{selector.LabelCreatedBy: selector.CreatedByExecute, selector.LabelBuildID: b.BuildID},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: b.podName()}}}
}

// redacted is s as a dry run prints it: credentials replaced by what they
// come from.
func redacted(s *corev1.Secret) *corev1.Secret {
	if s.Type != corev1.SecretTypeDockerConfigJson {
		return s
	}
	out := s.DeepCopy()
	out.Data = nil
	out.StringData = map[string]string{corev1.DockerConfigJsonKey: "(redacted: made from image_resource.source's username and password)"}
	return out
}
