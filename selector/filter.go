package selector

import (
	"cmp"
	"context"
	"fmt"
	"github.com/kubectl-concourse/kubectl-concourse/selector/labelenc"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// Filter narrows a list of the contract's objects (pods, PVCs, nodes) to a
// team, pipeline or job, plus extra labels: the list views' flags, where
// Target names one build or container. The fields hold the flags as typed;
// Parse checks them.
type Filter struct {
	Team          string // --team
	Pipeline      string // --pipeline (-p where a command gives it)
	Job           string // -j: JOB, or PIPELINE/JOB as fly's -j, with instance vars
	LabelSelector string // -l
	AllNamespaces bool   // -A
}

// Filter flag names, for AddFlags.
const (
	FlagTeam          = "team"
	FlagPipeline      = "pipeline"
	FlagJob           = "job"
	FlagSelector      = "selector"
	FlagAllNamespaces = "all-namespaces"
)

// AddFlags binds the filter flags named (all of them when none are) to f.
func (f *Filter) AddFlags(fs *pflag.FlagSet, names ...string) {
	all := pflag.NewFlagSet("filter", pflag.ContinueOnError)
	all.StringVar(&f.Team, FlagTeam, f.Team, "Only this team's objects")
	all.StringVarP(&f.Pipeline, FlagPipeline, "p", f.Pipeline, "Only this pipeline's objects")
	all.StringVarP(&f.Job, FlagJob, "j", f.Job, "Only this job's objects: JOB, or PIPELINE/JOB as fly's -j")
	all.StringVarP(&f.LabelSelector, FlagSelector, "l", f.LabelSelector, "Extra label selector (e.g. -l key1=value1,key2=value2)")
	all.BoolVarP(&f.AllNamespaces, FlagAllNamespaces, "A", f.AllNamespaces, "List across all namespaces")
	addSome(fs, all, names)
}

// addSome copies the flags of all that names lists (every one when names is
// empty) to fs, in the order of names.
func addSome(fs, all *pflag.FlagSet, names []string) {
	if len(names) == 0 {
		all.VisitAll(func(fl *pflag.Flag) { fs.AddFlag(fl) })
		return
	}
	for _, name := range names {
		fl := all.Lookup(name)
		if fl == nil {
			panic("selector: no flag --" + name)
		}
		fs.AddFlag(fl)
	}
}

// Scope is a Filter parsed: what an object's labels and annotations must
// say. The zero Scope matches every object.
type Scope struct {
	names map[string]string // label key -> name, not yet encoded
	vars  InstanceVars      // nil: any instance
	extra labels.Requirements
}

// Parse checks the flags without calling the API; errors name the flag.
func (f Filter) Parse() (Scope, error) {
	s := Scope{names: map[string]string{}}
	pipeline, job := f.Pipeline, f.Job
	if strings.Contains(job, "/") {
		p, vars, j, err := ParseJob(job)
		if err != nil {
			return Scope{}, fmt.Errorf("-j/--job: %w", err)
		}
		if pipeline != "" && pipeline != p {
			return Scope{}, fmt.Errorf("-j/--job %s is not in --pipeline %s", job, pipeline)
		}
		pipeline, job, s.vars = p, j, vars
	}
	for key, name := range map[string]string{LabelTeam: f.Team, LabelPipeline: pipeline, LabelJob: job} {
		if name != "" {
			s.names[key] = name
		}
	}
	if f.LabelSelector != "" {
		sel, err := labels.Parse(f.LabelSelector)
		if err != nil {
			return Scope{}, fmt.Errorf("-l/--selector: %w", err)
		}
		s.extra, _ = sel.Requirements()
	}
	return s, nil
}

// Names reports whether the scope names a team, pipeline or job (not only
// labels), and what it names in fly's words: `pipeline "main"`, `job
// "main/unit"`.
func (s Scope) Names() (string, bool) {
	p, j := s.names[LabelPipeline], s.names[LabelJob]
	if len(s.vars) > 0 {
		p += "/" + s.vars.String()
	}
	switch {
	case j != "" && p != "":
		return fmt.Sprintf("job %q", p+"/"+j), true
	case j != "":
		return fmt.Sprintf("job %q", j), true
	case p != "":
		return fmt.Sprintf("pipeline %q", p), true
	case s.names[LabelTeam] != "":
		return fmt.Sprintf("team %q", s.names[LabelTeam]), true
	}
	return "", false
}

// Selector is the label selector of the LIST: base, the scope's names
// (encoded) and -l. Matches then checks the annotations that tell apart
// names that encode alike.
func (s Scope) Selector(base ...labels.Requirement) string {
	sel := labels.NewSelector().Add(base...)
	for key, name := range s.names {
		sel = sel.Add(requirement(key, selection.Equals, labelenc.Encode(name)))
	}
	return sel.Add(s.extra...).String()
}

// Matches checks what the label selector cannot: that encoded labels stand
// for the names asked for, and the instance vars.
func (s Scope) Matches(obj metav1.Object) bool {
	l, a := obj.GetLabels(), obj.GetAnnotations()
	for key, name := range s.names {
		if !labelenc.HasValue(l, a, key, name) {
			return false
		}
	}
	return s.vars == nil || varsMatch(a, s.vars)
}

// varsMatch reports whether the instance-vars annotation holds exactly want.
func varsMatch(annotations map[string]string, want InstanceVars) bool {
	raw := annotations[AnnotationInstanceVars]
	if raw == "" {
		return want.Equal(nil)
	}
	vars, err := ParseInstanceVarsJSON(raw)
	return err == nil && vars.Equal(want)
}

// requirement builds a requirement from the contract's keys and encoded
// values, which are valid by construction.
func requirement(key string, op selection.Operator, values ...string) labels.Requirement {
	r, err := labels.NewRequirement(key, op, values)
	if err != nil {
		panic(fmt.Sprintf("selector: requirement %s: %v", key, err))
	}
	return *r
}

// ManagedPods selects the pods of the contract: those Concourse manages.
func ManagedPods() labels.Requirement {
	return requirement(LabelManagedBy, selection.Equals, ManagedByValue)
}

// MarkedWorkers selects the nodes labelled as Concourse workers.
func MarkedWorkers() labels.Requirement {
	return requirement(LabelWorker, selection.Equals, "true")
}

// Volumes selects the PVCs of the contract: those with a volume type.
func Volumes() labels.Requirement {
	return requirement(LabelVolumeType, selection.Exists)
}

// VolumesOfType selects the PVCs of one volume type (task-cache, resource...).
func VolumesOfType(volumeType string) labels.Requirement {
	return requirement(LabelVolumeType, selection.Equals, volumeType)
}

// Also returns the scope narrowed to objects whose key stands for name
// (encoded in the label, whole in the annotation when needed).
func (s Scope) Also(key, name string) Scope {
	names := maps.Clone(s.names)
	if names == nil {
		names = map[string]string{}
	}
	names[key] = name
	s.names = names
	return s
}

// WithInstanceVars returns the scope narrowed to one pipeline instance.
func (s Scope) WithInstanceVars(vars InstanceVars) Scope {
	s.vars = vars
	return s
}

// WorkerSelector is the node selector of the contract: the nodes labelled
// as workers when any node is, else every node. It costs one LIST of at
// most one node.
func WorkerSelector(ctx context.Context, nodes corev1client.NodeInterface) (labels.Selector, error) {
	marked := labels.NewSelector().Add(MarkedWorkers())
	probe, err := nodes.List(ctx, metav1.ListOptions{LabelSelector: marked.String(), Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("list worker nodes: %w", err)
	}
	if len(probe.Items) > 0 {
		return marked, nil
	}
	return labels.Everything(), nil
}

// BuildSelector names exactly the pods of m's build: by its global build id
// when it has one, else by team, pipeline, job and build name.
func BuildSelector(m Match) string {
	sel := labels.NewSelector().Add(ManagedPods())
	eq := func(key, name string) {
		if name != "" {
			sel = sel.Add(requirement(key, selection.Equals, labelenc.Encode(name)))
		}
	}
	if m.BuildID != "" {
		eq(LabelBuildID, m.BuildID)
	} else {
		eq(LabelTeam, m.Team)
		eq(LabelPipeline, m.Pipeline)
		eq(LabelJob, m.Job)
		eq(LabelBuildName, m.Build)
	}
	return sel.String()
}

// LatestBuild is the match of the most recent build among ms (not empty):
// the highest build id, else build name, else the newest pod; what fly
// takes for a job's build when -b is not given.
func LatestBuild(ms []Match) Match {
	return slices.MaxFunc(ms, func(a, b Match) int {
		return cmp.Or(CompareNumbered(a.BuildID, b.BuildID), CompareNumbered(a.Build, b.Build),
			a.Pod.CreationTimestamp.Compare(b.Pod.CreationTimestamp.Time))
	})
}

// SameBuild says whether two matches are steps of one build.
func SameBuild(a, b Match) bool { return BuildSelector(a) == BuildSelector(b) }
