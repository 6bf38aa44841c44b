package execute

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/kubectl-concourse/kubectl-concourse/selector/labelenc"
	"path"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
	"github.com/kubectl-concourse/kubectl-concourse/helper"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

const (
	// stepName is fly's name for the task of a one-off build.
	stepName = "one-off"

	// The pod's containers: inputs (an init container that holds the
	// pod back until the inputs are uploaded), task (the step's), outputs
	// (a helper that keeps the outputs' volumes for the download).
	inputsContainer  = "inputs"
	taskContainer    = "task"
	outputsContainer = "outputs"

	// helperLifetime bounds the inputs and outputs helpers whose tether
	// was lost and never tied again.
	helperLifetime = time.Hour
)

// workingDir is where a one-off task runs: /tmp/build/ and the first 8 hex
// digits of sha256 of the task's name, as Concourse places a task
// (atc/engine/step_factory.go): /tmp/build/b1dda4c3.
var workingDir = func() string {
	sum := sha256.Sum256([]byte(stepName))
	return "/tmp/build/" + hex.EncodeToString(sum[:4])
}()

// oneOff is a one-off build with everything decided: what the pod and its
// Secret hold follows from it alone.
type oneOff struct {
	Namespace, Team, BuildID string
	Image                    string
	Config                   TaskConfig    // args appended, params overridden from the environment
	Kept                     bool          // -b or --keep: the pod outlives the plugin
	PullAuth                 *registryAuth // the image's credentials; nil: none
	Inputs                   []input       // the inputs that are uploaded
	Outputs                  []output      // the outputs that are downloaded (-o)
	Privileged               bool
	Tags                     []string
	Timeout                  time.Duration
	HelperImage              string
}

// input is a task input and the local directory it comes from.
type input struct {
	Name, Local, Remote string
	// Cache is the claim of its warm cache, leased to this build; empty:
	// it is uploaded in full.
	Cache string
}

// output is a task output and the local path it lands at.
type output struct {
	Name, Remote, Local string
}

func (b oneOff) podName() string    { return "one-off-" + b.BuildID }
func (b oneOff) secretName() string { return b.podName() + "-params" }

// labels are the contract's for a one-off build (docs/labels.md), and who
// made it.
func (b oneOff) labels() (labels, annotations map[string]string) {
	labels = map[string]string{
		selector.LabelManagedBy: selector.ManagedByValue,
		selector.LabelBuildID:   b.BuildID,
		selector.LabelBuildName: b.BuildID,
		selector.LabelStepName:  stepName,
		selector.LabelStepType:  "task",
		selector.LabelCreatedBy: selector.CreatedByExecute,
	}
	annotations = map[string]string{selector.AnnotationContainer: taskContainer}
	if b.Kept {
		annotations[selector.AnnotationKept] = "true"
	}
	if b.Team != "" {
		annotations = labelenc.Put(labels, annotations, selector.LabelTeam, b.Team)
	}
	return labels, annotations
}

// objects are the pod and the Secrets of its params and its image pull
// (none when there are neither), as they are created; a Secret's owner
// reference gets the pod's UID once the pod exists.
func (b oneOff) objects() (*corev1.Pod, []*corev1.Secret) {
	pod := b.bare()
	m := b.mounts(pod)
	task := b.task(m.task)
	var secrets []*corev1.Secret
	if params := b.paramsSecret(); params != nil {
		secrets = append(secrets, params)
		// The values reach the process only through the Secret: none is in
		// the pod's spec, its events or the plugin's output.
		task.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: params.Name}}}}
	}
	if b.PullAuth != nil {
		pull := b.pullSecret()
		secrets = append(secrets, pull)
		pod.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: pull.Name}}
	}
	if b.gated() {
		in := b.helperContainer(inputsContainer, m.inputs)
		if sc := task.SecurityContext; sc != nil && sc.RunAsUser != nil {
			// The inputs then belong to the task's user, as they do in
			// Concourse, and it may write to them.
			in.SecurityContext = &corev1.SecurityContext{RunAsUser: sc.RunAsUser}
		}
		pod.Spec.InitContainers = []corev1.Container{in}
	}
	pod.Spec.Containers = []corev1.Container{task}
	if len(m.outputs) > 0 {
		pod.Spec.Containers = append(pod.Spec.Containers, b.helperContainer(outputsContainer, m.outputs))
	}
	return pod, secrets
}

// bare is the pod before its volumes and containers: its names, labels,
// placement and the limits of a one-off build.
func (b oneOff) bare() *corev1.Pod {
	labels, annotations := b.labels()
	deadline := int64(b.Timeout / time.Second)
	grace := int64(10)
	no := false
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: b.podName(), Namespace: b.Namespace, Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			ActiveDeadlineSeconds:         &deadline,
			TerminationGracePeriodSeconds: &grace,
			// A task gets no credentials for the cluster it runs on.
			AutomountServiceAccountToken: &no,
			EnableServiceLinks:           &no,
			NodeSelector:                 map[string]string{corev1.LabelOSStable: b.Config.Platform},
			Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: b.placement()},
			}},
		},
	}
}

// podMounts are where each container of the pod mounts its volumes.
type podMounts struct {
	inputs, outputs, task []corev1.VolumeMount
}

// mounts adds the pod's volumes (one emptyDir per path, a warm cache's
// claim per cached input) and says where each container mounts them: the
// task every input, output and task cache; the inputs container what it
// uploads into; the outputs container, read-only, what it downloads.
func (b oneOff) mounts(pod *corev1.Pod) podMounts {
	c := b.Config
	var m podMounts
	// One emptyDir per path: an input and an output at the same path share
	// one, as in Concourse.
	vols := map[string]string{} // path -> volume name
	volume := func(kind string, i int, p string) corev1.VolumeMount {
		name, ok := vols[p]
		if !ok {
			name = fmt.Sprintf("%s-%d", kind, i)
			vols[p] = name
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: name,
				VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		}
		return corev1.VolumeMount{Name: name, MountPath: p}
	}
	uploaded := map[string]int{} // name -> index in b.Inputs
	for i, in := range b.Inputs {
		uploaded[in.Name] = i
	}
	for i, in := range c.Inputs {
		j, ok := uploaded[in.Name]
		switch {
		case !ok && in.Optional:
			continue // absent from the task's directory, as in Concourse
		case ok && b.Inputs[j].Cache != "":
			// The task uses the cache's tree in place; the next run's
			// apply repairs what it changes (docs/caches.md).
			m.task = append(m.task, corev1.VolumeMount{Name: cacheVolume(j),
				MountPath: artifactPath(workingDir, in.Name, in.Path), SubPath: protocol.CacheTree})
			continue
		}
		vm := volume("input", i, artifactPath(workingDir, in.Name, in.Path))
		m.task = append(m.task, vm)
		if ok {
			m.inputs = append(m.inputs, vm)
		}
	}
	downloaded := map[string]bool{}
	for _, out := range b.Outputs {
		downloaded[out.Name] = true
	}
	for i, out := range c.Outputs {
		vm := volume("output", i, artifactPath(workingDir, out.Name, out.Path))
		m.task = append(m.task, vm)
		if downloaded[out.Name] {
			ro := vm
			ro.ReadOnly = true // the download only reads
			m.outputs = append(m.outputs, ro)
		}
	}
	for i, cache := range c.Caches {
		m.task = append(m.task, volume("cache", i, artifactPath(workingDir, "", cache.Path)))
	}
	m.task = dedupeMounts(m.task)
	for i, in := range b.Inputs {
		if in.Cache == "" {
			continue
		}
		// The inputs container mounts the claim's root (the tree and its
		// manifest), the task only the tree.
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: cacheVolume(i), VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: in.Cache}}})
		m.inputs = append(m.inputs, corev1.VolumeMount{Name: cacheVolume(i), MountPath: cacheMount(i)})
	}
	return m
}

// task is the task's container: its image, command, build variables,
// limits and user, with mounts.
func (b oneOff) task(mounts []corev1.VolumeMount) corev1.Container {
	c := b.Config
	task := corev1.Container{
		Name:            taskContainer,
		Image:           b.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		WorkingDir:      path.Join(workingDir, c.Run.Dir),
		Args:            escapeAll(c.Run.Args),
		Env: []corev1.EnvVar{
			{Name: "BUILD_ID", Value: b.BuildID},
			{Name: "BUILD_NAME", Value: b.BuildID},
			{Name: "BUILD_TEAM_NAME", Value: b.Team},
		},
		VolumeMounts: mounts,
	}
	if c.Run.Path != "" {
		task.Command = []string{helper.EscapeExpansion(c.Run.Path)}
	}
	if l := c.Limits; l.CPU != nil || l.Memory != nil {
		task.Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{}, Requests: corev1.ResourceList{}}
		if l.CPU != nil {
			// The inverse of the kubelet's milli-CPU to shares rule
			// (shares = milli * 1024 / 1000).
			task.Resources.Requests[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(*l.CPU*1000/1024), resource.DecimalSI)
		}
		if l.Memory != nil {
			q := *resource.NewQuantity(int64(*l.Memory), resource.BinarySI)
			task.Resources.Limits[corev1.ResourceMemory], task.Resources.Requests[corev1.ResourceMemory] = q, q
		}
	}
	sc := &corev1.SecurityContext{}
	if b.Privileged {
		sc.Privileged = &b.Privileged
	}
	if uid, ok := runAsUser(c.Run.User); ok {
		sc.RunAsUser = &uid
	}
	if *sc != (corev1.SecurityContext{}) {
		task.SecurityContext = sc
	}
	return task
}

// paramsSecret holds the task's params, nil when it has none.
func (b oneOff) paramsSecret() *corev1.Secret {
	params := b.Config.Params
	if len(params) == 0 {
		return nil
	}
	data := make(map[string][]byte, len(params))
	for k, v := range params {
		data[k] = []byte(v)
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: b.ownedMeta(b.secretName()),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// gated says whether the pod starts with the inputs container, which holds
// the task back until the plugin releases it: when there are inputs to
// upload, and when the task's image is pulled with a Secret that is created
// after the pod (it needs the pod's UID to be owned), so that the pull
// never races the Secret.
func (b oneOff) gated() bool { return len(b.Inputs) > 0 || b.PullAuth != nil }

// helperContainer holds volumes for a transfer: a keeper that ends when the
// plugin releases it (or is lost), in the helper image, which has sh and
// tar whatever the task's image lacks.
func (b oneOff) helperContainer(name string, mounts []corev1.VolumeMount) corev1.Container {
	return corev1.Container{
		Name:            name,
		Image:           b.HelperImage,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         helper.KeeperCommand(helperLifetime),
		VolumeMounts:    mounts,
	}
}

// escapeAll keeps a task's arguments as Concourse passes them: Kubernetes
// would expand $(VAR) and $$ in them.
func escapeAll(args []string) []string {
	var out []string
	for _, a := range args {
		out = append(out, helper.EscapeExpansion(a))
	}
	return out
}

func dedupeMounts(mounts []corev1.VolumeMount) []corev1.VolumeMount {
	seen := map[string]bool{}
	var out []corev1.VolumeMount
	for _, m := range mounts {
		if !seen[m.MountPath] {
			seen[m.MountPath] = true
			out = append(out, m)
		}
	}
	return out
}

// runAsUser reads run.user: a number, or root. Other names need the image's
// /etc/passwd, which Kubernetes does not read.
func runAsUser(user string) (int64, bool) {
	if user == "root" {
		return 0, true
	}
	uid, err := strconv.ParseInt(user, 10, 64)
	return uid, err == nil && uid >= 0
}
