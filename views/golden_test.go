package views

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// runner is a view's Run.
type runner interface{ Run(context.Context) error }

// views builds each list view around shared options.
var views = map[string]func(*ViewOptions) runner{
	"workers":    func(o *ViewOptions) runner { return &WorkersOptions{o} },
	"containers": func(o *ViewOptions) runner { return &ContainersOptions{o} },
	"volumes":    func(o *ViewOptions) runner { return &VolumesOptions{o} },
	"builds":     func(o *ViewOptions) runner { return &BuildsOptions{ViewOptions: o} },
}

// namespaced are the views with -A, --pipeline and --job.
var namespaced = []string{"containers", "volumes", "builds"}

// customColumns is a -o custom-columns spec per view, on its JSON fields.
var customColumns = map[string]string{
	"workers":    "custom-columns=NODE:.metadata.name,STATE:.state,TAGS:.tags[*]",
	"containers": "custom-columns=HANDLE:.metadata.name,POD:.pod,CONTAINER:.container,DIR:.workingDir",
	"volumes":    "custom-columns=HANDLE:.metadata.name,SOURCE:.source,DETAILED:.detailedIdentifier",
	"builds":     "custom-columns=ID:.metadata.name,STATUS:.status,STEPS:.steps",
}

// newTestOptions returns options on a fake cluster holding objs, at a fixed
// time, in namespace ci, without colour.
func newTestOptions(t *testing.T, objs ...runtime.Object) (*ViewOptions, *fake.Clientset, *bytes.Buffer) {
	t.Helper()
	streams, _, out, _ := genericiooptions.NewTestIOStreams()
	o := NewViewOptions(streams)
	client := fake.NewClientset(objs...)
	o.Client, o.Namespace, o.Dynamic = client, "ci", newTektonClient()
	o.Now = func() time.Time { return now }
	o.Location = time.UTC
	o.IsTerminal = func(io.Writer) bool { return false }
	return o, client, out
}

func TestGolden(t *testing.T) {
	formats := []struct {
		name  string
		set   func(o *ViewOptions, view string)
		views []string // the views that have the flag; nil: every view
	}{
		{"table", func(o *ViewOptions, _ string) {}, nil},
		{"wide", func(o *ViewOptions, _ string) { *o.PrintFlags.OutputFormat = "wide" }, nil},
		{"no-headers", func(o *ViewOptions, _ string) { o.NoHeaders = true }, nil},
		{"json", func(o *ViewOptions, _ string) { *o.PrintFlags.OutputFormat = "json" }, nil},
		{"yaml", func(o *ViewOptions, _ string) { *o.PrintFlags.OutputFormat = "yaml" }, nil},
		{"name", func(o *ViewOptions, _ string) { *o.PrintFlags.OutputFormat = "name" }, nil},
		{"jsonpath", func(o *ViewOptions, _ string) {
			*o.PrintFlags.OutputFormat = `jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}`
		}, nil},
		{"go-template", func(o *ViewOptions, _ string) {
			*o.PrintFlags.OutputFormat = `go-template={{range .items}}{{.kind}} {{.metadata.name}}{{"\n"}}{{end}}`
		}, nil},
		{"custom-columns", func(o *ViewOptions, view string) { *o.PrintFlags.OutputFormat = customColumns[view] }, nil},
		{"fly-json", func(o *ViewOptions, _ string) { o.FlyJSON = true }, nil},
		{"colour", func(o *ViewOptions, _ string) { o.Color = "always" }, nil},
		{"details", func(o *ViewOptions, _ string) { o.Details = true }, []string{"workers", "volumes"}},
		{"namespace", func(o *ViewOptions, _ string) { o.AllNamespaces = false }, namespaced},
		{"team", func(o *ViewOptions, _ string) { o.Team = "ops" }, nil},
		{"pipeline-long", func(o *ViewOptions, _ string) { o.Pipeline = longPipeline }, namespaced},
		{"job", func(o *ViewOptions, _ string) { o.Job = "main/branch:release/1.x/unit" }, namespaced},
	}
	for view, newView := range views {
		for _, f := range formats {
			if f.views != nil && !slices.Contains(f.views, view) {
				continue
			}
			t.Run(view+"-"+f.name, func(t *testing.T) {
				o, _, out := newTestOptions(t, fixtures()...)
				o.AllNamespaces = true
				f.set(o, view)
				if err := o.Complete(nil, nil, nil); err != nil {
					t.Fatal(err)
				}
				if err := o.Validate(); err != nil {
					t.Fatal(err)
				}
				if err := newView(o).Run(t.Context()); err != nil {
					t.Fatal(err)
				}
				compareGolden(t, filepath.Join("testdata", view+"-"+f.name+".golden"), out.String())
			})
		}
	}
}

func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./views -update)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test ./views -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
