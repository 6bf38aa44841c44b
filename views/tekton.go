package views

import (
	"context"
	"fmt"
	"io"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/kubectl-concourse/kubectl-concourse/build"
)

// tektonRuns are the runs of one namespace (or all), by namespace/name.
type tektonRuns struct {
	pipelineRuns, taskRuns map[string]build.Run
}

// listTektonRuns lists the PipelineRuns and TaskRuns that sel selects.
// Without Tekton's CRDs there are none, which is no error; when listing
// them is forbidden the views fall back to the pods, with a warning.
func listTektonRuns(ctx context.Context, client dynamic.Interface, namespace, sel string, errOut io.Writer) (tektonRuns, error) {
	runs := tektonRuns{pipelineRuns: map[string]build.Run{}, taskRuns: map[string]build.Run{}}
	for gvr, into := range map[schema.GroupVersionResource]map[string]build.Run{
		build.PipelineRuns: runs.pipelineRuns, build.TaskRuns: runs.taskRuns,
	} {
		l, err := client.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		switch {
		case build.TektonAbsent(err):
			continue
		case apierrors.IsForbidden(err):
			fmt.Fprintf(errOut, "warning: cannot list %s.%s, status from the pods only: %v\n", gvr.Resource, gvr.Group, err)
			continue
		case err != nil:
			return tektonRuns{}, fmt.Errorf("list %s.%s: %w", gvr.Resource, gvr.Group, err)
		}
		for i := range l.Items {
			into[l.Items[i].GetNamespace()+"/"+l.Items[i].GetName()] = build.RunOf(&l.Items[i])
		}
	}
	return runs, nil
}

// of returns the run of a build whose pods name it.
func (r tektonRuns) of(namespace string, podLabels []map[string]string) (build.Run, bool) {
	var kind, name string
	for i, l := range podLabels {
		k, n := build.RunName(l)
		if i > 0 && (k != kind || n != name) {
			return build.Run{}, false // the pods of one build name different runs: none stands for it
		}
		kind, name = k, n
	}
	var run build.Run
	var ok bool
	switch kind {
	case build.PipelineRuns.Resource:
		run, ok = r.pipelineRuns[namespace+"/"+name]
	case build.TaskRuns.Resource:
		run, ok = r.taskRuns[namespace+"/"+name]
	}
	return run, ok
}
