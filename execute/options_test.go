package execute

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
)

const sampleTask = `platform: linux
image_resource: {type: registry-image, source: {repository: busybox}}
params: {TOKEN: s3cret}
inputs: [{name: repo}, {name: extra, optional: true}]
outputs: [{name: out}]
run: {path: sh}
`

func prepared(t *testing.T, task string, mutate func(o *ExecuteOptions)) (*ExecuteOptions, error) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "task.yml")
	os.WriteFile(file, []byte(task), 0o644)
	repo := filepath.Join(dir, "repo")
	os.MkdirAll(repo, 0o755)
	os.WriteFile(filepath.Join(dir, "plain-file"), []byte("x"), 0o644)
	o := NewExecuteOptions(genericiooptions.NewTestIOStreamsDiscard())
	o.ConfigFile, o.DryRun = file, "client"
	o.InputFlags = []string{"repo=" + repo}
	o.Getwd = func() (string, error) { return filepath.Join(dir, "elsewhere"), nil }
	if mutate != nil {
		mutate(o)
	}
	flags := genericclioptions.NewConfigFlags(false)
	ns := "ci"
	flags.Namespace = &ns
	if err := o.Complete(flags, nil, nil); err != nil {
		return o, err
	}
	// As kernel.Wire has it: a failed Validate is a usage error; Run checks
	// the rest first.
	if err := o.Validate(); err != nil {
		return o, cmderr.Usage(err)
	}
	return o, o.preflight()
}

func TestExecuteErrors(t *testing.T) {
	tests := []struct {
		name   string
		task   string
		mutate func(o *ExecuteOptions)
		want   string
		usage  bool
	}{
		{"unknown input", sampleTask, func(o *ExecuteOptions) { o.InputFlags = append(o.InputFlags, "nope=.") }, "unknown input `nope`", true},
		{"missing required input", sampleTask, func(o *ExecuteOptions) { o.InputFlags = nil }, "missing required input `repo`", true},
		{"bad -i pair", sampleTask, func(o *ExecuteOptions) { o.InputFlags = []string{"repo"} }, "invalid input pair 'repo' (must be name=path)", true},
		{"-i that matches nothing", sampleTask, func(o *ExecuteOptions) { o.InputFlags = []string{"repo=/no/such/dir*"} }, "path '/no/such/dir*' does not exist", true},
		{"-i of a file", sampleTask, func(o *ExecuteOptions) {
			o.InputFlags = []string{"repo=" + filepath.Join(filepath.Dir(o.ConfigFile), "plain-file")}
		}, "plain-file not a folder", true},
		{"unknown output", sampleTask, func(o *ExecuteOptions) { o.OutputFlags = []string{"nope=./x"} }, "unknown output 'nope'", true},
		{"background with outputs", sampleTask, func(o *ExecuteOptions) { o.Background, o.OutputFlags = true, []string{"out=./x"} },
			"background execution cannot withstand outputs", true},
		{"an output over the current directory", sampleTask, func(o *ExecuteOptions) {
			o.OutputFlags = []string{"out=" + filepath.Dir(o.ConfigFile)}
		}, "which holds the current directory", true},
		{"an output over an input", sampleTask, func(o *ExecuteOptions) {
			o.OutputFlags = []string{"out=" + filepath.Join(filepath.Dir(o.ConfigFile), "repo", "sub")}
		}, "would replace input repo", true},
		{"-o yaml without --dry-run", sampleTask, func(o *ExecuteOptions) { o.DryRun, o.OutputFlags = "none", []string{"yaml"} }, "add --dry-run=client", true},
		{"no image", "platform: linux\nrun: {path: sh}\n", func(o *ExecuteOptions) { o.InputFlags = nil }, "the task names no image (no image_resource): give one with --image", false},
		{"mock image", "platform: linux\nimage_resource: {type: mock, source: {}}\nrun: {path: sh}\n", func(o *ExecuteOptions) { o.InputFlags = nil }, `image_resource of type "mock" names no image a pod can run`, false},
		{"params too large for a Secret", "platform: linux\nimage_resource: {type: registry-image, source: {repository: x}}\nparams: {A: " + strings.Repeat("x", 1<<20) + "}\nrun: {path: sh}\n",
			func(o *ExecuteOptions) { o.InputFlags = nil }, "more than the 1048576 a Kubernetes Secret", false},
		{"-j", sampleTask, func(o *ExecuteOptions) { o.InputsFrom = "main/unit" }, "-j/--inputs-from and -m/--input-mapping take a job's inputs from Concourse's API", true},
		{"rootfs_uri of a directory", "platform: linux\nrootfs_uri: raw:///x\nrun: {path: sh}\n", func(o *ExecuteOptions) { o.InputFlags = nil }, "rootfs_uri (raw:///x) names a worker's directory", false},
		{"an output onto a file", sampleTask, func(o *ExecuteOptions) {
			o.OutputFlags = []string{"out=" + filepath.Join(filepath.Dir(o.ConfigFile), "plain-file")}
		}, "plain-file exists and is not a directory", true},
		{"an output in a missing directory", sampleTask, func(o *ExecuteOptions) {
			o.OutputFlags = []string{"out=" + filepath.Join(filepath.Dir(o.ConfigFile), "no", "out")}
		}, "is not a directory to land it in", true},
		{"named user", "platform: linux\nimage_resource: {type: registry-image, source: {repository: x}}\nrun: {path: sh, user: nobody}\n", func(o *ExecuteOptions) { o.InputFlags = nil }, `run.user "nobody"`, false},
		{"param that is no Secret key", "platform: linux\nimage_resource: {type: registry-image, source: {repository: x}}\nparams: {\"A B\": 1}\nrun: {path: sh}\n", func(o *ExecuteOptions) { o.InputFlags = nil }, `param "A B"`, false},
		{"unknown keys", "platform: linux\nouputs: []\nimage: x\nrun: {path: sh}\n", func(o *ExecuteOptions) { o.InputFlags = nil }, "line 2: unknown fields: ouputs, image", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := prepared(t, tt.task, tt.mutate)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			var u *cmderr.UsageError
			if isUsage := errorsAs(err, &u); isUsage != tt.usage {
				t.Errorf("usage error = %v, want %v", isUsage, tt.usage)
			}
		})
	}
}

func TestObjectsKeepParamsOutOfThePod(t *testing.T) {
	o, err := prepared(t, sampleTask, func(o *ExecuteOptions) { o.OutputFlags = []string{"out=./o"}; o.Team = "main team" })
	if err != nil {
		t.Fatal(err)
	}
	o.Getenv = func(k string) (string, bool) {
		if k == "TOKEN" {
			return "from-env", true
		}
		return "", false
	}
	b := o.plan(o.Team, "1")
	pod, secrets := b.objects()
	secret := secrets[0]
	var spec strings.Builder
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		spec.WriteString(strings.Join(append(c.Command, c.Args...), " "))
		for _, e := range c.Env {
			spec.WriteString(e.Value)
		}
	}
	if strings.Contains(spec.String(), "s3cret") || strings.Contains(spec.String(), "from-env") {
		t.Errorf("a param's value is in the pod's spec")
	}
	if string(secret.Data["TOKEN"]) != "from-env" {
		t.Errorf("the local environment does not override the param: %q", secret.Data["TOKEN"])
	}
	if pod.Labels["concourse-ci.org/team"] == "main team" || pod.Annotations["concourse-ci.org/team"] != "main team" {
		t.Errorf("team labels %v / %v: want the contract's encoding", pod.Labels, pod.Annotations)
	}
	names := []string{}
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	if len(pod.Spec.InitContainers) != 1 || strings.Join(names, ",") != "task,outputs" {
		t.Errorf("init %v, containers %v", pod.Spec.InitContainers, names)
	}
	for _, vm := range pod.Spec.Containers[1].VolumeMounts {
		if !vm.ReadOnly {
			t.Errorf("the outputs helper mounts %s writable", vm.MountPath)
		}
	}
}

func errorsAs(err error, target **cmderr.UsageError) bool {
	for err != nil {
		if u, ok := err.(*cmderr.UsageError); ok {
			*target = u
			return true
		}
		w, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = w.Unwrap()
	}
	return false
}

func TestRootfsImage(t *testing.T) {
	tests := []struct{ uri, want string }{
		{"docker:///busybox", "busybox"},
		{"docker:///busybox#1.36", "busybox:1.36"},
		{"docker://registry.example/team/app#v2", "registry.example/team/app:v2"},
		{"docker:///", ""},
		{"raw:///var/vcap/rootfs", ""},
	}
	for _, tt := range tests {
		got, err := rootfsImage(tt.uri)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("rootfsImage(%q) = %q, %v; want %q", tt.uri, got, err, tt.want)
		}
	}
}

func TestMissingOptionalInputIsAbsent(t *testing.T) {
	o, err := prepared(t, sampleTask, nil)
	if err != nil {
		t.Fatal(err)
	}
	pod, _ := o.plan("", "1").objects()
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		for _, vm := range c.VolumeMounts {
			if strings.HasSuffix(vm.MountPath, "/extra") {
				t.Errorf("container %s mounts the optional input that was not given at %s", c.Name, vm.MountPath)
			}
		}
	}
}

func TestStartErrorMessage(t *testing.T) {
	for msg, want := range map[string]string{
		`failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "./nope.sh": stat ./nope.sh: no such file or directory: unknown`: `exec: "./nope.sh": stat ./nope.sh: no such file or directory`,
		`exec format error`: `exec format error`,
	} {
		if got := startErrorMessage(msg); got != want {
			t.Errorf("startErrorMessage(%q) = %q, want %q", msg, got, want)
		}
	}
}
