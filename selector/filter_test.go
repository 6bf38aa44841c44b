package selector

import (
	"github.com/kubectl-concourse/kubectl-concourse/selector/labelenc"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFilterParse(t *testing.T) {
	tests := []struct {
		name   string
		filter Filter
		want   string // error prefix, "" for none
	}{
		{"empty", Filter{}, ""},
		{"bare job", Filter{Job: "unit"}, ""},
		{"pipeline/job", Filter{Job: "main/unit", Pipeline: "main"}, ""},
		{"empty job name", Filter{Job: "a/"}, "-j/--job:"},
		{"job outside pipeline", Filter{Job: "a/b", Pipeline: "c"}, "-j/--job a/b is not in --pipeline c"},
		{"bad vars", Filter{Job: "p/novalue/j"}, "-j/--job:"},
		{"bad selector", Filter{LabelSelector: "a in ("}, "-l/--selector:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.filter.Parse()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Parse() = %v", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Errorf("Parse() = %v, want %q...", err, tt.want)
			}
		})
	}
}

func TestScope(t *testing.T) {
	long := strings.Repeat("p", 70)
	obj := func(labels, annotations map[string]string) metav1.Object {
		return &metav1.ObjectMeta{Labels: labels, Annotations: annotations}
	}
	tests := []struct {
		name    string
		filter  Filter
		wantSel string
		match   []metav1.Object
		miss    []metav1.Object
	}{
		{
			name: "job with vars", filter: Filter{Job: "main/branch:x/unit"},
			wantSel: "app.kubernetes.io/managed-by=concourse,concourse-ci.org/job=unit,concourse-ci.org/pipeline=main",
			match: []metav1.Object{obj(map[string]string{LabelPipeline: "main", LabelJob: "unit"},
				map[string]string{AnnotationInstanceVars: `{"branch":"x"}`})},
			miss: []metav1.Object{
				obj(map[string]string{LabelPipeline: "main", LabelJob: "unit"}, nil),
				obj(map[string]string{LabelPipeline: "main", LabelJob: "unit"}, map[string]string{AnnotationInstanceVars: `{"branch":"y"}`}),
			},
		},
		{
			name: "encoded pipeline and extra labels", filter: Filter{Pipeline: long, Team: "ops", LabelSelector: "x=y"},
			wantSel: "app.kubernetes.io/managed-by=concourse,concourse-ci.org/pipeline=" + labelenc.Encode(long) + ",concourse-ci.org/team=ops,x=y",
			match:   []metav1.Object{obj(map[string]string{LabelPipeline: labelenc.Encode(long), LabelTeam: "ops"}, map[string]string{LabelPipeline: long})},
			miss: []metav1.Object{
				obj(map[string]string{LabelPipeline: labelenc.Encode(long), LabelTeam: "ops"}, map[string]string{LabelPipeline: long + "!"}),
				obj(map[string]string{LabelPipeline: labelenc.Encode(long), LabelTeam: "ops"}, nil),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.filter.Parse()
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Selector(ManagedPods()); got != tt.wantSel {
				t.Errorf("Selector() = %s\nwant %s", got, tt.wantSel)
			}
			for _, o := range tt.match {
				if !s.Matches(o) {
					t.Errorf("does not match %v %v", o.GetLabels(), o.GetAnnotations())
				}
			}
			for _, o := range tt.miss {
				if s.Matches(o) {
					t.Errorf("matches %v %v", o.GetLabels(), o.GetAnnotations())
				}
			}
		})
	}
	if !(Scope{}).Matches(obj(nil, nil)) {
		t.Error("the zero Scope must match everything")
	}
}

func TestFilterFlags(t *testing.T) {
	var f Filter
	fs := pflag.NewFlagSet("f", pflag.ContinueOnError)
	f.AddFlags(fs, FlagJob, FlagTeam)
	if err := fs.Parse([]string{"-j", "p/j", "--team", "t"}); err != nil {
		t.Fatal(err)
	}
	if f != (Filter{Job: "p/j", Team: "t"}) {
		t.Errorf("parsed %+v", f)
	}
	if fs.Lookup(FlagPipeline) != nil || fs.Lookup(FlagAllNamespaces) != nil {
		t.Error("flags not asked for were added")
	}
	var tg Target
	ts := pflag.NewFlagSet("t", pflag.ContinueOnError)
	tg.AddFlags(ts, "job", "build")
	n := 0
	ts.VisitAll(func(*pflag.Flag) { n++ })
	if n != 2 {
		t.Errorf("Target.AddFlags(job, build) added %d flags", n)
	}
}
