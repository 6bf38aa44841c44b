package views

import (
	"fmt"
	"github.com/kubectl-concourse/kubectl-concourse/selector/labelenc"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// podHandle is the Concourse container handle of a pod: the contract's
// label, else the older one, else the pod's name.
func podHandle(pod *corev1.Pod) string {
	for _, key := range []string{selector.LabelHandle, selector.LabelLegacyHandle} {
		if h, ok := labelenc.Original(pod.Labels, pod.Annotations, key); ok && h != "" {
			return h
		}
	}
	return pod.Name
}

// newContainers describes the step containers of pod, in the pod's order.
// A Tekton pod holds several steps: their handles get "/STEP" appended so
// that every row names one container.
func newContainers(pod *corev1.Pod) []*Container {
	handle := podHandle(pod)
	_, tekton := pod.Labels[selector.LabelTektonTaskRun]
	steps := selector.Steps(pod)
	cs := make([]*Container, 0, len(steps))
	for _, m := range steps {
		name := handle
		if tekton {
			name = handle + "/" + m.Step
		}
		cs = append(cs, &Container{
			TypeMeta: typeMeta("Container"),
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: pod.Namespace, CreationTimestamp: pod.CreationTimestamp,
			},
			Pod: pod.Name, Container: m.Container, Worker: pod.Spec.NodeName,
			Team: m.Team, Pipeline: m.Pipeline, InstanceVars: m.InstanceVars.String(), Job: m.Job,
			BuildName: m.Build, BuildID: m.BuildID, Type: m.StepType, Step: m.Step, Resource: m.Resource,
			Attempt: m.Attempt, State: containerState(pod, m.Container), WorkingDir: m.WorkingDir,
			vars: m.InstanceVars,
		})
	}
	return cs
}

// containerState is the waiting reason, "running" or "exited N", read from
// the container's status; a pod not yet started is "pending".
func containerState(pod *corev1.Pod, container string) string {
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name != container {
			continue
		}
		switch {
		case s.State.Terminated != nil:
			return fmt.Sprintf("exited %d", s.State.Terminated.ExitCode)
		case s.State.Running != nil:
			if pod.DeletionTimestamp != nil {
				return "terminating"
			}
			return "running"
		case s.State.Waiting != nil && s.State.Waiting.Reason != "":
			return s.State.Waiting.Reason
		}
	}
	if pod.Status.Phase == corev1.PodFailed && pod.Status.Reason != "" {
		return pod.Status.Reason // e.g. Evicted: no container status says so
	}
	return "pending"
}

var containerColumns = []metav1.TableColumnDefinition{
	{Name: "Handle", Type: "string", Format: "name", Description: "label " + selector.LabelHandle + ", else the pod name"},
	{Name: "Worker", Type: "string", Description: "node"},
	{Name: "Pipeline", Type: "string", Description: "pipeline, with instance vars"},
	{Name: "Job", Type: "string"},
	{Name: "Build #", Type: "string"},
	{Name: "Build ID", Type: "string"},
	{Name: "Type", Type: "string"},
	{Name: "Name", Type: "string", Description: "step name, else resource name"},
	{Name: "Attempt", Type: "string"},
	{Name: "State", Type: "string", Description: "waiting reason, running or exit code"},
	{Name: "Age", Type: "string"},
	{Name: "Team", Type: "string", Priority: 1},
	{Name: "Pod", Type: "string", Priority: 1},
	{Name: "Container", Type: "string", Priority: 1},
}

func (c *Container) row(r rowContext) metav1.TableRow {
	attempt := c.Attempt
	if attempt == "" {
		attempt = "n/a"
	}
	return metav1.TableRow{
		Cells: []any{
			c.Name, orNone(c.Worker), orNone(c.pipelineRef()), orNone(c.Job), orNone(c.BuildName),
			orNone(c.BuildID), orNone(c.Type), orNone(c.stepName()), attempt, c.State,
			r.age(c.CreationTimestamp), orNone(c.Team), c.Pod, c.Container,
		},
		Object: runtime.RawExtension{Object: c},
	}
}

func (c *Container) pipelineRef() string {
	if c.InstanceVars == "" || c.Pipeline == "" {
		return c.Pipeline
	}
	return c.Pipeline + "/" + c.InstanceVars
}

// stepName is fly's name column: the step, or the resource of a check.
func (c *Container) stepName() string {
	if c.Step != "" {
		return c.Step
	}
	return c.Resource
}

func (c *Container) colour() string {
	switch {
	case c.State == "running":
		return ""
	case c.State == "exited 0":
		return colourGreen
	case strings.HasPrefix(c.State, "exited "):
		return colourRed
	case c.State == "pending" || c.State == "ContainerCreating" || c.State == "PodInitializing":
		return ""
	}
	return colourYellow // a waiting reason such as ErrImagePull
}

// flyContainer is atc.Container's JSON, for --json.
type flyContainer struct {
	ID               string         `json:"id"`
	WorkerName       string         `json:"worker_name"`
	State            string         `json:"state,omitempty"`
	Type             string         `json:"type,omitempty"`
	StepName         string         `json:"step_name,omitempty"`
	Attempt          string         `json:"attempt,omitempty"`
	BuildID          int            `json:"build_id,omitempty"`
	PipelineName     string         `json:"pipeline_name,omitempty"`
	InstanceVars     map[string]any `json:"pipeline_instance_vars,omitempty"`
	JobName          string         `json:"job_name,omitempty"`
	BuildName        string         `json:"build_name,omitempty"`
	ResourceName     string         `json:"resource_name,omitempty"`
	WorkingDirectory string         `json:"working_directory,omitempty"`
}

func (c *Container) fly() any {
	return flyContainer{
		ID: c.Name, WorkerName: c.Worker, State: flyContainerState(c.State), Type: c.Type, StepName: c.Step,
		Attempt: c.Attempt, BuildID: flyID(c.BuildID), PipelineName: c.Pipeline, InstanceVars: c.vars,
		JobName: c.Job, BuildName: c.BuildName, ResourceName: c.Resource, WorkingDirectory: c.WorkingDir,
	}
}

// flyContainerState maps a container state to fly's created/creating/failed.
func flyContainerState(s string) string {
	switch {
	case s == "running" || s == "exited 0":
		return "created"
	case strings.HasPrefix(s, "exited "):
		return "failed"
	case s == "terminating":
		return "destroying"
	}
	return "creating"
}
