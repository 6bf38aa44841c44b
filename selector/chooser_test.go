package selector

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func match(pod, ns string, m Match) Match {
	m.Pod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns}}
	if m.Container == "" {
		m.Container = "main"
	}
	return m
}

// The candidates of fly's own chooser test (v7.14.3).
var flyCandidates = []Match{
	match("check", "ci", Match{Pipeline: "p", Resource: "banana", StepType: "check"}),
	match("in", "ci", Match{Pipeline: "p", Job: "j", Build: "2", Step: "some-input", StepType: "get", Attempt: "1.1.1"}),
	match("out", "ci", Match{Pipeline: "p", Job: "j", Build: "2", Step: "some-output", StepType: "put", Attempt: "1.1.2"}),
	match("task", "ci", Match{Pipeline: "p", Job: "j", Build: "2", Step: "some-output", StepType: "task", Attempt: "1"}),
}

func TestChooseInteractive(t *testing.T) {
	tests := []struct {
		name, input string
		want        string // pod chosen, "" for none
		wantErr     error
		wantOut     string
	}{
		{"pick", "2\n", "in", nil, `1. resource: banana, type: check
2. build #2, step: some-input, type: get, attempt: 1.1.1
3. build #2, step: some-output, type: put, attempt: 1.1.2
4. build #2, step: some-output, type: task, attempt: 1
choose a container: `},
		{"retry after nonsense", "x\n9\n4", "task", nil, `choose a container: invalid selection "x": want a number from 1 to 4
choose a container: invalid selection "9": want a number from 1 to 4
choose a container: `},
		{"dismissed", "", "", ErrNoChoice, "choose a container: \n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			got, err := Choose(flyCandidates, strings.NewReader(tt.input), &out, true)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Choose error = %v, want %v", err, tt.wantErr)
			}
			if tt.want != "" && (got == nil || got.Pod.Name != tt.want) {
				t.Errorf("Choose = %+v, want pod %s", got, tt.want)
			}
			if !strings.HasSuffix(out.String(), tt.wantOut) {
				t.Errorf("output:\n%s\nwant suffix:\n%s", out.String(), tt.wantOut)
			}
		})
	}
}

func TestChooseOneAndNone(t *testing.T) {
	got, err := Choose(flyCandidates[1:2], nil, nil, false)
	if err != nil || got.Pod.Name != "in" {
		t.Errorf("Choose(one) = %v, %v", got, err)
	}
	var miss *NoMatchError
	if _, err := Choose(nil, nil, nil, true); !errors.As(err, &miss) {
		t.Errorf("Choose(none) error = %v, want NoMatchError", err)
	}
}

func TestAmbiguousError(t *testing.T) {
	same := []Match{
		match("a", "ns1", Match{Pipeline: "p", Job: "j", Build: "1", Step: "s", StepType: "task"}),
		match("b", "ns2", Match{Pipeline: "p", Job: "j", Build: "1", Step: "s", StepType: "task"}),
	}
	tests := []struct {
		name string
		ms   []Match
		want string
	}{
		{"fly flags", flyCandidates, `4 containers match; pick one with:
  resource: banana, type: check:  -c p/banana
  build #2, step: some-input, type: get, attempt: 1.1.1:  -j p/j -b 2 -s some-input --step-type get -a 1.1.1
  build #2, step: some-output, type: put, attempt: 1.1.2:  -j p/j -b 2 -s some-output --step-type put -a 1.1.2
  build #2, step: some-output, type: task, attempt: 1:  -j p/j -b 2 -s some-output --step-type task -a 1`},
		{"pods where flags tie", same, `2 containers match; pick one with:
  build #1, step: s, type: task:  -n ns1 --pod a --container main
  build #1, step: s, type: task:  -n ns2 --pod b --container main`},
		{"quoted and instance vars", []Match{
			match("q", "ci", Match{Pipeline: "my app", InstanceVars: InstanceVars{"branch": "it's"}, Job: "j", Build: "1", Step: "s"}),
			match("r", "ci", Match{BuildID: "77", Step: "one-off"}),
		}, `2 containers match; pick one with:
  build #1, step: s:  -j 'my app/branch:"it'\''s"/j' -b 1 -s s
  build id: 77, step: one-off:  -b 77 -s one-off`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Choose(tt.ms, nil, nil, false)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

func TestChooserLabelsTellApart(t *testing.T) {
	ms := []Match{
		match("a", "ci", Match{Pipeline: "p", Job: "unit", Build: "1", Step: "s"}),
		match("b", "ci", Match{Pipeline: "p", Job: "lint", Build: "1", Step: "s"}),
	}
	var out bytes.Buffer
	if _, err := Choose(ms, strings.NewReader("1\n"), &out, true); err != nil {
		t.Fatal(err)
	}
	want := "1. p/unit, build #1, step: s\n2. p/lint, build #1, step: s\n"
	if !strings.HasPrefix(out.String(), want) {
		t.Errorf("chooser printed\n%s\nwant\n%s", out.String(), want)
	}
}
