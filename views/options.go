package views

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/kernel"
	"github.com/kubectl-concourse/kubectl-concourse/listwatch"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// DefaultChunkSize is kubectl's page size for LISTs.
const DefaultChunkSize = 500

// ViewOptions holds what the list views share: output, filters, paging, -w.
type ViewOptions struct {
	genericiooptions.IOStreams

	PrintFlags      *genericclioptions.PrintFlags
	NoHeaders       bool
	FlyJSON         bool   // --json: fly's JSON shape
	Color           string // auto, always or never
	Details         bool   // -d
	ChunkSize       int64
	Watch           bool
	selector.Filter // --team, -l, and where a view has them --pipeline, -j, -A

	scope selector.Scope // the Filter, parsed by Complete

	cluster
	Now        func() time.Time
	Location   *time.Location       // START and END of builds
	IsTerminal func(io.Writer) bool // colour decision, per writer
}

// cluster is where a command reads from: the namespace (and whether -n
// named it) and a client, from the kubeconfig unless preset.
type cluster struct {
	Namespace         string
	ExplicitNamespace bool // -n given: workers count pods only there
	Client            kubernetes.Interface
	Dynamic           dynamic.Interface // Tekton's runs, when Tekton is installed
}

// complete fills what is not preset, from the run's clients. Pages of
// thousands of pods decode several times faster from protobuf, hence that
// client.
func (c *cluster) complete(getter genericclioptions.RESTClientGetter) error {
	var err error
	if c.Namespace == "" {
		c.Namespace, c.ExplicitNamespace, err = kernel.ClientsOf(getter).Namespace()
		if err != nil {
			return err
		}
	}
	if c.Dynamic == nil {
		if c.Dynamic, err = kernel.ClientsOf(getter).Dynamic(); err != nil {
			return err
		}
	}
	if c.Client == nil {
		c.Client, err = kernel.ClientsOf(getter).KubeProtobuf()
	}
	return err
}

// NewViewOptions sets every default.
func NewViewOptions(streams genericiooptions.IOStreams) *ViewOptions {
	return &ViewOptions{
		IOStreams:  streams,
		PrintFlags: genericclioptions.NewPrintFlags(""),
		Color:      "auto",
		ChunkSize:  DefaultChunkSize,
	}
}

// AddFlags binds the flags every list view has; the filters that only some
// views have (--pipeline, -j, -A) are added by those (addFilterFlags).
func (o *ViewOptions) AddFlags(cmd *cobra.Command) {
	o.PrintFlags.AddFlags(cmd)
	cmd.Flags().Lookup("output").Usage = "Output format. One of: (json, yaml, name, go-template, go-template-file, template, templatefile, jsonpath, jsonpath-as-json, jsonpath-file, custom-columns, wide)."
	fs := cmd.Flags()
	fs.BoolVar(&o.NoHeaders, "no-headers", o.NoHeaders, "When using the default or custom-column output format, don't print headers")
	fs.BoolVar(&o.FlyJSON, "json", o.FlyJSON, "Print fly's JSON (a JSON array in fly's field names)")
	kernel.AddColorFlag(fs, &o.Color, "Colour rows by state")
	fs.Int64Var(&o.ChunkSize, "chunk-size", o.ChunkSize, "Return large lists in chunks rather than all at once. Pass 0 to disable.")
	fs.BoolVarP(&o.Watch, "watch", "w", o.Watch, "After listing, watch for changes and print the rows that change")
	o.Filter.AddFlags(fs, selector.FlagSelector, selector.FlagTeam)
}

func (o *ViewOptions) addFilterFlags(cmd *cobra.Command) {
	o.Filter.AddFlags(cmd.Flags(), selector.FlagPipeline, selector.FlagJob, selector.FlagAllNamespaces)
}

// Complete parses the filters and fills the namespace, client and clock
// when not preset.
func (o *ViewOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, _ []string) error {
	var err error
	if o.scope, err = o.Filter.Parse(); err != nil {
		return cmderr.Usage(err)
	}
	if err := o.cluster.complete(getter); err != nil {
		return err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.IsTerminal == nil {
		o.IsTerminal = printers.AllowsColorOutput
	}
	return nil
}

// Validate checks the flags; errors name the flag.
func (o *ViewOptions) Validate() error {
	if o.ChunkSize < 0 {
		return errors.New("--chunk-size must be 0 or more")
	}
	if err := kernel.ValidateColor(o.Color); err != nil {
		return err
	}
	if o.FlyJSON && *o.PrintFlags.OutputFormat != "" {
		return errors.New("--json is fly's JSON; -o chooses kubectl's formats: give one of them")
	}
	_, err := o.Filter.Parse()
	return err
}

func (o *ViewOptions) colour() bool { return kernel.UseColor(o.Color, o.IsTerminal, o.Out) }

func (o *ViewOptions) newPrinter(columns []metav1.TableColumnDefinition, namespaced bool) (*printer, error) {
	return newPrinter(o.Out, o.ErrOut, columns, rowContext{now: o.Now(), loc: o.Location, details: o.Details}, printOptions{
		format: *o.PrintFlags.OutputFormat, noHeaders: o.NoHeaders, flyJSON: o.FlyJSON, colour: o.colour(),
		withNamespace: namespaced && o.AllNamespaces, printFlags: o.PrintFlags,
	})
}

// listNamespace is the namespace LISTs go to ("" for all).
func (o *ViewOptions) listNamespace() string {
	if o.AllNamespaces {
		return metav1.NamespaceAll
	}
	return o.Namespace
}

// where completes "No resources found" for namespaced views.
func (o *ViewOptions) where() string {
	if o.AllNamespaces {
		return ""
	}
	return " in " + o.Namespace + " namespace"
}

// eachPage LISTs with Limit and Continue, handing fn one page at a time so
// that only one page of objects is held; it returns the resourceVersion of
// the list, from which a watch continues.
func eachPage[L metav1.ListInterface](ctx context.Context, chunk int64, opts metav1.ListOptions,
	list func(context.Context, metav1.ListOptions) (L, error), fn func(L) error) (string, error) {
	opts.Limit = chunk
	for {
		page, err := list(ctx, opts)
		if err != nil {
			return "", err
		}
		if err := fn(page); err != nil {
			return "", err
		}
		if page.GetContinue() == "" {
			return page.GetResourceVersion(), nil
		}
		opts.Continue = page.GetContinue()
	}
}

// eachPod pages through the pods that sel selects in namespace, keeping
// those that scope matches.
func (o *ViewOptions) eachPod(ctx context.Context, namespace, sel string, scope selector.Scope, fn func([]*corev1.Pod) error) (string, error) {
	return eachPage(ctx, o.ChunkSize, metav1.ListOptions{LabelSelector: sel}, o.Client.CoreV1().Pods(namespace).List,
		func(l *corev1.PodList) error {
			pods := make([]*corev1.Pod, 0, len(l.Items))
			for i := range l.Items {
				if scope.Matches(&l.Items[i]) {
					pods = append(pods, &l.Items[i])
				}
			}
			return fn(pods)
		})
}

// listPods pages through the Concourse pods that the filters match, in the
// namespace of the view, and returns the source that follows them (-w).
func (o *ViewOptions) listPods(ctx context.Context, fn func([]*corev1.Pod) error) (listwatch.Source, error) {
	ns, sel := o.listNamespace(), o.scope.Selector(selector.ManagedPods())
	rv, err := o.eachPod(ctx, ns, sel, o.scope, fn)
	if err != nil {
		return listwatch.Source{}, fmt.Errorf("list pods: %w", err)
	}
	return o.podSource(ns, sel, rv), nil
}

// podSource follows the pods that sel selects in ns (-w) from the LIST
// at rv.
func (o *ViewOptions) podSource(ns, sel, rv string) listwatch.Source {
	pods := o.Client.CoreV1().Pods(ns)
	return listwatch.Source{List: listwatch.Lister(pods.List), Watch: pods.Watch, Options: metav1.ListOptions{LabelSelector: sel},
		Resource: "pods", Namespace: ns, ResourceVersion: rv}
}
