package views

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// DefaultChunkSize is kubectl's page size for LISTs.
const DefaultChunkSize = 500

// ViewOptions holds what the list views share: output, filters, paging, -w.
type ViewOptions struct {
	genericiooptions.IOStreams

	PrintFlags    *genericclioptions.PrintFlags
	NoHeaders     bool
	FlyJSON       bool   // --json: fly's JSON shape
	Color         string // auto, always or never
	Details       bool   // -d
	Team          string
	Pipeline      string
	Job           string
	LabelSelector string
	AllNamespaces bool
	ChunkSize     int64
	Watch         bool

	// Filled by Complete: the filters by label key, and -j's instance vars.
	filterValues map[string]string
	vars         selector.InstanceVars

	Namespace         string
	ExplicitNamespace bool // -n given: workers count pods only there
	Client            kubernetes.Interface
	Now               func() time.Time
	Location          *time.Location       // START and END of builds
	IsTerminal        func(io.Writer) bool // colour decision, per writer
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

// AddFlags binds the flags every list view has; filters are added by the
// views they make sense for (addFilterFlags).
func (o *ViewOptions) AddFlags(cmd *cobra.Command) {
	o.PrintFlags.AddFlags(cmd)
	cmd.Flags().Lookup("output").Usage = "Output format. One of: (json, yaml, name, go-template, go-template-file, template, templatefile, jsonpath, jsonpath-as-json, jsonpath-file, custom-columns, wide)."
	fs := cmd.Flags()
	fs.BoolVar(&o.NoHeaders, "no-headers", o.NoHeaders, "When using the default or custom-column output format, don't print headers")
	fs.BoolVar(&o.FlyJSON, "json", o.FlyJSON, "Print fly's JSON (a JSON array in fly's field names)")
	fs.StringVar(&o.Color, "color", o.Color, "Colour rows by state: auto (only on a terminal), always or never")
	fs.Int64Var(&o.ChunkSize, "chunk-size", o.ChunkSize, "Return large lists in chunks rather than all at once. Pass 0 to disable.")
	fs.BoolVarP(&o.Watch, "watch", "w", o.Watch, "After listing, watch for changes and print the rows that change")
	fs.StringVarP(&o.LabelSelector, "selector", "l", o.LabelSelector, "Extra label selector (e.g. -l key1=value1,key2=value2)")
	fs.StringVar(&o.Team, "team", o.Team, "Only this team's objects")
}

func (o *ViewOptions) addFilterFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&o.Pipeline, "pipeline", o.Pipeline, "Only this pipeline's objects")
	fs.StringVarP(&o.Job, "job", "j", o.Job, "Only this job's objects: JOB, or PIPELINE/JOB as fly's -j")
	fs.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", o.AllNamespaces, "List across all namespaces")
}

// Complete reads the filters and fills the namespace, client and clock
// when not preset.
func (o *ViewOptions) Complete(getter genericclioptions.RESTClientGetter) error {
	o.filterValues = map[string]string{}
	pipeline, job := o.Pipeline, o.Job
	if strings.Contains(job, "/") {
		p, vars, j, err := selector.ParseJob(job)
		if err != nil {
			return fmt.Errorf("--job: %w", err)
		}
		if pipeline != "" && pipeline != p {
			return fmt.Errorf("--job %s is not in --pipeline %s", job, pipeline)
		}
		pipeline, job, o.vars = p, j, vars
	}
	for key, v := range map[string]string{selector.LabelTeam: o.Team, selector.LabelPipeline: pipeline, selector.LabelJob: job} {
		if v != "" {
			o.filterValues[key] = v
		}
	}
	var err error
	if o.Namespace == "" {
		o.Namespace, o.ExplicitNamespace, err = getter.ToRawKubeConfigLoader().Namespace()
		if err != nil {
			return err
		}
	}
	if o.Client == nil {
		config, err := getter.ToRESTConfig()
		if err != nil {
			return err
		}
		// Pages of thousands of pods decode several times faster from protobuf.
		config.ContentType = runtime.ContentTypeProtobuf
		config.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
		if o.Client, err = kubernetes.NewForConfig(config); err != nil {
			return err
		}
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
	if !slices.Contains([]string{"auto", "always", "never"}, o.Color) {
		return fmt.Errorf("--color %q: want auto, always or never", o.Color)
	}
	if o.FlyJSON && *o.PrintFlags.OutputFormat != "" {
		return errors.New("--json is fly's JSON; -o chooses kubectl's formats: give one of them")
	}
	if o.LabelSelector != "" {
		if _, err := labels.Parse(o.LabelSelector); err != nil {
			return fmt.Errorf("-l/--selector: %w", err)
		}
	}
	return nil
}

func (o *ViewOptions) colour() bool {
	switch o.Color {
	case "always":
		return true
	case "never":
		return false
	}
	return o.IsTerminal(o.Out)
}

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

// selectorFor builds the LIST's label selector: base requirements, the
// filters (encoded) and -l. matches then checks the annotations that tell
// apart names that encode alike.
func (o *ViewOptions) selectorFor(base ...labels.Requirement) string {
	sel := labels.NewSelector().Add(base...)
	for key, v := range o.filterValues {
		sel = sel.Add(requirement(key, selection.Equals, selector.Encode(v)))
	}
	if o.LabelSelector != "" {
		extra, _ := labels.Parse(o.LabelSelector) // checked by Validate
		reqs, _ := extra.Requirements()
		sel = sel.Add(reqs...)
	}
	return sel.String()
}

func (o *ViewOptions) matches(m metav1.Object) bool {
	for key, v := range o.filterValues {
		if !selector.HasValue(m.GetLabels(), m.GetAnnotations(), key, v) {
			return false
		}
	}
	if o.vars != nil {
		vars, err := selector.ParseInstanceVarsJSON(m.GetAnnotations()[selector.AnnotationInstanceVars])
		return err == nil && vars.Equal(o.vars)
	}
	return true
}

// requirement builds a requirement from constant keys and encoded values,
// which are valid by construction.
func requirement(key string, op selection.Operator, values ...string) labels.Requirement {
	r, err := labels.NewRequirement(key, op, values)
	if err != nil {
		panic(fmt.Sprintf("views: requirement %s: %v", key, err))
	}
	return *r
}

// concoursePods selects the pods of the contract.
func concoursePods() labels.Requirement {
	return requirement(selector.LabelManagedBy, selection.Equals, selector.ManagedByValue)
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

// eachPod pages through the pods selected by sel in namespace, keeping those
// that match the filters.
func (o *ViewOptions) eachPod(ctx context.Context, namespace, sel string, fn func([]*corev1.Pod) error) (string, error) {
	return eachPage(ctx, o.ChunkSize, metav1.ListOptions{LabelSelector: sel}, o.Client.CoreV1().Pods(namespace).List,
		func(l *corev1.PodList) error {
			pods := make([]*corev1.Pod, 0, len(l.Items))
			for i := range l.Items {
				if o.matches(&l.Items[i]) {
					pods = append(pods, &l.Items[i])
				}
			}
			return fn(pods)
		})
}
