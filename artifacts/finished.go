package artifacts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/helper"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// Files of a finished step. Its containers are gone, its volumes are not (not
// all at once): a pod of the plugin's own, the files helper, mounts them
// read-only where the step had them, so that paths are named as in the step,
// and the download runs in it as in any container. A claim is mounted as it
// is, on the step's node when only that node may attach it. An emptyDir is
// only on the step's node's disk, in the kubelet's directory, until the
// kubelet tears it down: the helper reads that directory through a
// read-only host path, which many clusters allow nobody but administrators.

const (
	filesLifetime = time.Hour
	filesTimeout  = 2 * time.Minute

	filesContainer = "files"
	// The node's directory of the step's emptyDirs, in the files helper.
	nodeVolume = "kubectl-concourse-node"
	nodeMount  = "/.kubectl-concourse-node"
)

// mountKind is what a step's mount holds, for a finished step.
type mountKind int

const (
	onClaim    mountKind = iota // a claim: outlives the pod
	onEmptyDir                  // on the node until the kubelet tears it down
	onHostPath                  // the step's own host path: on the node
	onOther                     // secrets, config maps, images, CSI: not the step's output
)

// stepMount is one of the step container's mounts, and what it mounts.
type stepMount struct {
	corev1.VolumeMount
	kind   mountKind
	claim  string
	volume corev1.Volume
}

func (m stepMount) describe() string {
	kind := "volume"
	switch m.kind {
	case onClaim:
		kind = "claim " + m.claim
	case onEmptyDir:
		kind = "emptyDir " + m.Name
	case onHostPath:
		kind = "host path " + m.volume.HostPath.Path
	default:
		kind = "volume " + m.Name
	}
	return fmt.Sprintf("%s (%s)", printers.EscapeTerminal(m.MountPath), printers.EscapeTerminal(kind))
}

// finishedPlan is how one path of a finished step is read: the mount it is
// on and, below it, the mounts the helper shows at their paths too (claims
// and host paths below a claim or host path) and those it cannot (anything
// else below).
type finishedPlan struct {
	src      string
	root     stepMount
	rel      string // src below root's mount path ("" for the mount itself)
	included []stepMount
	excluded []stepMount
	onClaims []string // where the step's claims were mounted: what needs no node
}

// planFinished finds how src (absolute, cleaned) is read from step, a
// container of the finished pod.
func planFinished(pod *corev1.Pod, step *corev1.Container, src string) (finishedPlan, error) {
	vols := map[string]*corev1.Volume{}
	for i := range pod.Spec.Volumes {
		vols[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	var mounts []stepMount
	for _, vm := range step.VolumeMounts {
		v := vols[vm.Name]
		if v == nil {
			continue
		}
		vm.MountPath = path.Clean(vm.MountPath)
		m := stepMount{VolumeMount: vm, kind: onOther, volume: *v}
		switch claim, isClaim := helper.ClaimOf(pod, v); {
		case vm.SubPathExpr != "":
			// Expanded from the step's environment, which is gone.
		case isClaim:
			m.kind, m.claim = onClaim, claim
		case v.EmptyDir != nil:
			m.kind = onEmptyDir
		case v.HostPath != nil:
			m.kind = onHostPath
		}
		mounts = append(mounts, m)
	}
	p := finishedPlan{src: src}
	found := false
	for _, m := range mounts {
		if m.kind == onClaim {
			p.onClaims = append(p.onClaims, printers.EscapeTerminal(m.MountPath))
		}
		if rel, ok := below(src, m.MountPath); ok && (!found || len(m.MountPath) > len(p.root.MountPath)) {
			p.root, p.rel, found = m, rel, true
		}
	}
	if !found {
		var paths []string
		for _, m := range mounts {
			if m.kind != onOther {
				paths = append(paths, m.describe())
			}
		}
		where := "it has no volumes"
		if len(paths) > 0 {
			where = "its volumes are " + strings.Join(paths, ", ")
		}
		return p, fmt.Errorf("%s was in the container's own filesystem, which ended with it; only a step's volumes outlive it, and %s",
			printers.EscapeTerminal(src), where)
	}
	if p.root.kind == onOther {
		return p, fmt.Errorf("%s is on volume %s, which holds what the pod was given (a Secret, a ConfigMap, an image), not what the step made; read that object instead",
			printers.EscapeTerminal(src), printers.EscapeTerminal(p.root.Name))
	}
	for _, m := range mounts {
		if rel, ok := below(m.MountPath, src); !ok || rel == "" {
			continue
		}
		if p.root.kind != onEmptyDir && (m.kind == onClaim || m.kind == onHostPath) {
			p.included = append(p.included, m)
		} else {
			p.excluded = append(p.excluded, m)
		}
	}
	return p, nil
}

// below says whether p is dir or under it, and p relative to dir.
func below(p, dir string) (string, bool) {
	if p == dir {
		return "", true
	}
	if dir == "/" {
		return strings.TrimPrefix(p, "/"), true
	}
	rel, ok := strings.CutPrefix(p, dir+"/")
	return rel, ok
}

// needsNode says whether the helper reads the node's disk.
func (p finishedPlan) needsNode() bool {
	if p.root.kind != onClaim {
		return true
	}
	for _, m := range p.included {
		if m.kind == onHostPath {
			return true
		}
	}
	return false
}

// claims lists the claims the helper mounts.
func (p finishedPlan) claims() []string {
	var claims []string
	for _, m := range append([]stepMount{p.root}, p.included...) {
		if m.kind == onClaim {
			claims = append(claims, m.claim)
		}
	}
	return claims
}

// helperPath is where src is in the files helper.
func (p finishedPlan) helperPath() string {
	if p.root.kind == onEmptyDir {
		return path.Join(nodeMount, p.root.Name, p.root.SubPath, p.rel)
	}
	return p.src
}

// podSpec is the files helper: the helper image, the mounts of the plan
// read-only, as the step's user.
func (p finishedPlan) podSpec(pod *corev1.Pod, step *corev1.Container, image, kubeletDir string, onNode bool) corev1.PodSpec {
	no := false
	c := corev1.Container{Name: filesContainer, Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
		SecurityContext: readerSecurity(step.SecurityContext)}
	spec := corev1.PodSpec{
		AutomountServiceAccountToken: &no,
		EnableServiceLinks:           &no,
		ImagePullSecrets:             pod.Spec.ImagePullSecrets,
		Tolerations:                  pod.Spec.Tolerations,
		SecurityContext:              readerPodSecurity(pod.Spec.SecurityContext, c.SecurityContext),
	}
	if onNode {
		spec.NodeName = pod.Spec.NodeName
	} else {
		spec.NodeSelector, spec.Affinity = pod.Spec.NodeSelector, pod.Spec.Affinity
	}
	added := map[string]bool{}
	for _, m := range append([]stepMount{p.root}, p.included...) {
		switch m.kind {
		case onEmptyDir:
			if !added[nodeVolume] {
				spec.Volumes = append(spec.Volumes, helper.NodeDirVolume(nodeVolume, helper.EmptyDirsOnNode(kubeletDir, pod)))
				c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: nodeVolume, MountPath: nodeMount, ReadOnly: true})
				added[nodeVolume] = true
			}
			continue
		case onClaim:
			if !added[m.Name] {
				spec.Volumes = append(spec.Volumes, helper.ClaimVolume(m.Name, m.claim))
			}
		case onHostPath:
			if !added[m.Name] {
				spec.Volumes = append(spec.Volumes, m.volume)
			}
		}
		added[m.Name] = true
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: m.Name, MountPath: m.MountPath, SubPath: m.SubPath, ReadOnly: true})
	}
	spec.Containers = []corev1.Container{c}
	return spec
}

// withoutNode drops what reads the node's disk, for a cluster that refuses
// host paths: what is on claims is still there.
func withoutNode(spec corev1.PodSpec) corev1.PodSpec {
	host := map[string]bool{}
	var vols []corev1.Volume
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			host[v.Name] = true
			continue
		}
		vols = append(vols, v)
	}
	spec.Volumes = vols
	c := &spec.Containers[0]
	var mounts []corev1.VolumeMount
	for _, vm := range c.VolumeMounts {
		if !host[vm.Name] {
			mounts = append(mounts, vm)
		}
	}
	c.VolumeMounts = mounts
	return spec
}

// nobody reads when the step had to run as non-root and said as whom only
// through its image, which the helper's is not.
const nobody = 65534

// readerSecurity is the helper container's: the step's user and what its
// security context restricts, nothing it grants (privileges, capabilities
// added); the helper only reads.
func readerSecurity(step *corev1.SecurityContext) *corev1.SecurityContext {
	no := false
	sc := &corev1.SecurityContext{AllowPrivilegeEscalation: &no}
	if step == nil {
		return sc
	}
	sc.RunAsUser, sc.RunAsGroup, sc.RunAsNonRoot = step.RunAsUser, step.RunAsGroup, step.RunAsNonRoot
	sc.SeccompProfile, sc.AppArmorProfile, sc.SELinuxOptions = step.SeccompProfile, step.AppArmorProfile, step.SELinuxOptions
	if step.Capabilities != nil && len(step.Capabilities.Drop) > 0 {
		sc.Capabilities = &corev1.Capabilities{Drop: step.Capabilities.Drop}
	}
	return sc
}

// readerPodSecurity is the helper pod's: the step pod's users and groups,
// fsGroup as one more group rather than a change of the volumes' owner (the
// helper writes nothing), and a user when the step had to be non-root.
func readerPodSecurity(pod *corev1.PodSecurityContext, container *corev1.SecurityContext) *corev1.PodSecurityContext {
	sc := &corev1.PodSecurityContext{}
	if pod != nil {
		sc.RunAsUser, sc.RunAsGroup, sc.RunAsNonRoot = pod.RunAsUser, pod.RunAsGroup, pod.RunAsNonRoot
		sc.SupplementalGroups = append([]int64(nil), pod.SupplementalGroups...)
		if pod.FSGroup != nil {
			sc.SupplementalGroups = append(sc.SupplementalGroups, *pod.FSGroup)
		}
		sc.SeccompProfile, sc.AppArmorProfile, sc.SELinuxOptions = pod.SeccompProfile, pod.AppArmorProfile, pod.SELinuxOptions
	}
	nonRoot := sc.RunAsNonRoot != nil && *sc.RunAsNonRoot || container.RunAsNonRoot != nil && *container.RunAsNonRoot
	if nonRoot && sc.RunAsUser == nil && container.RunAsUser == nil {
		uid := int64(nobody)
		sc.RunAsUser = &uid
	}
	return sc
}

// downloadFinished downloads o.RemotePath of a finished step through a
// files helper.
func (o *DownloadOptions) downloadFinished(ctx context.Context, m *selector.Match, s settings) error {
	src := remoteAbs(m.WorkingDir, o.RemotePath)
	if !path.IsAbs(src) {
		return fmt.Errorf("remote path %q is relative and the step has no workingDir: give an absolute path", o.RemotePath)
	}
	_, base, err := splitRemote(src)
	if err != nil {
		return err
	}
	pod := m.Pod
	step := selector.FindContainer(pod, m.Container)
	if step == nil {
		return fmt.Errorf("pod %s has no container %s", printers.EscapeTerminal(pod.Namespace+"/"+pod.Name), printers.EscapeTerminal(m.Container))
	}
	plan, err := planFinished(pod, step, src)
	if err != nil {
		return err
	}
	node := printers.EscapeTerminal(pod.Spec.NodeName)
	var root helper.KubeletRoot
	if plan.needsNode() {
		root = helper.KubeletDirOf(ctx, o.KubeletDir, o.askKubelet, pod.Spec.NodeName)
	}
	onNode := plan.needsNode() || helper.OnStepNode(ctx, o.Client.CoreV1(), pod.Namespace, plan.claims())
	spec := helper.PodSpec{
		Of: pod, Purpose: "files", Spec: plan.podSpec(pod, step, o.HelperImage, root.Dir, onNode),
		Lifetime: filesLifetime, Wait: helper.WaitOptions{Timeout: filesTimeout},
	}
	if plan.root.kind == onClaim && plan.needsNode() {
		spec.Fallback = withoutNode // the claim's data does not need the node
	}
	h, err := helper.StartPod(ctx, o.Client.CoreV1(), o.Executor, spec)
	if err != nil {
		return o.finishedError(plan, pod, root, err)
	}
	defer func() {
		if err := h.End(ctx); err != nil {
			s.warnf("warning: %v\n", err)
		}
	}()
	if h.Refused != nil {
		s.warnf("warning: %s is not included: reading the disk of node %s needs a pod with a read-only host path volume, which the cluster refused: %v\n",
			describeAll(plan.onNode()), node, h.Refused)
	} else if plan.root.kind == onEmptyDir {
		if err := o.emptyDirPresent(ctx, h.Container, plan, pod); err != nil {
			return err
		}
	}
	for _, x := range plan.excluded {
		s.warnf("warning: %s is not included: download it on its own\n", x.describe())
	}
	rem := &remote{exec: o.Executor, container: h.Container}
	if err := downloadTo(ctx, rem, plan.helperPath(), filepath.Join(o.LocalDir, base), s); err != nil {
		return fmt.Errorf("download %s into %s: %w", printers.EscapeTerminal(src), o.LocalDir, withRemedy(err))
	}
	return nil
}

// onNode lists the mounts that the helper reads from the node.
func (p finishedPlan) onNode() []stepMount {
	var ms []stepMount
	for _, m := range append([]stepMount{p.root}, p.included...) {
		if m.kind == onEmptyDir || m.kind == onHostPath {
			ms = append(ms, m)
		}
	}
	return ms
}

func describeAll(ms []stepMount) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.describe())
	}
	return strings.Join(out, ", ")
}

// emptyDirPresent checks that the kubelet has not torn the emptyDir down.
func (o *DownloadOptions) emptyDirPresent(ctx context.Context, c podexec.Container, plan finishedPlan, pod *corev1.Pod) error {
	var out bytes.Buffer
	err := podexec.RunScript(ctx, o.Executor, c, `[ -d "$1" ] && echo present || echo gone`, []string{path.Join(nodeMount, plan.root.Name)}, nil, &out)
	if err != nil {
		return fmt.Errorf("look for emptyDir %s on node %s: %w", printers.EscapeTerminal(plan.root.Name), printers.EscapeTerminal(pod.Spec.NodeName), err)
	}
	if strings.TrimSpace(out.String()) == "gone" {
		return fmt.Errorf("%s is on emptyDir %s of pod %s, which the kubelet of node %s removed when the pod finished (kubelets tear a finished pod's volumes down at once): keep what must outlive a step on a claim",
			printers.EscapeTerminal(plan.src), printers.EscapeTerminal(plan.root.Name), printers.EscapeTerminal(pod.Namespace+"/"+pod.Name),
			printers.EscapeTerminal(pod.Spec.NodeName))
	}
	return nil
}

// finishedError explains why the files helper did not start.
func (o *DownloadOptions) finishedError(plan finishedPlan, pod *corev1.Pod, root helper.KubeletRoot, err error) error {
	node := printers.EscapeTerminal(pod.Spec.NodeName)
	var refused *cmderr.RefusedError
	switch {
	case errors.As(err, &refused) && plan.needsNode():
		instead := "the step had no claims, whose data would not need it"
		if len(plan.onClaims) > 0 {
			instead = "what the step kept on claims (" + strings.Join(plan.onClaims, ", ") + ") can still be downloaded"
		}
		return fmt.Errorf("%s is on %s, on the disk of node %s since the pod finished: reading it needs a pod with a read-only host path volume there, which the cluster refused in namespace %s (Pod Security, or an admission policy: docs/rbac.md says what to ask for); %s: %w",
			printers.EscapeTerminal(plan.src), plan.root.describe(), node, printers.EscapeTerminal(pod.Namespace), instead, err)
	case plan.needsNode() && errors.Is(err, helper.ErrHostPathMissing):
		return fmt.Errorf("%w; the kubelet of node %s does not keep pod %s under %s: %s",
			err, node, printers.EscapeTerminal(pod.Name), printers.EscapeTerminal(root.Dir), printers.EscapeTerminal(root.Remedy()))
	case plan.needsNode() && errors.Is(err, helper.ErrTimedOut):
		return fmt.Errorf("%w (if the kubelet of node %s keeps its pods elsewhere than %s, --kubelet-dir gives its root directory)",
			err, node, printers.EscapeTerminal(root.Dir))
	}
	return err
}
