package selector

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// hash10 is the hash an encoded label value ends with (labelenc.Encode).
func hash10(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:10]
}

func TestParseJob(t *testing.T) {
	tests := []struct {
		in               string
		pipeline, name   string
		vars             InstanceVars
		wantErrSubstring string
	}{
		{in: "main/test", pipeline: "main", name: "test"},
		{in: "main/branch:feature/test", pipeline: "main", name: "test", vars: InstanceVars{"branch": "feature"}},
		{in: "main/branch:feature,n:1/test", pipeline: "main", name: "test", vars: InstanceVars{"branch": "feature", "n": float64(1)}},
		{in: `main/n:"1"/test`, pipeline: "main", name: "test", vars: InstanceVars{"n": "1"}},
		{in: `main/a.b:c,"x.y".z:[1,2]/test`, pipeline: "main", name: "test",
			vars: InstanceVars{"a": map[string]any{"b": "c"}, "x.y": map[string]any{"z": []any{float64(1), float64(2)}}}},
		{in: "main", wantErrSubstring: "want PIPELINE/NAME"},
		{in: "main/", wantErrSubstring: "want PIPELINE/NAME"},
		{in: "/test", wantErrSubstring: "want PIPELINE/NAME"},
		{in: "main/novalue/test", wantErrSubstring: "KEY:VALUE"},
		{in: "/k:v/test", wantErrSubstring: "empty pipeline"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, vars, name, err := ParseJob(tt.in)
			if tt.wantErrSubstring != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrSubstring) {
					t.Fatalf("ParseJob(%q) error = %v, want %q", tt.in, err, tt.wantErrSubstring)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseJob(%q): %v", tt.in, err)
			}
			if p != tt.pipeline || name != tt.name || !reflect.DeepEqual(vars, tt.vars) {
				t.Errorf("ParseJob(%q) = %q, %v, %q, want %q, %v, %q", tt.in, p, vars, name, tt.pipeline, tt.vars, tt.name)
			}
		})
	}
}

func TestParseWebURL(t *testing.T) {
	tests := []struct {
		in      string
		want    WebURL
		wantErr string
	}{
		{in: "https://ci.example.com/teams/main/pipelines/app/jobs/unit/builds/42",
			want: WebURL{Team: "main", Pipeline: "app", Job: "unit", Build: "42"}},
		{in: "/teams/main/pipelines/app/jobs/unit/builds/42?vars.branch=%22dev%22&vars.n=1",
			want: WebURL{Team: "main", Pipeline: "app", Job: "unit", Build: "42", InstanceVars: InstanceVars{"branch": "dev", "n": float64(1)}}},
		{in: `/teams/main/pipelines/app/jobs/unit?vars=%7B%22a%22%3A%7B%22b%22%3A1%7D%7D&vars.a.c=2`,
			want: WebURL{Team: "main", Pipeline: "app", Job: "unit", InstanceVars: InstanceVars{"a": map[string]any{"b": float64(1), "c": float64(2)}}}},
		{in: `/teams/main/pipelines/app/jobs/unit?instance_vars=%7B%22branch%22%3A%22dev%22%7D`,
			want: WebURL{Team: "main", Pipeline: "app", Job: "unit", InstanceVars: InstanceVars{"branch": "dev"}}},
		{in: "https://ci/teams/main/pipelines/app/resources/repo", want: WebURL{Team: "main", Pipeline: "app", Resource: "repo"}},
		{in: "https://ci/builds/1234", want: WebURL{BuildID: "1234"}},
		{in: "https://ci/teams/main/pipelines/my%20app/jobs/t%C3%A4st/builds/1.1",
			want: WebURL{Team: "main", Pipeline: "my app", Job: "täst", Build: "1.1"}},
		{in: "https://ci/teams/main/pipelines/app/jobs", wantErr: "want /teams/"},
		{in: "https://ci/teams/main/pipelines/app/widgets/x", wantErr: `unknown path segment "widgets"`},
		{in: "https://ci/teams/main", wantErr: "names no pipeline or build"},
		{in: "https://ci/teams/main/jobs/x", wantErr: "without its pipeline"},
		{in: "/teams/main/pipelines/app/jobs/unit?vars.n=nope", wantErr: `url query "vars.n"`},
		{in: "/teams/main/pipelines/app/jobs/unit?vars=1", wantErr: "want a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseWebURL(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseWebURL(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseWebURL(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseWebURL(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestTargetFlags(t *testing.T) {
	var tg Target
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	tg.AddFlags(fs)
	err := fs.Parse([]string{"-j", "p/j", "-b", "3", "-s", "unit", "--step-type", "task", "-a", "1,2",
		"--team", "main", "-l", "x=y", "--container", "c", "-A"})
	if err != nil {
		t.Fatal(err)
	}
	want := Target{Job: "p/j", Build: "3", Step: "unit", StepType: "task", Attempt: "1,2", Team: "main",
		LabelSelector: "x=y", Container: "c", AllNamespaces: true}
	if tg != want {
		t.Errorf("parsed %+v, want %+v", tg, want)
	}
	for _, short := range []string{"j", "c", "u", "b", "s", "a", "l", "A"} {
		if fs.ShorthandLookup(short) == nil {
			t.Errorf("no -%s", short)
		}
	}
}

func TestTargetSelector(t *testing.T) {
	const mb = "app.kubernetes.io/managed-by=concourse"
	tests := []struct {
		name   string
		target Target
		want   string
	}{
		{"job and build", Target{Job: "main/test", Build: "42", Step: "unit"},
			"app.kubernetes.io/managed-by=concourse,concourse-ci.org/build-name=42,concourse-ci.org/job=test,concourse-ci.org/pipeline=main"},
		{"encoded names", Target{Job: "my pipeline/tëst"},
			mb + ",concourse-ci.org/job=t-st-" + hash10("tëst") + ",concourse-ci.org/pipeline=my-pipeline-" + hash10("my pipeline")},
		{"global build id", Target{Build: "1234", StepType: "get", Attempt: "1,1,2"},
			"app.kubernetes.io/managed-by=concourse,concourse-ci.org/attempt=1.1.2,concourse-ci.org/build-id=1234,concourse-ci.org/step-type=get"},
		{"check", Target{Check: "main/repo"},
			mb + ",concourse-ci.org/pipeline=main,concourse-ci.org/resource=repo,concourse-ci.org/step-type=check"},
		{"one-off", Target{Step: "one-off"}, mb + ",!concourse-ci.org/job,concourse-ci.org/step-type!=check"},
		{"one-off with team and extra", Target{Team: "dev", LabelSelector: "x in (a,b)"},
			mb + ",!concourse-ci.org/job,concourse-ci.org/step-type!=check,concourse-ci.org/team=dev,x in (a,b)"},
		{"handle", Target{Handle: "abc/def"}, "concourse-ci.org/handle=abc-def-" + hash10("abc/def")},
		{"url", Target{URL: "https://ci/teams/main/pipelines/app/jobs/unit/builds/7"},
			mb + ",concourse-ci.org/build-name=7,concourse-ci.org/job=unit,concourse-ci.org/pipeline=app,concourse-ci.org/team=main"},
		{"flags override url", Target{URL: "https://ci/teams/main/pipelines/app/jobs/unit/builds/7", Job: "app/lint", Build: "8", Team: "dev"},
			mb + ",concourse-ci.org/build-name=8,concourse-ci.org/job=lint,concourse-ci.org/pipeline=app,concourse-ci.org/team=dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := tt.target.query()
			if err != nil {
				t.Fatalf("query(): %v", err)
			}
			if got := q.selector().String(); got != tt.want {
				t.Errorf("Selector() = %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestTargetValidate(t *testing.T) {
	tests := []struct {
		name   string
		target Target
		want   string // error substring, "" for none
	}{
		{"empty is the latest one-off", Target{}, ""},
		{"pod and container", Target{Pod: "p", Container: "c", Step: "x"}, ""},
		{"job and check", Target{Job: "a/b", Check: "a/c"}, "-j/--job and -c/--check"},
		{"bad job", Target{Job: "nojob"}, "-j/--job"},
		{"bad check", Target{Check: "x"}, "-c/--check"},
		{"build id not a number", Target{Build: "abc"}, "global build id"},
		{"build with check", Target{Check: "a/r", Build: "1"}, "belongs to no build"},
		{"check with other type", Target{Check: "a/r", StepType: "get"}, "--step-type"},
		{"unknown type", Target{StepType: "deploy"}, "want one of get, put, task, check, run"},
		{"bad attempt", Target{Attempt: "one"}, "-a/--attempt"},
		{"bad selector", Target{LabelSelector: "a==b=c"}, "-l/--selector"},
		{"bad url", Target{URL: "/nope"}, "-u"},
		{"pod with job", Target{Pod: "p", Job: "a/b"}, "--pod names the pod"},
		{"pod with -A", Target{Pod: "p", AllNamespaces: true}, "--pod needs one namespace"},
		{"handle with step", Target{Handle: "h", Step: "s"}, "--handle names the container"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.target.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestTargetString(t *testing.T) {
	tests := []struct {
		target Target
		want   string
	}{
		{Target{Job: "main/test", Build: "3", Step: "unit"}, `step "unit" of main/test #3`},
		{Target{Job: "main/b:1/test"}, `main/b:1/test`},
		{Target{Check: "main/repo"}, `check of main/repo`},
		{Target{Build: "77", StepType: "task"}, `type task of build id 77`},
		{Target{}, `the most recent one-off build`},
		{Target{Handle: "h"}, `handle h`},
		{Target{Pod: "p", Step: "s"}, `step "s" of pod p`},
	}
	for _, tt := range tests {
		if got := tt.target.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.target, got, tt.want)
		}
	}
}
