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
	"strconv"
	"strings"
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

// DefaultCachesUnusedFor keeps a warm input cache while its input is
// worked on: a cache is worth its disk for the next run, days later.
const DefaultCachesUnusedFor = 7 * 24 * time.Hour

// GCOptions is the state of one gc.
type GCOptions struct {
	genericiooptions.IOStreams

	OlderThan       time.Duration
	CachesUnusedFor time.Duration // execute's warm input caches no run used for this long
	DryRun          bool
	AllNamespaces   bool

	kernel.Cluster
	Now func() time.Time
}

// NewCmdGC returns `gc`.
func NewCmdGC(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &GCOptions{IOStreams: streams, OlderThan: DefaultOlderThan, CachesUnusedFor: DefaultCachesUnusedFor}
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
			a plugin killed with SIGKILL, execute -b, and --keep. execute's warm input caches (claims
			labelled concourse-ci.org/volume-type=input-cache) go once no run has used them for
			--caches-unused-for, unless a run holds one. Nothing else is touched.`),
		Example: templates.Examples(`
			# See what would go
			kubectl concourse gc --dry-run

			# Delete everything the plugin left in every namespace, whatever its age
			kubectl concourse gc -A --older-than 0

			# Also the warm input caches no run has used for a day
			kubectl concourse gc --caches-unused-for 1d`),
	}
	fs := cmd.Flags()
	fs.DurationVar(&o.OlderThan, "older-than", o.OlderThan, "Only what was created at least this long ago (0: everything)")
	fs.Var((*days)(&o.CachesUnusedFor), "caches-unused-for", "Delete execute's warm input caches that no run has used for this long, in days (7d) or Go's units (12h); 0: every one no run holds")
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
	if o.CachesUnusedFor < 0 {
		return errors.New("--caches-unused-for must not be negative")
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
	caches, err := o.unusedCaches(ctx, ns)
	if err != nil {
		return nil, err
	}
	found = append(found, caches...)
	slices.SortFunc(found, func(a, b leftover) int {
		return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.kind, b.kind), cmp.Compare(a.name, b.name))
	})
	return found, nil
}

// unusedCaches are execute's warm input caches that no run has taken for
// CachesUnusedFor and no run holds now. A user who may not list claims
// is told so, and the rest goes on.
func (o *GCOptions) unusedCaches(ctx context.Context, ns string) ([]leftover, error) {
	claims, err := o.Client.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{
		LabelSelector: selector.LabelManagedBy + "=" + selector.ManagedByPlugin + "," + selector.LabelVolumeType + "=" + selector.VolumeTypeInputCache})
	if apierrors.IsForbidden(err) {
		fmt.Fprintf(o.ErrOut, "warning: warm input caches not looked at: %v\n", cmderr.ExplainForbidden(err, ns, "list", "persistentvolumeclaims"))
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list persistentvolumeclaims: %w", err)
	}
	var found []leftover
	for _, c := range claims.Items {
		used := c.CreationTimestamp.Time
		if t, err := time.Parse(time.RFC3339, c.Annotations[selector.AnnotationLastUsed]); err == nil {
			used = t
		}
		if o.Now().Sub(used) < o.CachesUnusedFor || leased(c, o.Now()) {
			continue
		}
		pvcs := o.Client.CoreV1().PersistentVolumeClaims(c.Namespace)
		name := c.Name
		found = append(found, leftover{kind: "persistentvolumeclaim", namespace: c.Namespace, name: c.Name, created: used,
			remove: func(ctx context.Context) error { return pvcs.Delete(ctx, name, metav1.DeleteOptions{}) }})
	}
	return found, nil
}

// leased says whether a run holds the cache claim c now, by its lease's
// expiry: a pod that outlives it (execute -b) keeps its claim anyway, since
// a claim in use is deleted only once no pod uses it.
func leased(c corev1.PersistentVolumeClaim, now time.Time) bool {
	lease, ok := selector.LeaseOf(c.Annotations)
	return ok && now.Before(lease.Expiry)
}

// days is a duration flag that also takes whole or fractional days (7d,
// 1.5d), the unit a cache's life is counted in.
type days time.Duration

func (d *days) String() string {
	if v := time.Duration(*d); v > 0 && v%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(v/(24*time.Hour)), 10) + "d"
	}
	return time.Duration(*d).String()
}

func (d *days) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		f, err := strconv.ParseFloat(n, 64)
		if err != nil {
			return fmt.Errorf("want days (7d) or a duration (12h): %w", err)
		}
		*d = days(f * float64(24*time.Hour))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want days (7d) or a duration (12h): %w", err)
	}
	*d = days(v)
	return nil
}

func (d *days) Type() string { return "duration" }
