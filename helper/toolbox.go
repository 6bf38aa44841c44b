package helper

import (
	"path"

	corev1 "k8s.io/api/core/v1"
)

// The toolbox lets a container of any image (a step's own: a toolchain, a
// distroless image) be a pod's Main: an init container of the helper image
// copies its busybox, which must be static (the official busybox images'
// is), into an emptyDir that Main mounts at ToolboxDir, with a link for
// each applet in ToolboxDir/bin. Main's keeper runs on it (ToolboxKeeper),
// and so can the plugin's scripts, whatever the image holds; nothing of the
// image's is replaced.
const (
	ToolboxDir = "/.kubectl-concourse-tools"
	// ToolboxBin holds the applets: sh, sleep, tar, ...
	ToolboxBin = ToolboxDir + "/bin"

	toolboxVolume    = "kubectl-concourse-tools"
	toolboxContainer = "kubectl-concourse-tools"
)

// ToolboxKeeper is the keeper of a container that mounts the toolbox: its
// sh, its applets after the image's own on PATH, its files in the toolbox.
var ToolboxKeeper = Keeper{Shell: ToolboxBin + "/sh", Dir: ToolboxDir, Tools: ToolboxBin}

// toolboxScript copies the helper image's busybox into $1 and links its
// applets into $1/bin.
const toolboxScript = `t=$1
for b in /bin/busybox /usr/bin/busybox /busybox/busybox "$(command -v busybox)" ""; do
  case $b in /*) [ -x "$b" ] && break ;; esac
done
[ -n "$b" ] || { echo "the helper image has no busybox to bring along" >&2; exit 1; }
cp -- "$b" "$t/busybox" && mkdir -p -- "$t/bin" && "$t/busybox" --install -s "$t/bin"`

// AddToolbox adds the toolbox to spec: its volume, the init container (of
// image, first of the init containers) that fills it, and its mount in the
// container named main.
func AddToolbox(spec *corev1.PodSpec, image, main string) {
	mount := corev1.VolumeMount{Name: toolboxVolume, MountPath: ToolboxDir}
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: toolboxVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	// Copying a file into an emptyDir needs no rights: it runs as nobody,
	// with nothing, so that the strictest Pod Security admits it.
	nobody, yes, no := int64(65534), true, false
	init := corev1.Container{
		Name: toolboxContainer, Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
		Command:      []string{"sh", "-c", EscapeExpansion(toolboxScript), "sh", ToolboxDir},
		VolumeMounts: []corev1.VolumeMount{mount},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser: &nobody, RunAsGroup: &nobody, RunAsNonRoot: &yes, AllowPrivilegeEscalation: &no,
			Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	spec.InitContainers = append([]corev1.Container{init}, spec.InitContainers...)
	for i := range spec.Containers {
		if spec.Containers[i].Name == main {
			spec.Containers[i].VolumeMounts = append(spec.Containers[i].VolumeMounts, mount)
		}
	}
}

// CopyReport is the file, in the toolbox, in which CopyFromNode's init
// container says what it found: a line "copied NAME" or "gone NAME" per
// emptyDir.
const CopyReport = ToolboxDir + "/emptydirs"

const (
	copyContainer = "kubectl-concourse-copy"
	copyNodeDir   = "/.kubectl-concourse-node"
	copyInto      = "/.kubectl-concourse-copy"
)

// copyScript copies, for each name after $1, the node's $1/NAME into
// /.kubectl-concourse-copy/NAME, owners and modes kept, and reports it in
// the toolbox's CopyReport.
const copyScript = `node=$1; shift
for n in "$@"; do
  if [ -d "$node/$n" ]; then
    cp -a -- "$node/$n/." "` + copyInto + `/$n/" || exit
    echo "copied $n"
  else
    echo "gone $n"
  fi
done >"` + CopyReport + `"`

// CopyFromNode adds to spec an init container (of image, after the
// toolbox's, which must be there) that copies the contents of emptyDirs of
// a finished pod from its node (node: Finished.NodeEmptyDirs, a read-only
// host path volume, which a Fallback drops with DropCopyFromNode) into the
// emptyDirs of the same names in spec, which start empty. It runs as root,
// to read every file and keep its owner.
func CopyFromNode(spec *corev1.PodSpec, image string, node corev1.Volume, names []string) {
	nodeVolume := node.Name
	spec.Volumes = append(spec.Volumes, node)
	root, no := int64(0), false
	c := corev1.Container{
		Name: copyContainer, Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
		Command: append([]string{"sh", "-c", EscapeExpansion(copyScript), "sh", copyNodeDir}, names...),
		VolumeMounts: []corev1.VolumeMount{
			{Name: nodeVolume, MountPath: copyNodeDir, ReadOnly: true},
			{Name: toolboxVolume, MountPath: ToolboxDir},
		},
		SecurityContext: &corev1.SecurityContext{RunAsUser: &root, RunAsGroup: &root, RunAsNonRoot: &no},
	}
	for _, n := range names {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: n, MountPath: path.Join(copyInto, n)})
	}
	spec.InitContainers = append(spec.InitContainers, c)
}

// DropCopyFromNode takes out what CopyFromNode added: for a cluster that
// refuses host paths, the emptyDirs then start empty.
func DropCopyFromNode(spec corev1.PodSpec, nodeVolume string) corev1.PodSpec {
	var inits []corev1.Container
	for _, c := range spec.InitContainers {
		if c.Name != copyContainer {
			inits = append(inits, c)
		}
	}
	spec.InitContainers = inits
	var vols []corev1.Volume
	for _, v := range spec.Volumes {
		if v.Name != nodeVolume {
			vols = append(vols, v)
		}
	}
	spec.Volumes = vols
	return spec
}
