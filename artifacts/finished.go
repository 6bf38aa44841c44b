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
	"github.com/kubectl-concourse/kubectl-concourse/transfer"
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
	// Where the node's directory of the step's emptyDirs is in the files
	// helper.
	nodeMount = "/.kubectl-concourse-node"
)

// finishedPlan is how one path of a finished step is read: the mount it is
// on and, below it, the mounts the helper shows at their paths too (claims
// and host paths below a claim or host path) and those it cannot (anything
// else below).
type finishedPlan struct {
	src      string
	root     helper.StepMount
	rel      string // src below root's mount path ("" for the mount itself)
	included []helper.StepMount
	excluded []helper.StepMount
	onClaims []string // where the step's claims were mounted: what needs no node
}

// planFinished finds how src (absolute, cleaned) is read from the finished
// step f.
func planFinished(f *helper.Finished, src string) (finishedPlan, error) {
	mounts := f.Mounts
	p := finishedPlan{src: src}
	found := false
	for _, m := range mounts {
		if m.Kind == helper.OnClaim {
			p.onClaims = append(p.onClaims, printers.EscapeTerminal(m.MountPath))
		}
		if rel, ok := helper.Below(src, m.MountPath); ok && (!found || len(m.MountPath) > len(p.root.MountPath)) {
			p.root, p.rel, found = m, rel, true
		}
	}
	if !found {
		var paths []string
		for _, m := range mounts {
			if m.Kind != helper.OnOther {
				paths = append(paths, m.Describe())
			}
		}
		where := "it has no volumes"
		if len(paths) > 0 {
			where = "its volumes are " + strings.Join(paths, ", ")
		}
		return p, fmt.Errorf("%s was in the container's own filesystem, which ended with it; only a step's volumes outlive it, and %s",
			printers.EscapeTerminal(src), where)
	}
	if p.root.Kind == helper.OnOther {
		return p, fmt.Errorf("%s is on volume %s, which holds what the pod was given (a Secret, a ConfigMap, an image), not what the step made; read that object instead",
			printers.EscapeTerminal(src), printers.EscapeTerminal(p.root.Name))
	}
	for _, m := range mounts {
		if rel, ok := helper.Below(m.MountPath, src); !ok || rel == "" {
			continue
		}
		if p.root.Kind != helper.OnEmptyDir && (m.Kind == helper.OnClaim || m.Kind == helper.OnHostPath) {
			p.included = append(p.included, m)
		} else {
			p.excluded = append(p.excluded, m)
		}
	}
	return p, nil
}

// needsNode says whether the helper reads the node's disk.
func (p finishedPlan) needsNode() bool {
	return len(p.onNode()) > 0
}

// mounts are the step's mounts the helper mounts.
func (p finishedPlan) mounts() []helper.StepMount {
	return append([]helper.StepMount{p.root}, p.included...)
}

// helperPath is where src is in the files helper.
func (p finishedPlan) helperPath() string {
	if p.root.Kind == helper.OnEmptyDir {
		return path.Join(nodeMount, p.root.Name, p.root.SubPath, p.rel)
	}
	return p.src
}

// podSpec is the files helper: the helper image, the mounts of the plan
// read-only, as the step's user, where f was placed.
func (p finishedPlan) podSpec(f *helper.Finished, image string) corev1.PodSpec {
	pod, step := f.Pod, f.Step
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
	f.Schedule(&spec)
	added := map[string]bool{}
	for _, m := range p.mounts() {
		switch m.Kind {
		case helper.OnEmptyDir:
			if !added[helper.NodeVolumeName] {
				spec.Volumes = append(spec.Volumes, f.NodeEmptyDirs())
				c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: helper.NodeVolumeName, MountPath: nodeMount, ReadOnly: true})
				added[helper.NodeVolumeName] = true
			}
			continue
		case helper.OnClaim:
			if !added[m.Name] {
				spec.Volumes = append(spec.Volumes, helper.ClaimVolume(m.Name, m.Claim))
			}
		case helper.OnHostPath:
			if !added[m.Name] {
				spec.Volumes = append(spec.Volumes, m.Volume)
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
func (o *DownloadOptions) downloadFinished(ctx context.Context, m *selector.Match, s transfer.Settings) error {
	src := transfer.RemoteAbs(m.WorkingDir, o.RemotePath)
	if !path.IsAbs(src) {
		return fmt.Errorf("remote path %q is relative and the step has no workingDir: give an absolute path", o.RemotePath)
	}
	_, base, err := transfer.SplitRemote(src)
	if err != nil {
		return err
	}
	pod := m.Pod
	step := selector.FindContainer(pod, m.Container)
	if step == nil {
		return fmt.Errorf("pod %s has no container %s", printers.EscapeTerminal(pod.Namespace+"/"+pod.Name), printers.EscapeTerminal(m.Container))
	}
	f := helper.ReadFinished(pod, step)
	plan, err := planFinished(f, src)
	if err != nil {
		return err
	}
	node := printers.EscapeTerminal(pod.Spec.NodeName)
	f.Place(ctx, o.Client.CoreV1(), o.KubeletDir, o.askKubelet, plan.mounts())
	spec := helper.PodSpec{
		Of: pod, Purpose: "files", Spec: plan.podSpec(f, o.HelperImage),
		Lifetime: filesLifetime, Wait: helper.WaitOptions{Timeout: filesTimeout},
	}
	if plan.root.Kind == helper.OnClaim && plan.needsNode() {
		spec.Fallback = withoutNode // the claim's data does not need the node
	}
	h, err := f.Start(ctx, o.Client.CoreV1(), o.Executor, spec)
	if err != nil {
		return o.finishedError(plan, pod, err)
	}
	defer func() {
		if err := h.End(ctx); err != nil {
			s.Warnf("warning: %v\n", err)
		}
	}()
	switch {
	case errors.Is(h.Refused, helper.ErrHostPathMissing):
		s.Warnf("warning: %s is not included: %v\n", describeAll(plan.onNode()), h.Refused)
	case h.Refused != nil:
		s.Warnf("warning: %s is not included: reading the disk of node %s needs a pod with a read-only host path volume, which the cluster refused: %v\n",
			describeAll(plan.onNode()), node, h.Refused)
	case plan.root.Kind == helper.OnEmptyDir:
		if err := o.emptyDirPresent(ctx, h.Container, plan, pod); err != nil {
			return err
		}
	}
	for _, x := range plan.excluded {
		s.Warnf("warning: %s is not included: download it on its own\n", x.Describe())
	}
	ep := transfer.Endpoint{Executor: o.Executor, Container: h.Container}
	if err := transfer.DownloadTo(ctx, ep, s, plan.helperPath(), filepath.Join(o.LocalDir, base)); err != nil {
		return fmt.Errorf("download %s into %s: %w", printers.EscapeTerminal(src), o.LocalDir, err)
	}
	return nil
}

// onNode lists the mounts that the helper reads from the node.
func (p finishedPlan) onNode() []helper.StepMount {
	var ms []helper.StepMount
	for _, m := range p.mounts() {
		if m.Kind == helper.OnEmptyDir || m.Kind == helper.OnHostPath {
			ms = append(ms, m)
		}
	}
	return ms
}

func describeAll(ms []helper.StepMount) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Describe())
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

// finishedError explains why the files helper did not start, beyond what
// helper.Finished says (a kubelet root elsewhere).
func (o *DownloadOptions) finishedError(plan finishedPlan, pod *corev1.Pod, err error) error {
	node := printers.EscapeTerminal(pod.Spec.NodeName)
	var refused *cmderr.RefusedError
	if errors.As(err, &refused) && plan.needsNode() {
		instead := "the step had no claims, whose data would not need it"
		if len(plan.onClaims) > 0 {
			instead = "what the step kept on claims (" + strings.Join(plan.onClaims, ", ") + ") can still be downloaded"
		}
		return fmt.Errorf("%s is on %s, on the disk of node %s since the pod finished: reading it needs a pod with a read-only host path volume there, which the cluster refused in namespace %s (Pod Security, or an admission policy: docs/rbac.md says what to ask for); %s: %w",
			printers.EscapeTerminal(plan.src), plan.root.Describe(), node, printers.EscapeTerminal(pod.Namespace), instead, err)
	}
	return err
}
