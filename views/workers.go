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

// pressureConditions are the node conditions worth a column when true.
var pressureConditions = []corev1.NodeConditionType{
	corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure, corev1.NodeNetworkUnavailable,
}

// newWorker describes node as a Concourse worker to which containers pods
// are bound, unfinished of them still running or to run.
func newWorker(node *corev1.Node, containers, unfinished int) *Worker {
	w := &Worker{
		TypeMeta:   typeMeta("Worker"),
		ObjectMeta: metav1.ObjectMeta{Name: node.Name, CreationTimestamp: node.CreationTimestamp},
		Containers: containers,
		Platform:   node.Labels[corev1.LabelOSStable],
		Version:    node.Status.NodeInfo.KubeletVersion,
		State:      selector.WorkerState(node, unfinished),
		node:       node,
	}
	if w.Platform == "" {
		w.Platform = node.Status.NodeInfo.OperatingSystem
	}
	w.Team, _ = labelenc.Original(node.Labels, node.Annotations, selector.LabelTeam)
	for k := range node.Labels {
		if tag, ok := strings.CutPrefix(k, selector.NodeTagPrefix); ok && tag != "" {
			w.Tags = append(w.Tags, tag)
		}
	}
	sort.Strings(w.Tags)

	alloc := node.Status.Allocatable
	if q, ok := alloc[corev1.ResourceCPU]; ok {
		w.CPU = q.String()
	}
	if q, ok := alloc[corev1.ResourceMemory]; ok {
		w.Memory = q.String()
	}
	if q, ok := alloc[corev1.ResourcePods]; ok {
		w.Pods = q.String()
	}
	for _, c := range node.Status.Conditions {
		for _, p := range pressureConditions {
			if c.Type == p && c.Status == corev1.ConditionTrue {
				w.Conditions = append(w.Conditions, string(c.Type))
			}
		}
	}
	sort.Strings(w.Conditions)
	for _, t := range node.Spec.Taints {
		s := t.Key
		if t.Value != "" {
			s += "=" + t.Value
		}
		w.Taints = append(w.Taints, s+":"+string(t.Effect))
	}
	return w
}

// setCounts records the pods bound to the worker, which decide between
// landing and landed.
func (w *Worker) setCounts(containers, unfinished int) {
	w.Containers, w.State = containers, selector.WorkerState(w.node, unfinished)
}

// workerColumns are fly's columns; -d (or -o wide) adds the Priority 1 ones.
var workerColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: "node name"},
	{Name: "Containers", Type: "integer", Description: "Concourse pods bound to the node"},
	{Name: "Platform", Type: "string", Description: "label kubernetes.io/os"},
	{Name: "Tags", Type: "string", Description: "labels " + selector.NodeTagPrefix + "<tag>"},
	{Name: "Team", Type: "string", Description: "label " + selector.LabelTeam},
	{Name: "State", Type: "string", Description: "running, landing (cordoned, step pods unfinished), landed (cordoned, none left) or stalled (not ready)"},
	{Name: "Version", Type: "string", Description: "kubelet version"},
	{Name: "Age", Type: "string"},
	{Name: "CPU", Type: "string", Priority: 1, Description: "allocatable CPU"},
	{Name: "Memory", Type: "string", Priority: 1, Description: "allocatable memory"},
	{Name: "Pods", Type: "string", Priority: 1, Description: "allocatable pods"},
	{Name: "Pressure", Type: "string", Priority: 1, Description: "node conditions that are true"},
	{Name: "Taints", Type: "string", Priority: 1},
}

func (w *Worker) row(r rowContext) metav1.TableRow {
	return metav1.TableRow{
		Cells: []any{
			w.Name, int64(w.Containers), orNone(w.Platform), orNone(strings.Join(w.Tags, ", ")),
			orNone(w.Team), w.State, orNone(w.Version), r.age(w.CreationTimestamp),
			orNone(w.CPU), orNone(w.Memory), orNone(w.Pods),
			orNone(strings.Join(w.Conditions, ",")), orNone(strings.Join(w.Taints, ",")),
		},
		Object: runtime.RawExtension{Object: w},
	}
}

func (w *Worker) colour() string {
	switch w.State {
	case selector.WorkerStalled:
		return colourRed
	case selector.WorkerLanding, selector.WorkerLanded:
		return colourYellow
	}
	return ""
}

// flyWorker is atc.Worker's JSON (atc/worker.go:9-36), for --json: the
// fields fly always writes, with fly's types. A node has no Garden or
// baggageclaim address, proxies or resource types: those are empty, and
// only containers are counted.
type flyWorker struct {
	GardenAddr       string            `json:"addr"`
	BaggageclaimURL  string            `json:"baggageclaim_url"`
	ActiveContainers int               `json:"active_containers"`
	ActiveVolumes    int               `json:"active_volumes"`
	ActiveTasks      int               `json:"active_tasks"`
	MaxActiveTasks   int               `json:"max_active_tasks"`
	ResourceTypes    []json.RawMessage `json:"resource_types"`
	Platform         string            `json:"platform"`
	Tags             []string          `json:"tags"`
	Team             string            `json:"team"`
	Name             string            `json:"name"`
	Version          string            `json:"version"`
	StartTime        int64             `json:"start_time"`
	Ephemeral        bool              `json:"ephemeral"`
	State            string            `json:"state"`
}

func (w *Worker) fly() any {
	return flyWorker{
		ActiveContainers: w.Containers, ResourceTypes: []json.RawMessage{}, Platform: w.Platform, Tags: nonNil(w.Tags),
		Team: w.Team, Name: w.Name, Version: w.Version, StartTime: w.CreationTimestamp.Unix(), State: w.State,
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
