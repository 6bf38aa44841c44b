package selector

import (
	"errors"
	"github.com/kubectl-concourse/kubectl-concourse/selector/labelenc"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

// pod is a fixture: labels by key=value pairs, names encoded as the
// contract says (with the annotation when needed).
type pod struct {
	ns, name    string
	names       map[string]string // contract key → Concourse name
	labels      map[string]string // raw extra labels
	annotations map[string]string
	containers  []corev1.Container
}

func (p pod) build() *corev1.Pod {
	o := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: p.name,
		Labels: map[string]string{LabelManagedBy: ManagedByValue}, Annotations: map[string]string{}}}
	if o.Namespace == "" {
		o.Namespace = "ci"
	}
	for k, v := range p.names {
		o.Labels[k] = labelenc.Encode(v)
		if labelenc.Encode(v) != v {
			o.Annotations[k] = v
		}
	}
	for k, v := range p.labels {
		o.Labels[k] = v
	}
	for k, v := range p.annotations {
		o.Annotations[k] = v
	}
	o.Spec.Containers = p.containers
	if len(o.Spec.Containers) == 0 {
		o.Spec.Containers = []corev1.Container{{Name: "main", WorkingDir: "/tmp/build/abc"}}
	}
	return o
}

func jobPod(name, pipeline, job, build, step, typ string) pod {
	return pod{name: name, names: map[string]string{LabelPipeline: pipeline, LabelJob: job, LabelBuildName: build,
		LabelStepName: step, LabelStepType: typ, LabelAttempt: "1"}}
}

func inNamespace(ns string, p pod) pod {
	p.ns = ns
	return p
}

func objects(pods ...pod) []runtime.Object {
	var objs []runtime.Object
	for _, p := range pods {
		objs = append(objs, p.build())
	}
	return objs
}

type matchSummary struct{ Pod, Container, WorkingDir, Step string }

func summaries(ms []Match) []matchSummary {
	var out []matchSummary
	for _, m := range ms {
		out = append(out, matchSummary{m.Pod.Namespace + "/" + m.Pod.Name, m.Container, m.WorkingDir, m.Step})
	}
	return out
}

func TestResolve(t *testing.T) {
	tekton := pod{name: "tr-pod", names: map[string]string{LabelPipeline: "main", LabelJob: "tk", LabelBuildName: "1"},
		labels:     map[string]string{LabelTektonTaskRun: "tr"},
		containers: []corev1.Container{{Name: "step-clone", WorkingDir: "/workspace"}, {Name: "step-unit", WorkingDir: "/workspace/src"}, {Name: "sidecar-db"}}}
	long := strings.Repeat("パイプライン", 12)
	collide := labelenc.Encode("x y") // a valid pipeline name equal to the encoding of "x y"
	vars := jobPod("vars-dev", "inst", "test", "1", "unit", "task")
	vars.annotations = map[string]string{AnnotationInstanceVars: `{"branch":"dev"}`}
	varsProd := jobPod("vars-prod", "inst", "test", "1", "unit", "task")
	varsProd.annotations = map[string]string{AnnotationInstanceVars: `{"branch":"prod"}`}
	oneOff := func(name, id, step string) pod {
		return pod{name: name, names: map[string]string{LabelBuildID: id, LabelStepName: step, LabelStepType: "task"}}
	}
	check := pod{name: "check-repo", names: map[string]string{LabelPipeline: "main", LabelResource: "repo", LabelStepType: "check"}}
	fixtures := []pod{
		jobPod("t42-unit", "main", "test", "42", "unit", "task"),
		jobPod("t42-build", "main", "test", "42", "build", "task"),
		jobPod("t41-unit", "main", "test", "41", "unit", "task"),
		jobPod("long", long, "test", "1", "unit", "task"),
		jobPod("xy", "x y", "j", "1", "s", "task"),
		jobPod("collide", collide, "j", "1", "s", "task"),
		tekton, vars, varsProd, check,
		oneOff("oneoff-7", "7", "one-off"), oneOff("oneoff-9", "9", "one-off"),
		{name: "legacy", labels: map[string]string{LabelLegacyHandle: "h-123"}},
		inNamespace("other", jobPod("t42-unit", "main", "test", "42", "unit", "task")),
	}
	tests := []struct {
		name   string
		target Target
		want   []matchSummary
	}{
		{"job build step", Target{Job: "main/test", Build: "42", Step: "unit"},
			[]matchSummary{{"ci/t42-unit", "main", "/tmp/build/abc", "unit"}}},
		{"all builds of a job, fly order", Target{Job: "main/test", Step: "unit"},
			[]matchSummary{{"ci/t41-unit", "main", "/tmp/build/abc", "unit"}, {"ci/t42-unit", "main", "/tmp/build/abc", "unit"}}},
		{"all namespaces", Target{Job: "main/test", Build: "42", Step: "unit", AllNamespaces: true},
			[]matchSummary{{"ci/t42-unit", "main", "/tmp/build/abc", "unit"}, {"other/t42-unit", "main", "/tmp/build/abc", "unit"}}},
		{"long non-ascii pipeline", Target{Job: long + "/test"},
			[]matchSummary{{"ci/long", "main", "/tmp/build/abc", "unit"}}},
		{"encoded name", Target{Job: "x y/j"}, []matchSummary{{"ci/xy", "main", "/tmp/build/abc", "s"}}},
		{"valid name equal to an encoding", Target{Job: collide + "/j"}, []matchSummary{{"ci/collide", "main", "/tmp/build/abc", "s"}}},
		{"tekton step", Target{Job: "main/tk", Step: "unit"}, []matchSummary{{"ci/tr-pod", "step-unit", "/workspace/src", "unit"}}},
		{"tekton steps", Target{Job: "main/tk"},
			[]matchSummary{{"ci/tr-pod", "step-clone", "/workspace", "clone"}, {"ci/tr-pod", "step-unit", "/workspace/src", "unit"}}},
		{"instance vars", Target{Job: "inst/branch:prod/test"}, []matchSummary{{"ci/vars-prod", "main", "/tmp/build/abc", "unit"}}},
		{"any instance", Target{Job: "inst/test"},
			[]matchSummary{{"ci/vars-dev", "main", "/tmp/build/abc", "unit"}, {"ci/vars-prod", "main", "/tmp/build/abc", "unit"}}},
		{"check", Target{Check: "main/repo"}, []matchSummary{{"ci/check-repo", "main", "/tmp/build/abc", ""}}},
		{"latest one-off", Target{}, []matchSummary{{"ci/oneoff-9", "main", "/tmp/build/abc", "one-off"}}},
		{"one-off by id", Target{Build: "7"}, []matchSummary{{"ci/oneoff-7", "main", "/tmp/build/abc", "one-off"}}},
		{"legacy handle", Target{Handle: "h-123"}, []matchSummary{{"ci/legacy", "main", "/tmp/build/abc", ""}}},
		{"pod by name", Target{Pod: "tr-pod", Step: "clone"}, []matchSummary{{"ci/tr-pod", "step-clone", "/workspace", "clone"}}},
		{"container override", Target{Pod: "tr-pod", Container: "sidecar-db"}, []matchSummary{{"ci/tr-pod", "sidecar-db", "", "clone"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(objects(fixtures...)...)
			ms, err := Resolve(t.Context(), client.CoreV1(), "ci", tt.target)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got := summaries(ms); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Resolve(%+v) = %+v\nwant %+v", tt.target, got, tt.want)
			}
			var lists, gets int
			for _, a := range client.Actions() {
				switch a.GetVerb() {
				case "list":
					lists++
				case "get":
					gets++
				default:
					t.Errorf("unexpected API call %s", a.GetVerb())
				}
			}
			if tt.target.Handle == "" && lists+gets != 1 {
				t.Errorf("%d LISTs and %d GETs, want one call", lists, gets)
			}
		})
	}
}

func TestResolveNoMatch(t *testing.T) {
	client := fake.NewClientset(objects(
		jobPod("t1", "main", "test", "1", "unit", "task"),
		jobPod("t2", "main", "test", "2", "unit", "task"),
		jobPod("t2b", "main", "test", "2", "build", "task"),
		jobPod("l1", "main", "lint", "1", "lint", "task"),
	)...)
	tests := []struct {
		name   string
		target Target
		want   []string // substrings
	}{
		{"unknown build shows the job's builds", Target{Job: "main/test", Build: "3", Step: "unit"},
			[]string{`no container matched step "unit" of main/test #3 in namespace ci`, "label selector", "main/test build #1: unit (task)", "main/test build #2: build (task), unit (task)"}},
		{"unknown step shows the build's steps", Target{Job: "main/test", Build: "2", Step: "deploy"},
			[]string{`step "deploy" of main/test #2`, "main/test build #2: build (task), unit (task)"}},
		{"unknown job shows the pipeline's jobs", Target{Job: "main/nope"},
			[]string{"main/lint build #1: lint (task)", "main/test build #1"}},
		{"no one-off builds", Target{}, []string{"the most recent one-off build", "main/test build #2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Resolve(t.Context(), client.CoreV1(), "ci", tt.target)
			var miss *NoMatchError
			if !errors.As(err, &miss) {
				t.Fatalf("Resolve error = %v, want a NoMatchError", err)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q\ndoes not contain %q", err, s)
				}
			}
		})
	}
}

func TestStepContainer(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		containers  []string
		want        string
	}{
		{"contract annotation", map[string]string{AnnotationContainer: "step", AnnotationDefaultContainer: "other"}, []string{"a", "step"}, "step"},
		{"kubectl default", map[string]string{AnnotationDefaultContainer: "other"}, []string{"other", "b"}, "other"},
		{"only container", nil, []string{"build"}, "build"},
		{"main", nil, []string{"sidecar", "main"}, "main"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: tt.annotations}}
			for _, c := range tt.containers {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
			}
			if got := StepContainer(p); got != tt.want {
				t.Errorf("StepContainer() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResolveBadContainer(t *testing.T) {
	client := fake.NewClientset(objects(jobPod("t1", "main", "test", "1", "unit", "task"))...)
	_, err := Resolve(t.Context(), client.CoreV1(), "ci", Target{Pod: "t1", Container: "nope"})
	if err == nil || !strings.Contains(err.Error(), "--container nope: pod ci/t1 has containers main") {
		t.Errorf("Resolve error = %v", err)
	}
}
