package views

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// Tekton's runs, read through the dynamic client so that the plugin needs
// no Tekton module, and works the same when Tekton is not installed.
var (
	taskRunsResource     = schema.GroupVersionResource{Group: "tekton.dev", Version: "v1", Resource: "taskruns"}
	pipelineRunsResource = schema.GroupVersionResource{Group: "tekton.dev", Version: "v1", Resource: "pipelineruns"}
)

// tektonRun is what a TaskRun's or PipelineRun's status says of a build.
type tektonRun struct {
	status     string    // a build status; "" while the run's Succeeded condition is Unknown
	start, end time.Time // zero when unknown
	retries    int       // earlier attempts (status.retriesStatus)
	skipped    []string  // pipeline tasks that did not run (status.skippedTasks)
}

// runOf reads a run's Succeeded condition as a build status: True is
// succeeded; False is aborted when the run was cancelled, failed when a
// step failed or timed out, and errored otherwise (the run could not
// start: a missing task, an invalid parameter, an image that cannot be
// pulled).
func runOf(u *unstructured.Unstructured) tektonRun {
	var r tektonRun
	conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conditions {
		c, _ := c.(map[string]any)
		if c["type"] != "Succeeded" {
			continue
		}
		reason, _ := c["reason"].(string)
		switch c["status"] {
		case "True":
			r.status = statusSucceeded
		case "False":
			r.status = failedRunStatus(reason)
		}
	}
	r.start = nestedTime(u, "status", "startTime")
	r.end = nestedTime(u, "status", "completionTime")
	retries, _, _ := unstructured.NestedSlice(u.Object, "status", "retriesStatus")
	r.retries = len(retries)
	skipped, _, _ := unstructured.NestedSlice(u.Object, "status", "skippedTasks")
	for _, s := range skipped {
		if s, ok := s.(map[string]any); ok {
			if name, _ := s["name"].(string); name != "" {
				r.skipped = append(r.skipped, name)
			}
		}
	}
	return r
}

func failedRunStatus(reason string) string {
	switch {
	case strings.Contains(reason, "Cancelled"), reason == "StoppedRunFinally":
		return statusAborted
	case reason == "Failed", strings.HasSuffix(reason, "Timeout"):
		return statusFailed
	}
	return statusErrored
}

func nestedTime(u *unstructured.Unstructured, fields ...string) time.Time {
	s, _, _ := unstructured.NestedString(u.Object, fields...)
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// tektonRuns are the runs of one namespace (or all), by namespace/name.
type tektonRuns struct {
	pipelineRuns, taskRuns map[string]tektonRun
}

// listTektonRuns lists the PipelineRuns and TaskRuns that sel selects.
// Without Tekton's CRDs there are none, which is no error; when listing
// them is forbidden the views fall back to the pods, with a warning.
func listTektonRuns(ctx context.Context, client dynamic.Interface, namespace, sel string, errOut io.Writer) (tektonRuns, error) {
	runs := tektonRuns{pipelineRuns: map[string]tektonRun{}, taskRuns: map[string]tektonRun{}}
	for gvr, into := range map[schema.GroupVersionResource]map[string]tektonRun{
		pipelineRunsResource: runs.pipelineRuns, taskRunsResource: runs.taskRuns,
	} {
		l, err := client.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		switch {
		case tektonAbsent(err):
			continue
		case apierrors.IsForbidden(err):
			fmt.Fprintf(errOut, "warning: cannot list %s.%s, status from the pods only: %v\n", gvr.Resource, gvr.Group, err)
			continue
		case err != nil:
			return tektonRuns{}, fmt.Errorf("list %s.%s: %w", gvr.Resource, gvr.Group, err)
		}
		for i := range l.Items {
			into[l.Items[i].GetNamespace()+"/"+l.Items[i].GetName()] = runOf(&l.Items[i])
		}
	}
	return runs, nil
}

// tektonAbsent reports whether err says that Tekton's resources are not
// served: no CRD (404) or no such kind.
func tektonAbsent(err error) bool {
	return apierrors.IsNotFound(err) || meta.IsNoMatchError(err)
}

// runName is the Tekton run that stands for the build a pod belongs to:
// the pod's PipelineRun, else its TaskRun; "" for a pod Tekton did not make.
func runName(labels map[string]string) (kind, name string) {
	if name := labels[selector.LabelTektonPipelineRun]; name != "" {
		return pipelineRunsResource.Resource, name
	}
	if name := labels[selector.LabelTektonTaskRun]; name != "" {
		return taskRunsResource.Resource, name
	}
	return "", ""
}

// of returns the run of a build whose pods name it.
func (r tektonRuns) of(namespace string, podLabels []map[string]string) (tektonRun, bool) {
	var kind, name string
	for i, l := range podLabels {
		k, n := runName(l)
		if i > 0 && (k != kind || n != name) {
			return tektonRun{}, false // the pods of one build name different runs: none stands for it
		}
		kind, name = k, n
	}
	var run tektonRun
	var ok bool
	switch kind {
	case pipelineRunsResource.Resource:
		run, ok = r.pipelineRuns[namespace+"/"+name]
	case taskRunsResource.Resource:
		run, ok = r.taskRuns[namespace+"/"+name]
	}
	return run, ok
}
