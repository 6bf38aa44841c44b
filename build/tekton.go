package build

import (
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// Tekton's runs, read through the dynamic client so that the plugin needs
// no Tekton module, and works the same when Tekton is not installed.
var (
	TaskRuns     = schema.GroupVersionResource{Group: "tekton.dev", Version: "v1", Resource: "taskruns"}
	PipelineRuns = schema.GroupVersionResource{Group: "tekton.dev", Version: "v1", Resource: "pipelineruns"}
)

// Run is what a TaskRun's or PipelineRun's status says of a build.
type Run struct {
	Status     string    // a build status; "" while the run's Succeeded condition is Unknown
	Start, End time.Time // zero when unknown
	Retries    int       // earlier attempts (status.retriesStatus)
	Skipped    []string  // pipeline tasks that did not run (status.skippedTasks)
}

// RunOf reads a run's Succeeded condition as a build status: True is
// succeeded; False is aborted when the run was cancelled, failed when a
// step failed or timed out, and errored otherwise (the run could not
// start: a missing task, an invalid parameter, an image that cannot be
// pulled).
func RunOf(u *unstructured.Unstructured) Run {
	var r Run
	conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conditions {
		c, _ := c.(map[string]any)
		if c["type"] != "Succeeded" {
			continue
		}
		reason, _ := c["reason"].(string)
		switch c["status"] {
		case "True":
			r.Status = Succeeded
		case "False":
			r.Status = failedRunStatus(reason)
		}
	}
	r.Start = nestedTime(u, "status", "startTime")
	r.End = nestedTime(u, "status", "completionTime")
	retries, _, _ := unstructured.NestedSlice(u.Object, "status", "retriesStatus")
	r.Retries = len(retries)
	skipped, _, _ := unstructured.NestedSlice(u.Object, "status", "skippedTasks")
	for _, s := range skipped {
		if s, ok := s.(map[string]any); ok {
			if name, _ := s["name"].(string); name != "" {
				r.Skipped = append(r.Skipped, name)
			}
		}
	}
	return r
}

func failedRunStatus(reason string) string {
	switch {
	case strings.Contains(reason, "Cancelled"), reason == "StoppedRunFinally":
		return Aborted
	case reason == "Failed", strings.HasSuffix(reason, "Timeout"):
		return Failed
	}
	return Errored
}

func nestedTime(u *unstructured.Unstructured, fields ...string) time.Time {
	s, _, _ := unstructured.NestedString(u.Object, fields...)
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// TektonAbsent reports whether err says that Tekton's resources are not
// served: no CRD (404) or no such kind.
func TektonAbsent(err error) bool {
	return apierrors.IsNotFound(err) || meta.IsNoMatchError(err)
}

// RunName is the Tekton run that stands for the build a pod belongs to:
// the pod's PipelineRun, else its TaskRun (kind is the resource: TaskRuns'
// or PipelineRuns'); "" for a pod Tekton did not make.
func RunName(labels map[string]string) (kind, name string) {
	if name := labels[selector.LabelTektonPipelineRun]; name != "" {
		return PipelineRuns.Resource, name
	}
	if name := labels[selector.LabelTektonTaskRun]; name != "" {
		return TaskRuns.Resource, name
	}
	return "", ""
}
