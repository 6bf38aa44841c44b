package views

import (
	"encoding/json"
	"github.com/kubectl-concourse/kubectl-concourse/selector/labelenc"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// Volume types of the contract (label selector.LabelVolumeType).
const (
	volumeContainer    = "container"
	volumeResource     = "resource"
	volumeResourceType = "resource-type"
	volumeTaskCache    = "task-cache"
)

// annotationSelectedNode is where the scheduler records a PVC's node.
const annotationSelectedNode = "volume.kubernetes.io/selected-node"

// claimUse records that a Concourse pod mounts a PVC: it gives the PVC's
// worker and, for a container volume, its container handle and path.
type claimUse struct {
	node, handle, path string
}

// podVolumes describes the volumes of a Concourse pod that hold data
// (emptyDir, hostPath, ephemeral, CSI, PVC) and returns, keyed by claim name,
// who mounts which PVC. Config volumes (configMap, secret, projected,
// downwardAPI) and Tekton's internal volumes are not Concourse volumes.
func podVolumes(pod *corev1.Pod) ([]*Volume, map[string]claimUse) {
	handle := podHandle(pod)
	owner := selector.Steps(pod)[0] // every pod has at least its contract container
	owner.Pod = nil
	var vols []*Volume
	uses := map[string]claimUse{}
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, "tekton-internal-") {
			continue
		}
		size, claim := "", ""
		switch {
		case v.EmptyDir != nil:
			if v.EmptyDir.SizeLimit != nil {
				size = v.EmptyDir.SizeLimit.String()
			}
		case v.PersistentVolumeClaim != nil:
			claim = v.PersistentVolumeClaim.ClaimName
			uses[v.PersistentVolumeClaim.ClaimName] = claimUse{node: pod.Spec.NodeName, handle: handle, path: mountPath(pod, v.Name)}
		case v.HostPath != nil, v.Ephemeral != nil, v.CSI != nil:
		default:
			continue
		}
		path := mountPath(pod, v.Name)
		vols = append(vols, &Volume{
			TypeMeta: typeMeta("Volume"),
			ObjectMeta: metav1.ObjectMeta{
				Name: pod.Name + "/" + v.Name, Namespace: pod.Namespace, CreationTimestamp: pod.CreationTimestamp,
			},
			Worker: pod.Spec.NodeName, Type: volumeContainer, Identifier: handle,
			Detailed: containerIdentifier(handle, path), Size: size, Status: string(pod.Status.Phase),
			Source: "pod/" + pod.Name, Claim: claim, owner: owner,
		})
	}
	return vols, uses
}

// mountPath is where the pod's step container mounts volume name, else
// where any container does.
func mountPath(pod *corev1.Pod, name string) string {
	steps := map[string]bool{}
	for _, m := range selector.Steps(pod) {
		steps[m.Container] = true
	}
	path := ""
	for _, c := range pod.Spec.Containers {
		for _, vm := range c.VolumeMounts {
			if vm.Name != name {
				continue
			}
			if steps[c.Name] {
				return vm.MountPath
			}
			if path == "" {
				path = vm.MountPath
			}
		}
	}
	return path
}

func containerIdentifier(handle, path string) string {
	return "container:" + handle + ",path:" + path
}

// newPVCVolume describes a Concourse PVC; use says which pod mounts it, if any.
func newPVCVolume(pvc *corev1.PersistentVolumeClaim, use *claimUse) *Volume {
	get := func(key string) string {
		v, _ := labelenc.Original(pvc.Labels, pvc.Annotations, key)
		return v
	}
	handle := get(selector.LabelHandle)
	if handle == "" {
		handle = pvc.Name
	}
	v := &Volume{
		TypeMeta: typeMeta("Volume"),
		ObjectMeta: metav1.ObjectMeta{
			Name: handle, Namespace: pvc.Namespace, CreationTimestamp: pvc.CreationTimestamp,
		},
		Worker: pvc.Annotations[annotationSelectedNode],
		Type:   pvc.Labels[selector.LabelVolumeType],
		Status: string(pvc.Status.Phase),
		Source: "persistentvolumeclaim/" + pvc.Name,
		owner:  selector.Owner(pvc),
	}
	if raw := pvc.Annotations[selector.AnnotationVersion]; raw != "" {
		_ = json.Unmarshal([]byte(raw), &v.version) // unreadable: no version, as the identifier shows
	}
	if use != nil && v.Worker == "" {
		v.Worker = use.node
	}
	if q, ok := pvc.Status.Capacity[corev1.ResourceStorage]; ok {
		v.Size = q.String()
	} else if q, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
		v.Size = q.String()
	}
	// fly's identifier rules (fly volumes), from the owner's labels.
	switch v.Type {
	case volumeContainer:
		v.Identifier, v.Detailed = "n/a", "n/a"
		if use != nil {
			v.Identifier, v.Detailed = use.handle, containerIdentifier(use.handle, use.path)
		}
	case volumeTaskCache:
		v.Identifier = get(selector.LabelPipeline) + "/" + get(selector.LabelJob) + "/" + get(selector.LabelStepName)
		v.Detailed = v.Identifier
	case volumeResource:
		resource := get(selector.LabelResource)
		version := flattenVersion(pvc.Annotations[selector.AnnotationVersion])
		v.Identifier = version
		if v.Identifier == "" {
			v.Identifier = orNone(resource)
		}
		v.Detailed = "resource:" + resource + ",version:" + orNone(version)
	case selector.VolumeTypeInputCache:
		// execute's warm cache of an input (docs/caches.md).
		v.Identifier = orNone(pvc.Annotations[selector.AnnotationCacheOf])
		v.Detailed = "input:" + v.Identifier + ",user:" + orNone(pvc.Annotations[selector.AnnotationCacheUser]) +
			",last-used:" + orNone(pvc.Annotations[selector.AnnotationLastUsed])
	case volumeResourceType:
		name := get(selector.LabelResource)
		v.Identifier = orNone(name)
		v.Detailed = "name:" + name + ",version:" + orNone(flattenVersion(pvc.Annotations[selector.AnnotationVersion]))
	default:
		v.Identifier, v.Detailed = "n/a", "n/a"
	}
	return v
}

// flattenVersion renders a version object as fly does: `k:v` pairs joined by
// commas with spaces removed, sorted by key. Unreadable input gives "".
func flattenVersion(raw string) string {
	if raw == "" {
		return ""
	}
	var version map[string]any
	if err := json.Unmarshal([]byte(raw), &version); err != nil {
		return ""
	}
	pairs := make([]string, 0, len(version))
	for k, val := range version {
		s, ok := val.(string)
		if !ok {
			b, _ := json.Marshal(val) // decoded from JSON: marshals back
			s = string(b)
		}
		pairs = append(pairs, strings.ReplaceAll(k+":"+s, " ", ""))
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

// volumeSet gathers volumes from pages of pods and PVCs; a PVC of the
// contract replaces the pod volume that mounts it.
type volumeSet struct {
	podVols []*Volume
	uses    map[string]claimUse // namespace/claim
	pvcs    []*Volume
	pvcKeys map[string]bool // namespace/claim of Concourse PVCs
}

func newVolumeSet() *volumeSet {
	return &volumeSet{uses: map[string]claimUse{}, pvcKeys: map[string]bool{}}
}

func (s *volumeSet) addPod(pod *corev1.Pod) {
	vols, uses := podVolumes(pod)
	s.podVols = append(s.podVols, vols...)
	for claim, u := range uses {
		s.uses[pod.Namespace+"/"+claim] = u
	}
}

func (s *volumeSet) addPVC(pvc *corev1.PersistentVolumeClaim) {
	key := pvc.Namespace + "/" + pvc.Name
	s.pvcKeys[key] = true
	var use *claimUse
	if u, ok := s.uses[key]; ok {
		use = &u
	}
	s.pvcs = append(s.pvcs, newPVCVolume(pvc, use))
}

// items returns the volumes in fly's order: by worker, then handle.
func (s *volumeSet) items() []*Volume {
	vols := make([]*Volume, 0, len(s.pvcs)+len(s.podVols))
	vols = append(vols, s.pvcs...)
	for _, v := range s.podVols {
		if v.Claim == "" || !s.pvcKeys[v.Namespace+"/"+v.Claim] {
			vols = append(vols, v)
		}
	}
	sort.SliceStable(vols, func(i, j int) bool {
		a, b := vols[i], vols[j]
		if a.Worker != b.Worker {
			return a.Worker < b.Worker
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Namespace < b.Namespace
	})
	return vols
}

var volumeColumns = []metav1.TableColumnDefinition{
	{Name: "Handle", Type: "string", Format: "name", Description: "label " + selector.LabelHandle + ", else POD/VOLUME or the PVC name"},
	{Name: "Worker", Type: "string", Description: "node"},
	{Name: "Type", Type: "string", Description: "label " + selector.LabelVolumeType + "; container for pod volumes"},
	{Name: "Identifier", Type: "string", Description: "fly's identifier; -d gives the detailed one"},
	{Name: "Size", Type: "string"},
	{Name: "Status", Type: "string", Description: "PVC phase, or the pod's phase"},
	{Name: "Age", Type: "string"},
	{Name: "Source", Type: "string", Priority: 1},
}

func (v *Volume) row(r rowContext) metav1.TableRow {
	id := v.Identifier
	if r.details {
		id = v.Detailed
	}
	return metav1.TableRow{
		Cells: []any{
			v.Name, orNone(v.Worker), orNone(v.Type), orNone(id), orNone(v.Size), orNone(v.Status),
			r.age(v.CreationTimestamp), v.Source,
		},
		Object: runtime.RawExtension{Object: v},
	}
}

func (v *Volume) colour() string {
	if v.Status == string(corev1.ClaimLost) || v.Status == string(corev1.PodFailed) {
		return colourRed
	}
	return ""
}

// flyVolume is atc.Volume's JSON (atc/volume.go:14-28), for --json: every
// field, always written, with fly's types. The ATC's numeric pipeline id
// and parent volume have no counterpart: 0 and "".
type flyVolume struct {
	ID                   string                 `json:"id"`
	WorkerName           string                 `json:"worker_name"`
	Type                 string                 `json:"type"`
	ContainerHandle      string                 `json:"container_handle"`
	Path                 string                 `json:"path"`
	ParentHandle         string                 `json:"parent_handle"`
	ResourceType         *flyVolumeResourceType `json:"resource_type"`
	BaseResourceType     *flyVolumeBaseResource `json:"base_resource_type"`
	PipelineID           int                    `json:"pipeline_id"`
	PipelineName         string                 `json:"pipeline_name"`
	PipelineInstanceVars selector.InstanceVars  `json:"pipeline_instance_vars"`
	JobName              string                 `json:"job_name"`
	StepName             string                 `json:"step_name"`
}

// flyVolumeResourceType is atc.VolumeResourceType (atc/volume.go:3-7).
type flyVolumeResourceType struct {
	ResourceType     *flyVolumeResourceType `json:"resource_type"`
	BaseResourceType *flyVolumeBaseResource `json:"base_resource_type"`
	Version          map[string]any         `json:"version"`
}

// flyVolumeBaseResource is atc.VolumeBaseResourceType (atc/volume.go:9-12).
type flyVolumeBaseResource struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

func (v *Volume) fly() any {
	f := flyVolume{
		ID: v.Name, WorkerName: v.Worker, Type: v.Type, PipelineName: v.owner.Pipeline,
		PipelineInstanceVars: v.owner.InstanceVars, JobName: v.owner.Job, StepName: v.owner.Step,
	}
	switch v.Type {
	case volumeContainer:
		// The detailed identifier is container:HANDLE,path:PATH.
		rest, _ := strings.CutPrefix(v.Detailed, "container:")
		f.ContainerHandle, f.Path, _ = strings.Cut(rest, ",path:")
	case volumeResource:
		f.ResourceType = &flyVolumeResourceType{Version: v.version}
	case volumeResourceType:
		f.BaseResourceType = &flyVolumeBaseResource{Name: v.owner.Resource}
	}
	return f
}
