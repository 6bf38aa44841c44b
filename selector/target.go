package selector

import (
	"errors"
	"fmt"
	"github.com/kubectl-concourse/kubectl-concourse/selector/labelenc"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// Target is fly's way of naming a step container, plus Kubernetes ways round it:
// -j PIPELINE/JOB -b BUILD -s STEP --step-type TYPE -a ATTEMPT, -c PIPELINE/RESOURCE,
// -u URL, --handle, --team, -l SELECTOR, --pod NAME --container NAME and -A.
// The fields hold the flags as typed; Validate checks them and Resolve uses them.
type Target struct {
	Job           string // -j PIPELINE/JOB or PIPELINE/VARS/JOB
	Check         string // -c PIPELINE/RESOURCE
	URL           string // -u, a Concourse web URL
	Build         string // -b, the build name with a job, else a global build id
	Step          string // -s
	StepType      string // --step-type
	Attempt       string // -a, e.g. 1 or 1.1.2 (fly's 1,1,2 is accepted)
	Handle        string // --handle
	Team          string // --team
	LabelSelector string // -l, extra requirements
	Pod           string // --pod, bypasses the labels
	Container     string // --container, overrides the container choice
	AllNamespaces bool   // -A
}

// AddFlags binds the target flags named (every one when none are) to t.
// Shorthands follow fly (-c is the check container, not kubectl's
// container; -s is the step, not --server).
func (t *Target) AddFlags(fs *pflag.FlagSet, names ...string) {
	addSome(fs, t.flags(), names)
}

// AddFlagsExcept is AddFlags with the shorthands of the flags in
// longOnly left out: for a command whose own flag has that letter (logs'
// -a is --all-attempts, not --attempt).
func (t *Target) AddFlagsExcept(fs *pflag.FlagSet, longOnly []string, names ...string) {
	all := t.flags()
	for _, name := range longOnly {
		all.Lookup(name).Shorthand = ""
	}
	addSome(fs, all, names)
}

func (t *Target) flags() *pflag.FlagSet {
	all := pflag.NewFlagSet("target", pflag.ContinueOnError)
	all.StringVarP(&t.Job, "job", "j", t.Job, "Name of a job, as PIPELINE/JOB or PIPELINE/KEY:VALUE,.../JOB for an instanced pipeline")
	all.StringVarP(&t.Check, "check", "c", t.Check, "Name of a resource's checking container, as PIPELINE/RESOURCE")
	all.StringVarP(&t.URL, "url", "u", t.URL, "URL for the build, job, or check container, as copied from the Concourse web UI")
	all.StringVarP(&t.Build, "build", "b", t.Build, "Build number within the job, or global build ID")
	all.StringVarP(&t.Step, "step", "s", t.Step, "Name of step (e.g. build, unit, resource name)")
	all.StringVar(&t.StepType, "step-type", t.StepType, "Type of step (get, put, task, check or run)")
	all.StringVarP(&t.Attempt, "attempt", "a", t.Attempt, "Attempt number of step, e.g. 1 or 1.1.2")
	all.StringVar(&t.Handle, "handle", t.Handle, "Handle id of the container")
	all.StringVar(&t.Team, "team", t.Team, "Name of the team to which the container belongs")
	all.StringVarP(&t.LabelSelector, "selector", "l", t.LabelSelector, "Extra label selector the step's pod must match (e.g. -l key1=value1,key2=value2)")
	all.StringVar(&t.Pod, "pod", t.Pod, "Name of the pod, bypassing the Concourse labels")
	all.StringVar(&t.Container, "container", t.Container, "Name of the container within the pod, instead of the step's container")
	all.BoolVarP(&t.AllNamespaces, "all-namespaces", "A", t.AllNamespaces, "Look for the step in every namespace")
	return all
}

// Validate checks the flags without calling the API; errors name the flag.
func (t Target) Validate() error {
	_, err := t.query()
	return err
}

// Access is what Resolve asks the API for, to name the permission a refused
// lookup lacked: the namespace ("" with -A, every namespace) and the verb
// on pods (get for --pod, else list).
func (t Target) Access(namespace string) (ns, verb string) {
	ns, verb = namespace, "list"
	if t.AllNamespaces {
		ns = ""
	}
	if t.Pod != "" {
		verb = "get" // --pod is one GET
	}
	return ns, verb
}

// String describes the target in fly's words, for messages.
func (t Target) String() string {
	q, err := t.query()
	if err != nil {
		return "invalid target"
	}
	return q.String()
}

// query is a Target parsed: names as given (not yet encoded).
type query struct {
	team, pipeline, job, build, buildID string
	step, stepType, attempt             string
	resource, handle                    string
	vars                                InstanceVars // nil: any instance
	oneOff                              bool         // the most recent one-off build
	extra                               labels.Requirements
	pod, container                      string
	allNamespaces                       bool
}

var stepTypes = []string{"get", "put", "task", "check", "run"}

func (t Target) query() (query, error) {
	q := query{
		team: t.Team, step: t.Step, stepType: t.StepType, handle: t.Handle,
		pod: t.Pod, container: t.Container, allNamespaces: t.AllNamespaces,
	}
	if t.Job != "" && t.Check != "" {
		return query{}, errors.New("-j/--job and -c/--check name different containers; give one")
	}
	if t.URL != "" {
		w, err := ParseWebURL(t.URL)
		if err != nil {
			return query{}, err
		}
		q.pipeline, q.job, q.resource, q.vars = w.Pipeline, w.Job, w.Resource, w.InstanceVars
		q.build, q.buildID = w.Build, w.BuildID
		if q.team == "" {
			q.team = w.Team
		}
	}
	// Explicit flags override what the URL said, as in fly.
	if t.Job != "" {
		p, vars, j, err := ParseJob(t.Job)
		if err != nil {
			return query{}, fmt.Errorf("-j/--job: %w", err)
		}
		q.pipeline, q.vars, q.job, q.resource = p, vars, j, ""
	}
	if t.Check != "" {
		p, vars, r, err := ParseJob(t.Check)
		if err != nil {
			return query{}, fmt.Errorf("-c/--check: %w", err)
		}
		q.pipeline, q.vars, q.resource, q.job = p, vars, r, ""
		q.build, q.buildID = "", ""
	}
	if t.Build != "" {
		if q.resource != "" {
			return query{}, errors.New("-b/--build: a check container belongs to no build")
		}
		if q.job != "" {
			q.build, q.buildID = t.Build, ""
		} else {
			if _, err := strconv.ParseUint(t.Build, 10, 64); err != nil {
				return query{}, fmt.Errorf("-b/--build %q: without -j a build is a global build id, a number", t.Build)
			}
			q.build, q.buildID = "", t.Build
		}
	}
	if q.resource != "" {
		if q.stepType != "" && q.stepType != "check" {
			return query{}, fmt.Errorf("--step-type %q: a check container's type is check", q.stepType)
		}
		q.stepType = "check"
	}
	if q.stepType != "" && !slices.Contains(stepTypes, q.stepType) {
		return query{}, fmt.Errorf("--step-type %q: want one of %s", q.stepType, strings.Join(stepTypes, ", "))
	}
	if t.Attempt != "" {
		q.attempt = strings.ReplaceAll(t.Attempt, ",", ".")
		for _, n := range strings.Split(q.attempt, ".") {
			if _, err := strconv.ParseUint(n, 10, 32); err != nil {
				return query{}, fmt.Errorf("-a/--attempt %q: want a number or numbers joined by dots (1.1.2)", t.Attempt)
			}
		}
	}
	if t.LabelSelector != "" {
		sel, err := labels.Parse(t.LabelSelector)
		if err != nil {
			return query{}, fmt.Errorf("-l/--selector: %w", err)
		}
		q.extra, _ = sel.Requirements()
	}
	byName := q.pipeline != "" || q.buildID != "" || q.team != "" || len(q.extra) > 0
	switch {
	case q.pod != "":
		if byName || q.handle != "" || q.stepType != "" || q.attempt != "" || t.URL != "" {
			return query{}, errors.New("--pod names the pod: drop -j, -c, -u, -b, --handle, --team, --step-type, -a and -l")
		}
		if q.allNamespaces {
			return query{}, errors.New("--pod needs one namespace: drop -A or use -n")
		}
	case q.handle != "":
		if byName || q.step != "" || q.stepType != "" || q.attempt != "" || t.URL != "" {
			return query{}, errors.New("--handle names the container: drop -j, -c, -u, -b, -s, --step-type, -a, --team and -l")
		}
	default:
		q.oneOff = q.pipeline == "" && q.buildID == "" && q.resource == ""
	}
	return q, nil
}

// ParseJob splits fly's PIPELINE/JOB (or PIPELINE/RESOURCE) on the last '/';
// a middle part holds instance vars: PIPELINE/k:v,k2:v2/JOB.
func ParseJob(s string) (pipeline string, vars InstanceVars, name string, err error) {
	i := strings.LastIndexByte(s, '/')
	if i <= 0 || i == len(s)-1 {
		return "", nil, "", fmt.Errorf("%q: want PIPELINE/NAME or PIPELINE/KEY:VALUE/NAME", s)
	}
	pipeline, name = s[:i], s[i+1:]
	if p, rawVars, ok := strings.Cut(pipeline, "/"); ok {
		if p == "" {
			return "", nil, "", fmt.Errorf("%q: empty pipeline name", s)
		}
		if vars, err = ParseInstanceVars(rawVars); err != nil {
			return "", nil, "", fmt.Errorf("%q: %w", s, err)
		}
		pipeline = p
	}
	return pipeline, vars, name, nil
}

// selector builds the label selector of the one LIST that resolves q.
// Names are encoded; the step name is not part of it (Tekton pods hold
// several steps) and the instance vars live in an annotation: podMatches
// checks those and the annotations that tell encoded names apart.
func (q query) selector() labels.Selector {
	sel := labels.NewSelector()
	add := func(key string, op selection.Operator, values ...string) {
		sel = sel.Add(requirement(key, op, values...))
	}
	eq := func(key, name string) {
		if name != "" {
			add(key, selection.Equals, labelenc.Encode(name))
		}
	}
	if q.handle != "" {
		eq(LabelHandle, q.handle)
		return sel
	}
	sel = sel.Add(ManagedPods())
	eq(LabelTeam, q.team)
	eq(LabelPipeline, q.pipeline)
	eq(LabelJob, q.job)
	eq(LabelBuildName, q.build)
	eq(LabelBuildID, q.buildID)
	eq(LabelResource, q.resource)
	eq(LabelStepType, q.stepType)
	eq(LabelAttempt, q.attempt)
	if q.oneOff {
		// fly's "most recent one-off build": no job, and not a check.
		add(LabelJob, selection.DoesNotExist)
		if q.stepType == "" {
			add(LabelStepType, selection.NotEquals, "check")
		}
	}
	return sel.Add(q.extra...)
}

// legacyHandleSelector finds pods that carry only the older handle label.
func (q query) legacyHandleSelector() labels.Selector {
	return labels.NewSelector().Add(requirement(LabelLegacyHandle, selection.Equals, labelenc.Encode(q.handle)))
}

// String says what was asked for, in fly's words: `step "unit" of main/test #3`.
func (q query) String() string {
	var parts []string
	if q.step != "" {
		parts = append(parts, fmt.Sprintf("step %q", q.step))
	}
	if q.stepType != "" && q.resource == "" {
		parts = append(parts, "type "+q.stepType)
	}
	if q.attempt != "" {
		parts = append(parts, "attempt "+q.attempt)
	}
	var of string
	switch {
	case q.pod != "":
		of = "pod " + q.pod
	case q.handle != "":
		of = "handle " + q.handle
	case q.resource != "":
		of = "check of " + q.pipelineRef() + "/" + q.resource
	case q.job != "":
		of = q.pipelineRef() + "/" + q.job
		if q.build != "" {
			of += " #" + q.build
		}
	case q.buildID != "":
		of = "build id " + q.buildID
	case q.pipeline != "":
		of = "pipeline " + q.pipelineRef()
	default:
		of = "the most recent one-off build"
	}
	if q.team != "" {
		of += " (team " + q.team + ")"
	}
	if len(q.extra) > 0 {
		of += " matching " + labels.NewSelector().Add(q.extra...).String()
	}
	if len(parts) == 0 {
		return of
	}
	return strings.Join(parts, ", ") + " of " + of
}

func (q query) pipelineRef() string {
	if len(q.vars) == 0 {
		return q.pipeline
	}
	return q.pipeline + "/" + q.vars.String()
}
