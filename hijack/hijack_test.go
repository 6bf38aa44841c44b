package hijack

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// fakeExecutor records each Request, drains stdin, writes scripted output
// and returns the scripted result of each call in turn (the last repeats).
// A helper container's tether (its stdin ends with the word that ends the
// session: "stop" or "release") is answered as a keeper would, with success,
// and leaves the scripted results to the other calls.
type fakeExecutor struct {
	mu     sync.Mutex
	got    []podexec.Request
	stdin  []string
	stdout string
	stderr string // written by every session before it ends
	// cutSilently ends every session as a dropped connection can: a
	// success without the script's exit report.
	cutSilently bool
	results     []error
}

func (f *fakeExecutor) Exec(_ context.Context, r podexec.Request, s podexec.Streams, _ remotecommand.TerminalSizeQueue) error {
	in := ""
	if r.Stdin && s.In != nil {
		b, _ := io.ReadAll(s.In) // a tether's stdin stays open until the session ends
		in = string(b)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, r)
	f.stdin = append(f.stdin, in)
	if in == "stop\n" || in == "release\n" {
		return f.exited(r, s, nil)
	}
	if s.Out != nil {
		_, _ = io.WriteString(s.Out, f.stdout)
	}
	if s.ErrOut != nil {
		_, _ = io.WriteString(s.ErrOut, f.stderr)
	}
	if f.cutSilently {
		return nil
	}
	if len(f.results) == 0 {
		return f.exited(r, s, nil)
	}
	err := f.results[0]
	if len(f.results) > 1 {
		f.results = f.results[1:]
	}
	return f.exited(r, s, err)
}

// exited ends a script's or a session's exec that succeeds as its shell
// would: saying so last on stderr (podexec.ExitReport), and on stdout too
// for a session.
func (f *fakeExecutor) exited(r podexec.Request, s podexec.Streams, err error) error {
	_, _, script := podexec.ScriptOf(r.Command)
	if err != nil || !script && !podexec.IsSession(r.Command) {
		return err
	}
	if podexec.IsSession(r.Command) && s.Out != nil {
		_, _ = io.WriteString(s.Out, podexec.ExitReport(0))
	}
	if s.ErrOut != nil {
		_, _ = io.WriteString(s.ErrOut, podexec.ExitReport(0))
	}
	return nil
}

// tethers are the recorded requests that tied a helper's keeper, and what
// each was told at the end.
func (f *fakeExecutor) tethers() (reqs []podexec.Request, words []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, in := range f.stdin {
		if in == "stop\n" || in == "release\n" {
			reqs, words = append(reqs, f.got[i]), append(words, strings.TrimSpace(in))
		}
	}
	return reqs, words
}

// sessions are the recorded requests that were not tethers.
func (f *fakeExecutor) sessions() []podexec.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var reqs []podexec.Request
	for i, in := range f.stdin {
		if in != "stop\n" && in != "release\n" {
			reqs = append(reqs, f.got[i])
		}
	}
	return reqs
}

func exitCode(n int) error {
	return utilexec.CodeExitError{Err: errors.New("command terminated"), Code: n}
}

func stepPod(name, job, build, step string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: name, Labels: map[string]string{
			selector.LabelManagedBy: selector.ManagedByValue, selector.LabelPipeline: "main",
			selector.LabelJob: job, selector.LabelBuildName: build, selector.LabelStepName: step,
			selector.LabelStepType: "task", selector.LabelAttempt: "1",
		}},
		Spec: corev1.PodSpec{
			NodeName: "node-1",
			Containers: []corev1.Container{{Name: "main", Image: "busybox", WorkingDir: "/tmp/build/abc",
				VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/tmp/build"}}}},
			Volumes: []corev1.Volume{{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "main", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func newOptions(t *testing.T, ex *fakeExecutor, objs ...runtime.Object) (*HijackOptions, *fake.Clientset, *strings.Builder, *strings.Builder) {
	t.Helper()
	client := fake.NewClientset(objs...)
	var out, errOut strings.Builder
	o := NewHijackOptions(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	o.Namespace, o.Client, o.Executor, o.Term = "ci", client, ex, "xterm-256color"
	o.isTerminal = func(any) bool { return false }
	return o, client, &out, &errOut
}

// shellArgv is the start script's argv for a session without a TTY: under
// the exit reporter.
func shellArgv(term, dir, flag string, argv ...string) []string {
	return reportedArgv(ttyArgv(term, dir, flag, argv...))
}

// ttyArgv is the start script's argv for a terminal session, which cannot
// carry an exit report: the TTY merges stderr into stdout.
func ttyArgv(term, dir, flag string, argv ...string) []string {
	return append([]string{"sh", "-c", startScript, "sh", term, dir, flag}, argv...)
}

func reportedArgv(argv []string) []string {
	return podexec.SessionCommand(argv[0], argv[2], argv[4:]...)
}

func TestRun(t *testing.T) {
	windows := func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{corev1.LabelOSStable: "windows"} }
	tests := []struct {
		name     string
		setup    func(*HijackOptions)
		results  []error
		wantReqs []podexec.Request
		wantErr  string // substring; "" for none
		wantExit int    // remote exit status carried by the error
	}{
		{
			name: "default shell in the working directory",
			wantReqs: []podexec.Request{{Namespace: "ci", Pod: "unit-42", Container: "main", Stdin: true,
				Command: shellArgv("xterm-256color", "/tmp/build/abc", "default", "bash")}},
		},
		{
			name: "command and -w pass through as arguments, never as script",
			setup: func(o *HijackOptions) {
				o.Command, o.WorkDir, o.workDirSet = []string{"ls", "-la", "$(rm -rf /)"}, `/tmp/it's "a" dir`, true
			},
			wantReqs: []podexec.Request{{Namespace: "ci", Pod: "unit-42", Container: "main", Stdin: true,
				Command: shellArgv("xterm-256color", `/tmp/it's "a" dir`, "explicit", "ls", "-la", "$(rm -rf /)")}},
		},
		{
			name:  "terminal gets a TTY",
			setup: func(o *HijackOptions) { o.isTerminal = func(any) bool { return true } },
			wantReqs: []podexec.Request{{Namespace: "ci", Pod: "unit-42", Container: "main", Stdin: true, TTY: true,
				Command: ttyArgv("xterm-256color", "/tmp/build/abc", "default", "bash")}},
		},
		{
			name:     "remote exit status is ours",
			setup:    func(o *HijackOptions) { o.Command = []string{"false"} },
			results:  []error{exitCode(3)},
			wantReqs: []podexec.Request{{Namespace: "ci", Pod: "unit-42", Container: "main", Stdin: true, Command: shellArgv("xterm-256color", "/tmp/build/abc", "explicit", "false")}},
			wantExit: 3,
		},
		{
			name:    "a command that exits 127 where sh exists",
			setup:   func(o *HijackOptions) { o.Command = []string{"nope"} },
			results: []error{exitCode(127), nil},
			wantReqs: []podexec.Request{
				{Namespace: "ci", Pod: "unit-42", Container: "main", Stdin: true, Command: shellArgv("xterm-256color", "/tmp/build/abc", "explicit", "nope")},
				{Namespace: "ci", Pod: "unit-42", Container: "main", Command: []string{"sh", "-c", ":"}},
			},
			wantExit: 127,
		},
		{
			name:    "shell-less image runs the command itself",
			setup:   func(o *HijackOptions) { o.Command = []string{"/pause", "--version"} },
			results: []error{exitCode(127), exitCode(127), exitCode(4)},
			wantReqs: []podexec.Request{
				{Namespace: "ci", Pod: "unit-42", Container: "main", Stdin: true, Command: shellArgv("xterm-256color", "/tmp/build/abc", "explicit", "/pause", "--version")},
				{Namespace: "ci", Pod: "unit-42", Container: "main", Command: []string{"sh", "-c", ":"}},
				{Namespace: "ci", Pod: "unit-42", Container: "main", Stdin: true, Command: []string{"/pause", "--version"}},
			},
			wantExit: 4,
		},
		{
			name:    "shell-less image and no command points at --debug",
			results: []error{errors.New(`exec: "sh": executable file not found in $PATH`)},
			wantErr: "container main of pod ci/unit-42 has no shell (its image lacks sh); --debug",
		},
		{
			name: "shell-less image and -w",
			setup: func(o *HijackOptions) {
				o.Command, o.WorkDir, o.workDirSet = []string{"/pause"}, "/elsewhere", true
			},
			results: []error{exitCode(127)},
			wantErr: "-w needs sh in the container",
		},
		{
			name:  "windows pod runs cmd.exe",
			setup: func(o *HijackOptions) { o.Target.Job, o.Target.Build = "main/win", "1" },
			wantReqs: []podexec.Request{{Namespace: "ci", Pod: "win-1", Container: "main", Stdin: true,
				Command: []string{"cmd.exe"}}},
		},
		{
			name: "windows pod and -w",
			setup: func(o *HijackOptions) {
				o.Target.Job, o.Target.Build, o.WorkDir, o.workDirSet = "main/win", "1", `C:\x`, true
			},
			wantErr: "-w is not supported in Windows containers",
		},
		{
			name:    "exec forbidden names the permission",
			results: []error{errors.New(`unable to upgrade connection: pods "unit-42" is forbidden: User "dev" cannot create resource "pods/exec" in API group "" in the namespace "ci"`)},
			wantErr: `exec in container main of pod ci/unit-42: permission denied: you need "create" on "pods/exec" in namespace ci`,
		},
		{
			name:    "finished pod points at --debug",
			setup:   func(o *HijackOptions) { o.Target.Job, o.Target.Build = "main/done", "1" },
			wantErr: "pod ci/done-1 has Succeeded, so its containers are gone; --debug opens a copy",
		},
		{
			name:    "ambiguity without a terminal lists candidates",
			setup:   func(o *HijackOptions) { o.Target.Build = "" },
			wantErr: "2 containers match; pick one with:\n  build #41, step: unit, type: task, attempt: 1:  -j main/test -b 41 -s unit --step-type task -a 1",
		},
		{
			name: "chooser on a terminal",
			setup: func(o *HijackOptions) {
				o.Target.Build, o.In = "", strings.NewReader("2\n")
				o.isTerminal = func(s any) bool { _, isReader := s.(io.Reader); return isReader && s == o.In }
			},
			wantReqs: []podexec.Request{{Namespace: "ci", Pod: "unit-42", Container: "main", Stdin: true,
				Command: shellArgv("xterm-256color", "/tmp/build/abc", "default", "bash")}},
		},
		{
			name: "dismissed chooser is success",
			setup: func(o *HijackOptions) {
				o.Target.Build = ""
				o.isTerminal = func(s any) bool { return s == o.In }
			},
		},
		{
			name:    "nothing matches",
			setup:   func(o *HijackOptions) { o.Target.Step = "deploy" },
			wantErr: `no container matched step "deploy" of main/test #42 in namespace ci`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := &fakeExecutor{results: tt.results}
			o, _, _, _ := newOptions(t, ex,
				stepPod("unit-42", "test", "42", "unit"),
				stepPod("unit-41", "test", "41", "unit"),
				stepPod("win-1", "win", "1", "unit", windows),
				stepPod("done-1", "done", "1", "unit", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
			)
			o.Target = selector.Target{Job: "main/test", Build: "42", Step: "unit"}
			if tt.setup != nil {
				tt.setup(o)
			}
			err := o.Run(t.Context())
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Run() = %v\nwant error containing %q", err, tt.wantErr)
				}
			case tt.wantExit != 0:
				if exitStatusOf(err) != tt.wantExit {
					t.Fatalf("Run() = %v, want exit status %d", err, tt.wantExit)
				}
			case err != nil:
				t.Fatalf("Run() = %v", err)
			}
			if tt.wantReqs != nil && !reflect.DeepEqual(ex.got, tt.wantReqs) {
				t.Errorf("requests:\n%+v\nwant:\n%+v", ex.got, tt.wantReqs)
			}
		})
	}
}

func TestRunStreamsStdin(t *testing.T) {
	ex := &fakeExecutor{stdout: "ok\n"}
	o, _, out, _ := newOptions(t, ex, stepPod("unit-42", "test", "42", "unit"))
	o.Target = selector.Target{Job: "main/test", Build: "42", Step: "unit"}
	o.In, o.Command = strings.NewReader("echo hi\n"), []string{"sh"}
	if err := o.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ex.stdin[0] != "echo hi\n" || out.String() != "ok\n" {
		t.Errorf("stdin %q, stdout %q", ex.stdin[0], out.String())
	}
}

// A session without a TTY runs under the exit reporter: a connection that
// drops silently (client-go hears it as a success) fails instead of exiting
// 0, and the session's own stderr reaches the user without the report.
func TestRunExitReport(t *testing.T) {
	tests := []struct {
		name        string
		stdout      string // after "out\n"
		stderr      string
		cutSilently bool
		results     []error
		wantStderr  string
		wantExit    int  // the session's status (a cmderr.Status)
		wantLost    bool // podexec.ErrExitLost
	}{
		{name: "success", stderr: "warn: x", wantStderr: "warn: x"}, // the fake reports success
		{name: "the session's status", stderr: "boom\n" + podexec.ExitReport(5), results: []error{exitCode(5)}, wantStderr: "boom\n", wantExit: 5},
		{name: "a status lost after the report", stdout: podexec.ExitReport(5), stderr: "boom\n" + podexec.ExitReport(5), cutSilently: true, wantStderr: "boom\n", wantExit: 5},
		{name: "cut silently", stderr: "half", cutSilently: true, wantStderr: "half", wantLost: true},
		{name: "stdout cut silently, stderr whole", stderr: "warn\n" + podexec.ExitReport(0), cutSilently: true, wantStderr: "warn\n", wantLost: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := &fakeExecutor{stdout: "out\n" + tt.stdout, stderr: tt.stderr, cutSilently: tt.cutSilently, results: tt.results}
			o, _, out, errOut := newOptions(t, ex, stepPod("unit-42", "test", "42", "unit"))
			o.Target = selector.Target{Job: "main/test", Build: "42", Step: "unit"}
			o.Command = []string{"make", "check"}
			err := o.Run(t.Context())
			switch {
			case tt.wantLost:
				if !errors.Is(err, podexec.ErrExitLost) || strings.Contains(err.Error(), "\n") {
					t.Errorf("Run() = %v, want one line saying the connection was lost", err)
				}
			case tt.wantExit != 0:
				if exitStatusOf(err) != tt.wantExit {
					t.Errorf("Run() = %v, want exit status %d", err, tt.wantExit)
				}
			case err != nil:
				t.Errorf("Run() = %v, want success", err)
			}
			if out.String() != "out\n" || errOut.String() != tt.wantStderr {
				t.Errorf("stdout %q, stderr %q; want %q, %q", out.String(), errOut.String(), "out\n", tt.wantStderr)
			}
		})
	}
}

func TestRunListForbidden(t *testing.T) {
	o, client, _, _ := newOptions(t, &fakeExecutor{})
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New(`User "dev" cannot list resource "pods"`))
	})
	o.Target = selector.Target{Job: "main/test"}
	err := o.Run(t.Context())
	var forbidden *cmderr.ForbiddenError
	if !errors.As(err, &forbidden) || forbidden.Verb != "list" || forbidden.Resource != "pods" || forbidden.Namespace != "ci" {
		t.Fatalf("Run() = %v, want a ForbiddenError for list pods in ci", err)
	}
	if !apierrors.IsForbidden(err) {
		t.Errorf("the API error is lost: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		o    HijackOptions
		want string
	}{
		{"ok", HijackOptions{HelperImage: "busybox"}, ""},
		{"the step's own image", HijackOptions{Debug: true, HelperImage: "busybox"}, ""},
		{"keep without debug", HijackOptions{Keep: true, HelperImage: "busybox"}, "--keep applies to --debug only"},
		{"empty helper image", HijackOptions{Debug: true}, "--helper-image must name an image"},
		{"relative kubelet dir", HijackOptions{HelperImage: "busybox", KubeletDir: "var/lib/kubelet"}, "--kubelet-dir"},
		{"bad target", HijackOptions{HelperImage: "busybox", Target: selector.Target{Job: "x"}}, "-j/--job"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
