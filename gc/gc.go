// Package gc implements `kubectl concourse gc`: it finds and deletes what
// the plugin itself created and a killed or backgrounded run left behind:
// execute's one-off pods and the Secrets of their params, hijack's debug
// copies and other helper pods of the plugin's own.
package gc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/kernel"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// DefaultOlderThan spares what a run in progress may still use.
const DefaultOlderThan = time.Hour

// GCOptions is the state of one gc.
type GCOptions struct {
	genericiooptions.IOStreams

	OlderThan     time.Duration
	DryRun        bool
	AllNamespaces bool

	kernel.Cluster
	Now func() time.Time
}

// NewCmdGC returns `gc`.
func NewCmdGC(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &GCOptions{IOStreams: streams, OlderThan: DefaultOlderThan}
	cmd := &cobra.Command{
		Use:   "gc [--older-than DURATION] [--dry-run]",
		Short: "Delete what the plugin created and a killed or backgrounded run left behind",
		Long: templates.LongDesc(`
			Delete the objects kubectl concourse created that are older than --older-than: execute's
			one-off pods (labelled kubectl-concourse.dev/created-by=execute) and the Secrets of their
			params, and the plugin's own pods (app.kubernetes.io/managed-by=kubectl-concourse: hijack
			--debug copies and helper pods). An execute build that has ended while no plugin follows
			it (its plugin was killed: SIGKILL, a second Ctrl-C) goes whatever its age; one started
			with -b or --keep waits for --older-than. Runs end them on every path they can; gc is for
			a plugin killed with SIGKILL, execute -b, and --keep. Nothing else is touched.`),
		Example: templates.Examples(`
			# See what would go
			kubectl concourse gc --dry-run

			# Delete everything the plugin left in every namespace, whatever its age
			kubectl concourse gc -A --older-than 0`),
	}
	fs := cmd.Flags()
	fs.DurationVar(&o.OlderThan, "older-than", o.OlderThan, "Only what was created at least this long ago (0: everything)")
	fs.BoolVar(&o.DryRun, "dry-run", o.DryRun, "List what would be deleted, delete nothing")
	fs.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", o.AllNamespaces, "In every namespace")
	return kernel.Wire(kernel.NoArgs(cmd), getter, o)
}

// Complete fills the namespace, client and clock when not preset.
func (o *GCOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, _ []string) error {
	if o.Now == nil {
		o.Now = time.Now
	}
	return o.Cluster.Complete(getter)
}

// Validate checks the flags; it calls no API.
func (o *GCOptions) Validate() error {
	if o.OlderThan < 0 {
		return errors.New("--older-than must not be negative")
	}
	return nil
}

// orphaned is an execute build that has ended while nobody keeps it: the
// plugin that followed it deletes it as it ends, so one still there lost its
// plugin (SIGKILL, a second Ctrl-C), whatever its age.
func orphaned(p corev1.Pod) bool {
	ended := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	return ended && p.Labels[selector.LabelCreatedBy] == selector.CreatedByExecute && p.Annotations[selector.AnnotationKept] == ""
}

// leftover is one object to delete.
type leftover struct {
	kind, namespace, name string
	created               time.Time
	remove                func(context.Context) error
}

// Run lists, then deletes (or, with --dry-run, names) each leftover.
func (o *GCOptions) Run(ctx context.Context) error {
	ns := o.Namespace
	if o.AllNamespaces {
		ns = metav1.NamespaceAll
	}
	found, err := o.list(ctx, ns)
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range found {
		age := duration.HumanDuration(o.Now().Sub(l.created))
		name := printers.EscapeTerminal(l.kind + "/" + l.name)
		if o.AllNamespaces {
			name = printers.EscapeTerminal(l.namespace) + " " + name
		}
		if o.DryRun {
			fmt.Fprintf(o.Out, "%s deleted (dry run, age %s)\n", name, age)
			continue
		}
		if err := l.remove(ctx); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", name, cmderr.ExplainForbidden(err, l.namespace, "delete", l.kind+"s")))
			continue
		}
		fmt.Fprintf(o.Out, "%s deleted (age %s)\n", name, age)
	}
	if len(found) == 0 {
		fmt.Fprintf(o.ErrOut, "Nothing kubectl concourse created is older than %s.\n", o.OlderThan)
	}
	return errors.Join(errs...)
}

func (o *GCOptions) list(ctx context.Context, ns string) ([]leftover, error) {
	old := func(m metav1.ObjectMeta) bool { return o.Now().Sub(m.CreationTimestamp.Time) >= o.OlderThan }
	grace := int64(0)
	var found []leftover
	seen := map[types.UID]bool{} // a pod may carry both labels
	where := ns
	for _, sel := range []string{
		selector.LabelCreatedBy + "=" + selector.CreatedByExecute,
		selector.LabelManagedBy + "=" + selector.ManagedByPlugin,
	} {
		pods, err := o.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return nil, fmt.Errorf("list pods: %w", cmderr.ExplainForbidden(err, where, "list", "pods"))
		}
		for _, p := range pods.Items {
			if (old(p.ObjectMeta) || orphaned(p)) && !seen[p.UID] {
				seen[p.UID] = true
				pods := o.Client.CoreV1().Pods(p.Namespace)
				name := p.Name
				found = append(found, leftover{kind: "pod", namespace: p.Namespace, name: p.Name, created: p.CreationTimestamp.Time,
					remove: func(ctx context.Context) error {
						return pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
					}})
			}
		}
	}
	secrets, err := o.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{
		LabelSelector: selector.LabelCreatedBy + "=" + selector.CreatedByExecute})
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", cmderr.ExplainForbidden(err, where, "list", "secrets"))
	}
	for _, s := range secrets.Items {
		if old(s.ObjectMeta) {
			secrets := o.Client.CoreV1().Secrets(s.Namespace)
			name := s.Name
			found = append(found, leftover{kind: "secret", namespace: s.Namespace, name: s.Name, created: s.CreationTimestamp.Time,
				remove: func(ctx context.Context) error { return secrets.Delete(ctx, name, metav1.DeleteOptions{}) }})
		}
	}
	slices.SortFunc(found, func(a, b leftover) int {
		return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.kind, b.kind), cmp.Compare(a.name, b.name))
	})
	return found, nil
}
