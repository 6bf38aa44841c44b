package complete

import (
	"bytes"
	"github.com/kubectl-concourse/kubectl-concourse/selector/labelenc"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// longPipeline is stored encoded; completion must offer the original.
const longPipeline = "déploiement continu/prod"

func stepPod(ns, name string, labels map[string]string, vars string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels:      map[string]string{selector.LabelManagedBy: selector.ManagedByValue},
			Annotations: map[string]string{}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}},
	}
	for k, v := range labels {
		labelenc.Put(p.Labels, p.Annotations, k, v)
	}
	if vars != "" {
		p.Annotations[selector.AnnotationInstanceVars] = vars
	}
	return p
}

func fixtures() []runtime.Object {
	build := func(pipeline, job, name, id, step string) map[string]string {
		return map[string]string{selector.LabelTeam: "main", selector.LabelPipeline: pipeline, selector.LabelJob: job,
			selector.LabelBuildName: name, selector.LabelBuildID: id, selector.LabelStepName: step, selector.LabelStepType: "task"}
	}
	return []runtime.Object{
		stepPod("ci", "a", build("main", "unit", "9", "90", "compile"), ""),
		stepPod("ci", "b", build("main", "unit", "10", "100", "test"), ""),
		stepPod("ci", "c", build("main", "lint", "1", "101", "lint"), ""),
		stepPod("ci", "d", build(longPipeline, "ship", "2", "102", "push"), ""),
		stepPod("ci", "e", build("feature", "unit", "1", "103", "test"), `{"branch":"x"}`),
		stepPod("ci", "f", map[string]string{selector.LabelTeam: "main", selector.LabelPipeline: "main",
			selector.LabelStepType: "check", selector.LabelResource: "repo", selector.LabelBuildID: "104"}, ""),
		stepPod("other", "g", build("elsewhere", "unit", "1", "105", "test"), ""),
	}
}

// complete runs cobra's __complete for a command with fly's target flags.
func complete(t *testing.T, args ...string) []string {
	t.Helper()
	client := fake.NewClientset(fixtures()...)
	root := &cobra.Command{Use: "kubectl-concourse"}
	cmd := &cobra.Command{Use: "hijack", Run: func(*cobra.Command, []string) {}}
	for _, f := range []string{"job", "check", "build", "step", "team", "pipeline"} {
		cmd.Flags().String(f, "", "")
	}
	cmd.Flags().BoolP("all-namespaces", "A", false, "")
	Register(cmd, func() (kubernetes.Interface, string, error) { return client, "ci", nil })
	root.AddCommand(cmd)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs(append([]string{cobra.ShellCompRequestCmd, "hijack"}, args...))
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return lines[:len(lines)-1] // the last line is the directive
}

func TestComplete(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"jobs", []string{"--job", ""}, []string{longPipeline + "/ship", `feature/branch:"x"/unit`, "main/lint", "main/unit"}},
		{"jobs by prefix", []string{"--job", "main/"}, []string{"main/lint", "main/unit"}},
		{"checks", []string{"--check", ""}, []string{"main/repo"}},
		{"builds of a job, newest first", []string{"--job", "main/unit", "--build", ""}, []string{"10", "9"}},
		{"build ids without a job", []string{"--build", "10"}, []string{"104", "103", "102", "101", "100"}},
		{"steps of a build", []string{"--job", "main/unit", "--build", "9", "--step", ""}, []string{"compile"}},
		{"steps of a job", []string{"--job", "main/unit", "--step", ""}, []string{"compile", "test"}},
		{"pipelines", []string{"--pipeline", ""}, []string{longPipeline, "feature", "main"}},
		{"every namespace", []string{"-A", "--pipeline", "e"}, []string{"elsewhere"}},
		{"teams", []string{"--team", ""}, []string{"main"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := complete(t, tt.args...)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("complete %v = %q, want %q", tt.args, got, tt.want)
			}
		})
	}
}
