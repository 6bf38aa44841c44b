package helper

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/printers"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// A finished step's container is gone; what it mounted is not, all at
// once. Finished is the one reading of what survives and how a pod of the
// plugin's own reaches it, for download (a files helper) and hijack
// --debug (a copy of the step).

// MountKind is what a finished step's mount holds.
type MountKind int

const (
	OnClaim    MountKind = iota // a claim: outlives the pod
	OnEmptyDir                  // on the node until the kubelet tears it down
	OnHostPath                  // the step's own host path: on the node
	OnOther                     // secrets, config maps, images, CSI: not the step's output
)

// StepMount is one of the step container's mounts, and what it mounts.
type StepMount struct {
	corev1.VolumeMount // its path cleaned
	Kind               MountKind
	Claim              string // the claim's name, when it mounts one
	Volume             corev1.Volume
}

// Describe names the mount for the user: its path and what is there.
func (m StepMount) Describe() string {
	var kind string
	switch m.Kind {
	case OnClaim:
		kind = "claim " + m.Claim
	case OnEmptyDir:
		kind = "emptyDir " + m.Name
	case OnHostPath:
		kind = "host path " + m.Volume.HostPath.Path
	default:
		kind = "volume " + m.Name
	}
	return fmt.Sprintf("%s (%s)", printers.EscapeTerminal(m.MountPath), printers.EscapeTerminal(kind))
}

// NodeVolumeName is the volume through which a pod of the plugin's own
// reads the step's emptyDirs on its node.
const NodeVolumeName = "kubectl-concourse-node"

// Finished is a finished step's container and its mounts, and, once
// placed, where a pod that mounts them runs.
type Finished struct {
	Pod    *corev1.Pod
	Step   *corev1.Container
	Mounts []StepMount // in the step's order

	// Set by Place.
	Root   KubeletRoot // the kubelet's root, when the node's emptyDirs are read
	OnNode bool        // the pod must run on the step's node
}

// ReadFinished reads what step, a container of the finished pod, mounted.
func ReadFinished(pod *corev1.Pod, step *corev1.Container) *Finished {
	vols := map[string]*corev1.Volume{}
	for i := range pod.Spec.Volumes {
		vols[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	f := &Finished{Pod: pod, Step: step}
	for _, vm := range step.VolumeMounts {
		v := vols[vm.Name]
		if v == nil {
			continue
		}
		vm.MountPath = path.Clean(vm.MountPath)
		m := StepMount{VolumeMount: vm, Kind: OnOther, Volume: *v}
		claim, isClaim := ClaimOf(pod, v)
		m.Claim = claim // where a copy mounts it again, even when its subPathExpr cannot be read
		switch {
		case vm.SubPathExpr != "":
			// Expanded from the step's environment, which is gone.
		case isClaim:
			m.Kind = OnClaim
		case v.EmptyDir != nil:
			m.Kind = OnEmptyDir
		case v.HostPath != nil:
			m.Kind = OnHostPath
		}
		f.Mounts = append(f.Mounts, m)
	}
	return f
}

// Volumes are the volumes the step mounts, in the pod's order, as a copy
// of the step mounts them again: a generic ephemeral volume as the claim
// Kubernetes made for it (a new one would be empty), emptyDirs as new ones.
func (f *Finished) Volumes() []corev1.Volume {
	used := map[string]bool{}
	for _, vm := range f.Step.VolumeMounts {
		used[vm.Name] = true
	}
	var vols []corev1.Volume
	for _, v := range f.Pod.Spec.Volumes {
		if !used[v.Name] {
			continue
		}
		if claim, ok := ClaimOf(f.Pod, &v); ok && v.Ephemeral != nil {
			v = corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}
		}
		vols = append(vols, v)
	}
	return vols
}

// Place decides where a pod that mounts ms (some of f.Mounts) runs: on the
// step's node when it reads the node's disk (emptyDirs, host paths) or
// mounts a claim that only one node may attach (OnStepNode); and the
// kubelet's root when it reads emptyDirs (KubeletDirOf: kubeletDir when
// given, else ask, which may be nil).
func (f *Finished) Place(ctx context.Context, pvcs corev1client.PersistentVolumeClaimsGetter, kubeletDir string,
	ask func(context.Context, string) (string, error), ms []StepMount) {
	var claims []string
	onNode := false
	for _, m := range ms {
		if m.Claim != "" {
			claims = append(claims, m.Claim)
		}
		switch m.Kind {
		case OnEmptyDir:
			if f.Root.Dir == "" {
				f.Root = KubeletDirOf(ctx, kubeletDir, ask, f.Pod.Spec.NodeName)
			}
			onNode = true
		case OnHostPath:
			onNode = true
		}
	}
	f.OnNode = onNode || OnStepNode(ctx, pvcs, f.Pod.Namespace, claims)
}

// Schedule puts spec where Place decided: on the step's node, else where
// the step's pod could go.
func (f *Finished) Schedule(spec *corev1.PodSpec) {
	if f.OnNode {
		spec.NodeName = f.Pod.Spec.NodeName
	} else {
		spec.NodeSelector, spec.Affinity = f.Pod.Spec.NodeSelector, f.Pod.Spec.Affinity
	}
}

// NodeEmptyDirs is the node's directory of the step's emptyDirs, one per
// volume by its name, as a read-only volume named NodeVolumeName (see
// NodeDirVolume: a wrong kubelet root fails the mount).
func (f *Finished) NodeEmptyDirs() corev1.Volume {
	return NodeDirVolume(NodeVolumeName, EmptyDirsOnNode(f.Root.Dir, f.Pod))
}

// Start starts a pod of the plugin's own that mounts the step's volumes.
// When the node's directory is not there (ErrHostPathMissing: a kubelet
// root elsewhere) and spec has a Fallback without the node's disk, it is
// tried once, so that what is on claims is still served: Pod.Refused then
// says why the node's disk is not (with what to give). Its errors say what
// to give too.
func (f *Finished) Start(ctx context.Context, client corev1client.CoreV1Interface, ex podexec.Executor, spec PodSpec) (*Pod, error) {
	p, err := StartPod(ctx, client, ex, spec)
	if err != nil && spec.Fallback != nil && errors.Is(err, ErrHostPathMissing) && ctx.Err() == nil {
		missing := f.explain(err)
		spec.Spec, spec.Fallback = spec.Fallback(*spec.Spec.DeepCopy()), nil
		if p, err = StartPod(ctx, client, ex, spec); err == nil {
			p.Refused = missing
		}
	}
	return p, f.explain(err)
}

// explain adds to a failed start what a wrong kubelet root needs.
func (f *Finished) explain(err error) error {
	if err == nil || f.Root.Dir == "" {
		return err
	}
	node := printers.EscapeTerminal(f.Pod.Spec.NodeName)
	switch {
	case errors.Is(err, ErrHostPathMissing):
		return fmt.Errorf("%w; the kubelet of node %s does not keep pod %s under %s: %s",
			err, node, printers.EscapeTerminal(f.Pod.Name), printers.EscapeTerminal(f.Root.Dir), printers.EscapeTerminal(f.Root.Remedy()))
	case errors.Is(err, ErrTimedOut):
		return fmt.Errorf("%w (if the kubelet of node %s keeps its pods elsewhere than %s, --kubelet-dir gives its root directory)",
			err, node, printers.EscapeTerminal(f.Root.Dir))
	}
	return err
}

// Below says whether p is mount (a mount path) or lies below it, and p
// relative to it. Both are clean absolute paths.
func Below(p, mount string) (string, bool) {
	if p == mount {
		return "", true
	}
	if mount == "/" {
		return strings.TrimPrefix(p, "/"), true
	}
	if rel, ok := strings.CutPrefix(p, mount+"/"); ok {
		return rel, true
	}
	return "", false
}

// OnWholeMount says whether p lies on one of mounts that mounts its whole
// volume (no subPath): what an ephemeral container beside the step sees
// too, since it cannot mount a subPath.
func OnWholeMount(mounts []corev1.VolumeMount, p string) bool {
	for _, vm := range mounts {
		if vm.SubPath != "" || vm.SubPathExpr != "" {
			continue
		}
		if _, ok := Below(path.Clean(p), path.Clean(vm.MountPath)); ok {
			return true
		}
	}
	return false
}
