package manage

import (
	"context"
	"errors"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/kernel"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// AbortBuildOptions is fly abort-build, as far as the cluster goes: the
// build's unfinished step pods are deleted.
type AbortBuildOptions struct {
	Options
	Target selector.Target // -j, -b, --team, -A
}

// Validate checks the flags; fly requires -b
// (fly/commands/abort_build.go:16), a build number with -j and a build id
// without.
func (o *AbortBuildOptions) Validate() error {
	if o.Target.Build == "" {
		return errors.New("-b/--build is required: the build number with -j PIPELINE/JOB, else the global build id")
	}
	return o.Target.Validate()
}

// Run finds the build's pods, names the unfinished ones, asks, and
// deletes each only if it is still the pod that was listed. What
// Concourse records of the build is its runtime's business: the runtime
// sees its step pods deleted, as when a worker loses them.
func (o *AbortBuildOptions) Run(ctx context.Context) error {
	ms, err := kernel.Resolve(ctx, o.Client.CoreV1(), o.Namespace, o.Target)
	if err != nil {
		return err
	}
	build, ns := ms[0], ms[0].Pod.Namespace
	pods := o.Client.CoreV1().Pods(ns)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: selector.BuildSelector(build)})
	if err != nil {
		return cmderr.ExplainForbidden(fmt.Errorf("list the pods of %s: %w", o.Target, err), ns, "list", "pods")
	}
	var names []string
	uids := map[string]*metav1.Preconditions{}
	for i := range list.Items {
		p := &list.Items[i]
		if selector.Unfinished(p) && p.DeletionTimestamp == nil {
			names = append(names, p.Name)
			uids[p.Name] = &metav1.Preconditions{UID: &p.UID}
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("build of %s has no unfinished step pods in namespace %s: nothing to abort", o.Target, ns)
	}
	sort.Strings(names)
	ok, err := o.confirm(fmt.Sprintf("!!! this will delete the %d unfinished step pods of %s in namespace %s", len(names), o.Target, ns))
	if err != nil || !ok {
		return err
	}
	for _, name := range names {
		err := pods.Delete(ctx, name, metav1.DeleteOptions{Preconditions: uids[name]})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			continue // it went, or was replaced, meanwhile: not ours to delete
		}
		if err != nil {
			return cmderr.ExplainForbidden(fmt.Errorf("delete pod %s: %w", name, err), ns, "delete", "pods")
		}
		fmt.Fprintf(o.Out, "pod/%s deleted\n", name)
	}
	fmt.Fprintln(o.Out, "build successfully aborted") // fly/commands/abort_build.go:57
	return nil
}
