package helper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
)

// A finished pod's volumes outlive its containers: its claims, and, on its
// node, whatever the kubelet has not torn down yet. These are the ways to
// them from a pod of the plugin's own.

// DefaultKubeletDir is the kubelet's root directory unless its --root-dir
// says otherwise.
const DefaultKubeletDir = "/var/lib/kubelet"

// EmptyDirsOnNode is where pod's emptyDirs are on its node, one directory
// per volume by its name: <kubelet root>/pods/<uid>/volumes/kubernetes.io~empty-dir.
//
// A kubelet tears a pod's volumes down once the pod has finished
// (SyncTerminatedPod: an emptyDir's directory is removed), so a finished
// pod's emptyDirs are usually gone within seconds; this directory is still
// there until the pod is deleted.
func EmptyDirsOnNode(kubeletDir string, pod *corev1.Pod) string {
	return path.Join(kubeletDir, "pods", string(pod.UID), "volumes", "kubernetes.io~empty-dir")
}

// NodeDirVolume is a volume of directory dir of the node, read-only: its
// type is Directory, so that a directory that is not there (a kubelet root
// elsewhere) fails the mount, and says so in an event, instead of being
// created.
func NodeDirVolume(name, dir string) corev1.Volume {
	typ := corev1.HostPathDirectory
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &typ}}}
}

// ClaimOf is the claim behind a pod volume: a persistentVolumeClaim's, or
// the one Kubernetes made for a generic ephemeral volume (<pod>-<volume>,
// which lives as long as the pod).
func ClaimOf(pod *corev1.Pod, v *corev1.Volume) (string, bool) {
	switch {
	case v.PersistentVolumeClaim != nil:
		return v.PersistentVolumeClaim.ClaimName, true
	case v.Ephemeral != nil:
		return pod.Name + "-" + v.Name, true
	}
	return "", false
}

// ClaimVolume is the volume of claim, read-only: a helper only reads.
func ClaimVolume(name, claim string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
		ClaimName: claim, ReadOnly: true}}}
}

// OnStepNode says whether a pod that mounts claims must run on the node of
// the step that used them: when one can be attached to one node at a time
// (ReadWriteOnce, ReadWriteOncePod), or when its access modes cannot be read.
func OnStepNode(ctx context.Context, pvcs corev1client.PersistentVolumeClaimsGetter, namespace string, claims []string) bool {
	for _, name := range claims {
		pvc, err := pvcs.PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return true
		}
		modes := pvc.Status.AccessModes
		if len(modes) == 0 {
			modes = pvc.Spec.AccessModes
		}
		many := false
		for _, m := range modes {
			if m == corev1.ReadWriteMany || m == corev1.ReadOnlyMany {
				many = true
			}
		}
		if !many {
			return true
		}
	}
	return false
}

// flagzAccept asks for the kubelet's flags as an object (Kubernetes 1.36+
// by default), else as text.
const flagzAccept = "application/json;as=Flagz;v=v1beta1;g=config.k8s.io,application/json;as=Flagz;v=v1alpha1;g=config.k8s.io,text/plain"

// KubeletDir asks the kubelet of node for its root directory (its
// --root-dir flag, from /flagz through the API server's node proxy, which
// needs get on nodes/proxy; kubelets serve /flagz from Kubernetes 1.36, or
// with the ComponentFlagz feature gate). The kubelet's configuration
// (configz) does not hold it: it is only a flag. An error says why it
// could not tell.
func KubeletDir(ctx context.Context, client rest.Interface, node string) (string, error) {
	raw, err := client.Get().AbsPath("/api/v1/nodes", node, "proxy", "flagz").SetHeader("Accept", flagzAccept).DoRaw(ctx)
	switch {
	case apierrors.IsForbidden(err):
		return "", fmt.Errorf("you may not ask it (that needs \"get\" on \"nodes/proxy\", a ClusterRole)")
	case apierrors.IsNotFound(err):
		return "", errors.New("it does not serve /flagz (Kubernetes before 1.36 without the ComponentFlagz feature gate)")
	case err != nil:
		return "", fmt.Errorf("it did not answer: %w", err)
	}
	return parseFlagz(raw)
}

// KubeletRoot is the kubelet's root directory on a node, and how the
// plugin came to it.
type KubeletRoot struct {
	Dir string
	// Unanswered is why the kubelet did not say, when Dir is
	// DefaultKubeletDir for want of an answer; nil when Dir was given or
	// told.
	Unanswered error
}

// Remedy is what to do when the node has no such directory: the end of
// an error message.
func (r KubeletRoot) Remedy() string {
	if r.Unanswered == nil {
		return "give its root directory (its --root-dir) with --kubelet-dir"
	}
	return fmt.Sprintf("%s is the default, the kubelet could not be asked for its --root-dir (%v): give that directory with --kubelet-dir",
		r.Dir, r.Unanswered)
}

// KubeletDirOf is the kubelet's root directory on node: given (a flag)
// when set, else the kubelet's own answer (ask, nil when not to ask: see
// AskKubelet), else DefaultKubeletDir with the reason. A wrong one fails
// the mount of NodeDirVolume, which says so.
func KubeletDirOf(ctx context.Context, given string, ask func(context.Context, string) (string, error), node string) KubeletRoot {
	if given != "" {
		return KubeletRoot{Dir: given}
	}
	why := errors.New("the step's pod has no node")
	if ask == nil {
		why = errors.New("not asked")
	} else if node != "" {
		dir, err := ask(ctx, node)
		if err == nil {
			return KubeletRoot{Dir: dir}
		}
		why = err
	}
	return KubeletRoot{Dir: DefaultKubeletDir, Unanswered: why}
}

// AskKubelet asks through client (a CoreV1 REST client), for KubeletDirOf.
func AskKubelet(client rest.Interface) func(context.Context, string) (string, error) {
	return func(ctx context.Context, node string) (string, error) { return KubeletDir(ctx, client, node) }
}

// parseFlagz reads root-dir from a kubelet's /flagz: an object with its
// flags, or the text form, one flag a line with one of several separators.
func parseFlagz(raw []byte) (string, error) {
	var obj struct {
		Flags map[string]string `json:"flags"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Flags != nil {
		if dir := obj.Flags["root-dir"]; path.IsAbs(dir) {
			return path.Clean(dir), nil
		}
		return "", errors.New("the kubelet's flags have no root-dir")
	}
	for _, line := range strings.Split(string(raw), "\n") {
		rest, ok := strings.CutPrefix(line, "root-dir")
		if !ok {
			continue
		}
		dir := strings.TrimSpace(strings.TrimLeft(rest, ":= "))
		if path.IsAbs(dir) {
			return path.Clean(dir), nil
		}
	}
	return "", errors.New("the kubelet's flags have no root-dir")
}
