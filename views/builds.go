package views

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/kubectl-concourse/kubectl-concourse/build"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// buildRef identifies a build from its pod's labels.
type buildRef struct {
	namespace, id, team, pipeline, vars, job, name, resource string
	instanceVars                                             selector.InstanceVars
}

func buildRefOf(pod *corev1.Pod) buildRef {
	m := selector.Steps(pod)[0] // every pod has at least its contract container
	return buildRef{
		namespace: pod.Namespace, id: m.BuildID, team: m.Team, pipeline: m.Pipeline,
		vars: m.InstanceVars.String(), job: m.Job, name: m.Build, resource: checkResource(m),
		instanceVars: m.InstanceVars,
	}
}

func checkResource(m selector.Match) string {
	if m.StepType == "check" {
		return m.Resource
	}
	return ""
}

// key groups pods: by global build id when there is one.
func (r buildRef) key() string {
	if r.id != "" {
		return r.namespace + "\x00" + r.id
	}
	return strings.Join([]string{r.namespace, "", r.team, r.pipeline, r.vars, r.job, r.name, r.resource}, "\x00")
}

// buildSet gathers the step pods of builds; pods may come and go (-w).
type buildSet struct {
	builds map[string]*buildEntry
	podKey map[string]string // namespace/pod -> build key
}

type buildEntry struct {
	ref       buildRef
	pods      map[string][]build.Step      // pod name -> its steps
	podLabels map[string]map[string]string // pod name -> its labels, which name its Tekton runs
}

func newBuildSet() *buildSet {
	return &buildSet{builds: map[string]*buildEntry{}, podKey: map[string]string{}}
}

// add records pod (again) and returns the key of its build.
func (s *buildSet) add(pod *corev1.Pod) string {
	ref := buildRefOf(pod)
	key := ref.key()
	s.remove(pod.Namespace, pod.Name)
	e := s.builds[key]
	if e == nil {
		e = &buildEntry{ref: ref, pods: map[string][]build.Step{}, podLabels: map[string]map[string]string{}}
		s.builds[key] = e
	}
	e.pods[pod.Name] = build.Steps(pod)
	e.podLabels[pod.Name] = pod.Labels
	s.podKey[pod.Namespace+"/"+pod.Name] = key
	return key
}

// remove forgets a pod and returns the key of the build it was part of.
func (s *buildSet) remove(namespace, name string) string {
	key, ok := s.podKey[namespace+"/"+name]
	if !ok {
		return ""
	}
	delete(s.podKey, namespace+"/"+name)
	if e := s.builds[key]; e != nil {
		delete(e.pods, name)
		delete(e.podLabels, name)
		if len(e.pods) == 0 {
			delete(s.builds, key)
		}
	}
	return key
}

// items returns the builds newest first, as fly does (by build id, descending).
func (s *buildSet) items(runs tektonRuns) []*Build {
	bs := make([]*Build, 0, len(s.builds))
	for _, e := range s.builds {
		bs = append(bs, e.build(runs))
	}
	slices.SortFunc(bs, compareBuilds)
	return bs
}

func compareBuilds(a, b *Build) int {
	return cmp.Or(selector.CompareNumbered(b.ID, a.ID), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// build summarises the build from its pods and, when Tekton ran it, from
// its PipelineRun or TaskRun, whose conditions are the better record.
func (e *buildEntry) build(runs tektonRuns) *Build {
	r := e.ref
	name := r.id
	if name == "" {
		name = strings.Trim(strings.Join([]string{r.pipeline, cmp.Or(r.job, r.resource), r.name}, "/"), "/")
	}
	steps := build.InOrder(e.pods)
	b := &Build{
		TypeMeta:   typeMeta("Build"),
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.namespace},
		ID:         r.id, Team: r.team, Pipeline: r.pipeline, InstanceVars: r.vars, Job: r.job, BuildName: r.name,
		Resource: r.resource, Status: build.StatusOf(steps), Steps: []string{}, vars: r.instanceVars,
	}
	var start, end time.Time
	done := true
	for i, s := range steps {
		if i == 0 || s.Created.Before(b.CreationTimestamp.Time) {
			b.CreationTimestamp = metav1.NewTime(s.Created)
		}
		if !slices.Contains(b.Steps, s.Name) {
			b.Steps = append(b.Steps, s.Name)
		}
		if !s.Started.IsZero() && (start.IsZero() || s.Started.Before(start)) {
			start = s.Started
		}
		if s.Finished.After(end) {
			end = s.Finished
		}
		done = done && build.Final(s.Status)
	}
	if !start.IsZero() {
		b.Start = &metav1.Time{Time: start}
	}
	if done && !end.IsZero() && build.Final(b.Status) {
		b.End = &metav1.Time{Time: end}
	}
	e.applyTekton(b, runs)
	return b
}

func (e *buildEntry) applyTekton(b *Build, runs tektonRuns) {
	var podLabels []map[string]string
	seen := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(e.podLabels)) {
		l := e.podLabels[name]
		podLabels = append(podLabels, l)
		if tr := l[selector.LabelTektonTaskRun]; tr != "" && !seen[tr] {
			seen[tr] = true
			b.Retries += runs.taskRuns[e.ref.namespace+"/"+tr].Retries
		}
	}
	run, ok := runs.of(e.ref.namespace, podLabels)
	if !ok {
		return
	}
	if run.Status != "" {
		b.Status = run.Status
	}
	if !run.Start.IsZero() {
		b.Start = &metav1.Time{Time: run.Start}
	}
	b.End = nil
	if !run.End.IsZero() && run.Status != "" {
		b.End = &metav1.Time{Time: run.End}
	}
	b.Skipped = run.Skipped
}

var buildColumns = []metav1.TableColumnDefinition{
	{Name: "ID", Type: "string", Format: "name", Description: "label " + selector.LabelBuildID},
	{Name: "Pipeline/Job", Type: "string", Description: "one-off for builds without a pipeline"},
	{Name: "Build", Type: "string", Description: "build name within the job"},
	{Name: "Status", Type: "string", Description: "derived from the step containers"},
	{Name: "Start", Type: "string"},
	{Name: "End", Type: "string"},
	{Name: "Duration", Type: "string"},
	{Name: "Steps", Type: "string"},
	{Name: "Team", Type: "string", Priority: 1},
	{Name: "Retries", Type: "integer", Priority: 1, Description: "earlier attempts of the build's Tekton TaskRuns"},
}

const flyTimeFormat = "2006-01-02@15:04:05-0700"

func (b *Build) row(r rowContext) metav1.TableRow {
	start, end, dur := "n/a", "n/a", "n/a"
	if b.Start != nil {
		start = b.Start.In(r.loc).Format(flyTimeFormat)
		until := r.now
		if b.End != nil {
			until = b.End.Time
			end = b.End.In(r.loc).Format(flyTimeFormat)
		}
		dur = duration.HumanDuration(until.Sub(b.Start.Time))
		if b.End == nil {
			dur += "+"
		}
	}
	return metav1.TableRow{
		Cells: []any{
			orNone(b.ID), b.pipelineJob(), orNone(b.BuildName), b.Status, start, end, dur,
			orNone(b.stepList()), orNone(b.Team), int64(b.Retries),
		},
		Object: runtime.RawExtension{Object: b},
	}
}

// stepList is the STEPS column: the steps that ran, then those Tekton
// skipped.
func (b *Build) stepList() string {
	steps := slices.Clone(b.Steps)
	for _, s := range b.Skipped {
		steps = append(steps, s+" (skipped)")
	}
	return strings.Join(steps, ",")
}

func (b *Build) pipelineJob() string {
	if b.Pipeline == "" {
		return "one-off"
	}
	p := b.Pipeline
	if b.InstanceVars != "" {
		p += "/" + b.InstanceVars
	}
	if b.Job == "" && b.Resource == "" {
		return p
	}
	return p + "/" + cmp.Or(b.Job, b.Resource)
}

func (b *Build) colour() string {
	return build.StatusColour(b.Status)
}

// flyBuild is atc.Build's JSON (atc/build.go:18-36), for --json: the
// fields fly always writes, and those it writes when set.
type flyBuild struct {
	ID                   int                   `json:"id"`
	TeamName             string                `json:"team_name"`
	Name                 string                `json:"name"`
	Status               string                `json:"status"`
	APIURL               string                `json:"api_url"`
	JobName              string                `json:"job_name,omitempty"`
	ResourceName         string                `json:"resource_name,omitempty"`
	PipelineName         string                `json:"pipeline_name,omitempty"`
	PipelineInstanceVars selector.InstanceVars `json:"pipeline_instance_vars,omitempty"`
	StartTime            int64                 `json:"start_time,omitempty"`
	EndTime              int64                 `json:"end_time,omitempty"`
}

// flyID is a build id as fly's JSON has it, a number (0 when there is none).
func flyID(id string) int {
	n, _ := strconv.Atoi(id)
	return n
}

func (b *Build) fly() any {
	f := flyBuild{
		ID: flyID(b.ID), TeamName: b.Team, Name: b.BuildName, Status: b.Status, JobName: b.Job,
		ResourceName: b.Resource, PipelineName: b.Pipeline, PipelineInstanceVars: b.vars,
	}
	if f.ID != 0 {
		// The ATC's own URL of the build (atc/api/present/build.go).
		f.APIURL = "/api/v1/builds/" + b.ID
	}
	if b.Start != nil {
		f.StartTime = b.Start.Unix()
	}
	if b.End != nil {
		f.EndTime = b.End.Unix()
	}
	return f
}
