package manage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// Volume types of the caches these commands clear (docs/labels.md).
const (
	volumeTaskCache = "task-cache"
	volumeResource  = "resource"
)

// ClearTaskCacheOptions is fly clear-task-cache: delete the task cache
// PVCs of one step of one job.
type ClearTaskCacheOptions struct {
	Options
	Job       string // -j PIPELINE/JOB, instance vars allowed
	Step      string // -s
	CachePath string // -c: only the cache at this path
	Team      string

	scope selector.Scope
}

// Validate checks the flags; fly requires -j and -s
// (fly/commands/clear_task_cache.go:12-13).
func (o *ClearTaskCacheOptions) Validate() error {
	if o.Job == "" || o.Step == "" {
		return errors.New("-j/--job PIPELINE/JOB and -s/--step STEP are required")
	}
	if !strings.Contains(o.Job, "/") {
		return fmt.Errorf("-j/--job %q: want PIPELINE/JOB", o.Job)
	}
	scope, err := selector.Filter{Job: o.Job, Team: o.Team}.Parse()
	if err != nil {
		return err
	}
	o.scope = scope.Also(selector.LabelStepName, o.Step)
	return nil
}

// Run finds the caches, warns in fly's words, asks, deletes and reports.
func (o *ClearTaskCacheOptions) Run(ctx context.Context) error {
	warning := fmt.Sprintf("!!! this will remove the task cache(s) for `%s`, task step `%s`", o.Job, o.Step)
	if o.CachePath != "" {
		warning += fmt.Sprintf(", at `%s`", o.CachePath)
	}
	return o.clear(ctx, o.scope, volumeTaskCache, warning+"\n", func(pvc *corev1.PersistentVolumeClaim) bool {
		return o.CachePath == "" || pvc.Annotations[selector.AnnotationCachePath] == o.CachePath
	})
}

// ClearResourceCacheOptions is fly clear-resource-cache: delete the
// resource cache PVCs of one resource, or of one of its versions.
type ClearResourceCacheOptions struct {
	Options
	Resource string   // -r PIPELINE/RESOURCE
	Version  []string // -v KEY:VALUE, each must match
	Team     string

	scope   selector.Scope
	version map[string]string
}

// Validate checks the flags; fly requires -r
// (fly/commands/clear_resource_cache.go:15).
func (o *ClearResourceCacheOptions) Validate() error {
	if o.Resource == "" {
		return errors.New("-r/--resource PIPELINE/RESOURCE is required")
	}
	pipeline, vars, resource, err := selector.ParseJob(o.Resource)
	if err != nil {
		return fmt.Errorf("-r/--resource: %w", err)
	}
	o.scope = selector.Scope{}.Also(selector.LabelPipeline, pipeline).Also(selector.LabelResource, resource).WithInstanceVars(vars)
	if o.Team != "" {
		o.scope = o.scope.Also(selector.LabelTeam, o.Team)
	}
	o.version = map[string]string{}
	for _, kv := range o.Version {
		k, v, ok := strings.Cut(kv, ":")
		if !ok || k == "" {
			return fmt.Errorf("-v/--version %q: want KEY:VALUE", kv)
		}
		o.version[k] = v
	}
	return nil
}

// Run finds the caches, warns in fly's words, asks, deletes and reports.
func (o *ClearResourceCacheOptions) Run(ctx context.Context) error {
	warning := fmt.Sprintf("!!! this will remove the resource cache(s) for `%s`", o.Resource)
	if len(o.version) > 0 {
		b, _ := json.Marshal(o.version) // a map of strings marshals
		warning += fmt.Sprintf(" with version: `%s`", b)
	}
	return o.clear(ctx, o.scope, volumeResource, warning+"\n", func(pvc *corev1.PersistentVolumeClaim) bool {
		return versionMatches(pvc.Annotations[selector.AnnotationVersion], o.version)
	})
}

// versionMatches reports whether a resource cache's version (a JSON object
// in its annotation) has every KEY:VALUE asked for.
func versionMatches(raw string, want map[string]string) bool {
	if len(want) == 0 {
		return true
	}
	var version map[string]any
	if json.Unmarshal([]byte(raw), &version) != nil {
		return false
	}
	for k, v := range want {
		got, ok := version[k].(string)
		if !ok || got != v {
			return false
		}
	}
	return true
}

// clear deletes the cache PVCs of volumeType that scope and keep select,
// after the warning and the confirmation, each only if it is still the
// PVC that was listed, and prints fly's "N caches removed".
func (o *Options) clear(ctx context.Context, scope selector.Scope, volumeType, warning string, keep func(*corev1.PersistentVolumeClaim) bool) error {
	pvcs := o.Client.CoreV1().PersistentVolumeClaims(o.Namespace)
	list, err := pvcs.List(ctx, metav1.ListOptions{LabelSelector: scope.Selector(selector.VolumesOfType(volumeType))})
	if err != nil {
		return cmderr.ExplainForbidden(fmt.Errorf("list persistentvolumeclaims: %w", err), o.Namespace, "list", "persistentvolumeclaims")
	}
	var caches []corev1.PersistentVolumeClaim
	for _, pvc := range list.Items {
		if scope.Matches(&pvc) && keep(&pvc) && pvc.DeletionTimestamp == nil {
			caches = append(caches, pvc)
		}
	}
	sort.Slice(caches, func(i, j int) bool { return caches[i].Name < caches[j].Name })
	if len(caches) > 0 {
		ok, err := o.confirm(warning)
		if err != nil || !ok {
			return err
		}
	}
	removed := 0
	for _, pvc := range caches {
		err := pvcs.Delete(ctx, pvc.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pvc.UID}})
		if err != nil {
			return cmderr.ExplainForbidden(fmt.Errorf("delete persistentvolumeclaim %s: %w (%d caches removed)", pvc.Name, err, removed),
				o.Namespace, "delete", "persistentvolumeclaims")
		}
		removed++
		fmt.Fprintf(o.Out, "persistentvolumeclaim/%s deleted\n", pvc.Name)
	}
	fmt.Fprintf(o.Out, "%d caches removed\n", removed)
	return nil
}
