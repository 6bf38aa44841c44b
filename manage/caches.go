package manage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/printers"

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
// PVC that was listed, waits until they are gone, as kubectl delete does,
// and prints fly's "N caches removed". A claim that a pod still uses stays
// (Terminating) until the pod ends: that is said, naming the pod, and not
// counted as removed.
func (o *Options) clear(ctx context.Context, scope selector.Scope, volumeType, warning string, keep func(*corev1.PersistentVolumeClaim) bool) error {
	pvcs := o.Client.CoreV1().PersistentVolumeClaims(o.Namespace)
	opts := metav1.ListOptions{LabelSelector: scope.Selector(selector.VolumesOfType(volumeType))}
	list, err := pvcs.List(ctx, opts)
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
	var deleted []corev1.PersistentVolumeClaim
	for _, pvc := range caches {
		err := pvcs.Delete(ctx, pvc.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pvc.UID}})
		if err != nil {
			err = cmderr.ExplainForbidden(fmt.Errorf("delete persistentvolumeclaim %s: %w", pvc.Name, err), o.Namespace, "delete", "persistentvolumeclaims")
			if len(deleted) == 0 {
				return err
			}
			return errors.Join(err, o.waitRemoved(ctx, opts, deleted))
		}
		deleted = append(deleted, pvc)
		fmt.Fprintf(o.Out, "persistentvolumeclaim/%s deleted\n", pvc.Name)
	}
	return o.waitRemoved(ctx, opts, deleted)
}

// waitRemoved waits until the deleted claims are gone (a LIST as the one
// that found them, every pollInterval, for at most Options.DeleteTimeout),
// prints fly's "N caches removed" of those that are, and fails naming
// those that are not: the pod that still uses one, which holds it until it
// ends (the API server's pvc-protection), or the claim still Terminating.
func (o *Options) waitRemoved(ctx context.Context, opts metav1.ListOptions, deleted []corev1.PersistentVolumeClaim) error {
	pvcs := o.Client.CoreV1().PersistentVolumeClaims(o.Namespace)
	left := deleted
	held := map[string]string{} // claim -> a pod that uses it
	deadline := time.Now().Add(o.DeleteTimeout)
	for first := true; ; first = false {
		list, err := pvcs.List(ctx, opts)
		if err != nil {
			return cmderr.ExplainForbidden(fmt.Errorf("list persistentvolumeclaims: %w", err), o.Namespace, "list", "persistentvolumeclaims")
		}
		left = stillThere(left, list.Items)
		if first && len(left) > 0 {
			// A claim in use stays until its pod ends: no wait helps.
			held = o.holders(ctx, left)
		}
		waiting := slices.ContainsFunc(left, func(pvc corev1.PersistentVolumeClaim) bool { return held[pvc.Name] == "" })
		if !waiting || !time.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return cmderr.Interruption(ctx)
		case <-time.After(pollInterval):
		}
	}
	fmt.Fprintf(o.Out, "%d caches removed\n", len(deleted)-len(left))
	var errs []error
	for _, pvc := range left {
		if pod := held[pvc.Name]; pod != "" {
			errs = append(errs, fmt.Errorf("persistentvolumeclaim %s is still in use by pod %s: it is removed when the pod ends", pvc.Name, pod))
		} else {
			errs = append(errs, fmt.Errorf("persistentvolumeclaim %s is still terminating after %s", pvc.Name, o.DeleteTimeout))
		}
	}
	return errors.Join(errs...)
}

// pollInterval paces waitRemoved's LISTs.
const pollInterval = 250 * time.Millisecond

// stillThere is the claims of deleted that items still holds, the same
// objects (a claim recreated under its name is another cache).
func stillThere(deleted, items []corev1.PersistentVolumeClaim) []corev1.PersistentVolumeClaim {
	var left []corev1.PersistentVolumeClaim
	for _, pvc := range deleted {
		if slices.ContainsFunc(items, func(i corev1.PersistentVolumeClaim) bool { return i.UID == pvc.UID }) {
			left = append(left, pvc)
		}
	}
	return left
}

// holders names, for each of claims, a pod that has not ended and mounts
// it. Without the right to list pods none is known, and the claims are
// waited for like the others.
func (o *Options) holders(ctx context.Context, claims []corev1.PersistentVolumeClaim) map[string]string {
	held := map[string]string{}
	pods, err := o.Client.CoreV1().Pods(o.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return held
	}
	for _, pod := range pods.Items {
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, v := range pod.Spec.Volumes {
			if c := v.PersistentVolumeClaim; c != nil && held[c.ClaimName] == "" &&
				slices.ContainsFunc(claims, func(pvc corev1.PersistentVolumeClaim) bool { return pvc.Name == c.ClaimName }) {
				held[c.ClaimName] = printers.EscapeTerminal(pod.Namespace + "/" + pod.Name)
			}
		}
	}
	return held
}
