package views

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// The objects a view prints with -o json|yaml|name|jsonpath|go-template|
// custom-columns. They are not stored anywhere: the group only says whose
// shape this is, so `-o name` reads `worker.kubectl-concourse.dev/node-1`.
const apiGroup = "kubectl-concourse.dev"

var apiVersion = schema.GroupVersion{Group: apiGroup, Version: "v1alpha1"}.String()

func typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// Worker is a node seen as a Concourse worker (fly workers).
type Worker struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`

	Containers int      `json:"containers"` // Concourse pods bound to the node
	Platform   string   `json:"platform"`
	Tags       []string `json:"tags,omitempty"`
	Team       string   `json:"team,omitempty"`
	State      string   `json:"state"` // running, landing, landed or stalled
	Version    string   `json:"version"`

	// Details (-d).
	CPU        string   `json:"cpu,omitempty"`    // allocatable
	Memory     string   `json:"memory,omitempty"` // allocatable
	Pods       string   `json:"pods,omitempty"`   // allocatable pods
	Conditions []string `json:"conditions,omitempty"`
	Taints     []string `json:"taints,omitempty"`

	node *corev1.Node // what the state is derived from
}

// Container is one step container of a Concourse pod (fly containers).
type Container struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"` // name: the handle

	Pod          string `json:"pod"`
	Container    string `json:"container"`
	Worker       string `json:"worker,omitempty"`
	Team         string `json:"team,omitempty"`
	Pipeline     string `json:"pipeline,omitempty"`
	InstanceVars string `json:"instanceVars,omitempty"` // fly's k:v,k2:v2
	Job          string `json:"job,omitempty"`
	BuildName    string `json:"buildName,omitempty"`
	BuildID      string `json:"buildID,omitempty"`
	Type         string `json:"type,omitempty"`
	Step         string `json:"step,omitempty"`
	Resource     string `json:"resource,omitempty"`
	Attempt      string `json:"attempt,omitempty"`
	State        string `json:"state"`
	WorkingDir   string `json:"workingDir,omitempty"`

	vars selector.InstanceVars // for --json, where fly writes an object
}

// Volume is a Concourse PVC or a volume of a Concourse pod (fly volumes).
type Volume struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"` // name: the handle

	Worker     string `json:"worker,omitempty"`
	Type       string `json:"type"`
	Identifier string `json:"identifier"`
	Detailed   string `json:"detailedIdentifier"`
	Size       string `json:"size,omitempty"`
	Status     string `json:"status"`
	Source     string `json:"source"`          // persistentvolumeclaim/NAME or pod/NAME
	Claim      string `json:"claim,omitempty"` // the PVC a pod volume mounts

	owner   selector.Match // what the owner's labels say, for --json
	version map[string]any // a resource volume's version, for --json
}

// Build is the set of step pods of one build.
type Build struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"` // name: build id, or pipeline-job-name

	ID           string       `json:"id,omitempty"`
	Team         string       `json:"team,omitempty"`
	Pipeline     string       `json:"pipeline,omitempty"`
	InstanceVars string       `json:"instanceVars,omitempty"`
	Job          string       `json:"job,omitempty"`
	Resource     string       `json:"resource,omitempty"` // a check's resource
	BuildName    string       `json:"buildName,omitempty"`
	Status       string       `json:"status"`
	Start        *metav1.Time `json:"start,omitempty"`
	End          *metav1.Time `json:"end,omitempty"`
	Steps        []string     `json:"steps"`
	Skipped      []string     `json:"skipped,omitempty"` // pipeline tasks Tekton skipped
	Retries      int          `json:"retries,omitempty"` // earlier attempts of its TaskRuns

	vars selector.InstanceVars // for --json, where fly writes an object
}

// List holds the items of one view, printed as kubectl prints a list.
type List struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata"`
	Items           []runtime.Object `json:"items"`
}

func newList(items []runtime.Object) *List {
	return &List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}, Items: items}
}

func (w *Worker) DeepCopyObject() runtime.Object {
	c := *w
	w.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	c.Tags, c.Conditions, c.Taints = slices.Clone(w.Tags), slices.Clone(w.Conditions), slices.Clone(w.Taints)
	return &c
}

func (c *Container) DeepCopyObject() runtime.Object {
	d := *c
	c.ObjectMeta.DeepCopyInto(&d.ObjectMeta)
	d.vars = maps.Clone(c.vars) // values are JSON scalars, slices or maps, never modified
	return &d
}

func (v *Volume) DeepCopyObject() runtime.Object {
	c := *v
	v.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	c.version = maps.Clone(v.version) // JSON values, never modified
	return &c
}

func (b *Build) DeepCopyObject() runtime.Object {
	c := *b
	b.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	c.Start, c.End = b.Start.DeepCopy(), b.End.DeepCopy()
	c.Steps, c.Skipped = slices.Clone(b.Steps), slices.Clone(b.Skipped)
	c.vars = maps.Clone(b.vars)
	return &c
}

func (l *List) DeepCopyObject() runtime.Object {
	c := *l
	c.Items = make([]runtime.Object, len(l.Items))
	for i, o := range l.Items {
		c.Items[i] = o.DeepCopyObject()
	}
	return &c
}
