package execute

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

var update = flag.Bool("update", false, "rewrite testdata/tasks/*.golden")

// TestTaskFilesRender renders every task file of testdata/tasks (written in
// the shapes a large public CI's tasks take: caches, optional inputs, empty
// params, Windows tasks running powershell, user: root, digests, limits)
// with --dry-run=client, every declared input given, and compares the
// objects with the golden files. EXECUTE_TASK_CORPUS names more directories
// of task files (a checkout of a real CI), which must all render too.
func TestTaskFilesRender(t *testing.T) {
	files, _ := filepath.Glob("testdata/tasks/*.yml")
	for _, dir := range filepath.SplitList(os.Getenv("EXECUTE_TASK_CORPUS")) {
		more, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
		files = append(files, more...)
	}
	if len(files) < 5 {
		t.Fatalf("only %d task files", len(files))
	}
	vars := regexp.MustCompile(`\(\(([-\w]+)\)\)`)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			o := NewExecuteOptions(genericiooptions.IOStreams{})
			for _, m := range vars.FindAllSubmatch(data, -1) {
				o.StringVars = append(o.StringVars, string(m[1])+"=value-of-"+string(m[1]))
			}
			c, err := ParseTaskConfig(file, data, Vars{})
			if err != nil && !strings.Contains(err.Error(), "undefined vars") {
				t.Fatal(err)
			}
			src := t.TempDir()
			for _, in := range c.Inputs {
				o.InputFlags = append(o.InputFlags, in.Name+"="+src)
			}
			if c.ImageResource == nil || (c.ImageResource.Type != "registry-image" && c.ImageResource.Type != "docker-image") {
				o.Image = "example/image:1"
			}
			var out, errOut bytes.Buffer
			o.Out, o.ErrOut = &out, &errOut
			o.ConfigFile, o.DryRun, o.OutputFlags = file, "client", []string{"yaml"}
			o.Now = func() time.Time { return time.UnixMilli(1700000000000) }
			o.Getwd = func() (string, error) { return "/nowhere", nil }
			o.Getenv = func(string) (string, bool) { return "", false }
			flags := genericclioptions.NewConfigFlags(false)
			ns := "ci"
			flags.Namespace = &ns
			if err := o.Complete(flags, nil, nil); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if err := o.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if err := o.Run(t.Context()); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if !strings.HasPrefix(file, "testdata/") {
				return
			}
			golden := strings.TrimSuffix(file, ".yml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./execute -update writes it)", err)
			}
			if got := out.String(); got != string(want) {
				t.Errorf("%s changed; review the diff and rerun with -update:\n%s", golden, got)
			}
		})
	}
}
