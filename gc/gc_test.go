package gc

import (
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/kernel"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

var now = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

func meta(ns, name string, age time.Duration, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "/" + name), Labels: labels,
		CreationTimestamp: metav1.NewTime(now.Add(-age))}
}

var (
	executed = map[string]string{selector.LabelCreatedBy: selector.CreatedByExecute}
	own      = map[string]string{selector.LabelManagedBy: selector.ManagedByPlugin}
	both     = map[string]string{selector.LabelCreatedBy: selector.CreatedByExecute, selector.LabelManagedBy: selector.ManagedByPlugin}
	concours = map[string]string{selector.LabelManagedBy: selector.ManagedByValue}
)

func objects() []runtime.Object {
	return []runtime.Object{
		&corev1.Pod{ObjectMeta: meta("ci", "one-off-1", 2*time.Hour, executed)},
		&corev1.Pod{ObjectMeta: meta("ci", "one-off-2", time.Minute, executed)}, // a run in progress
		&corev1.Pod{ObjectMeta: meta("ci", "done-debug-abc", 3*time.Hour, own)},
		&corev1.Pod{ObjectMeta: meta("ci", "helper-both", 3*time.Hour, both)}, // listed by both selectors, deleted once
		&corev1.Pod{ObjectMeta: meta("ci", "unit-42", 5*time.Hour, concours)}, // a build's own step: never touched
		&corev1.Pod{ObjectMeta: meta("ci", "unlabelled", 5*time.Hour, nil)},
		&corev1.Pod{ObjectMeta: meta("other", "files-xyz", 2*time.Hour, own)},
		&corev1.Secret{ObjectMeta: meta("ci", "one-off-1-params", 2*time.Hour, executed)},
		&corev1.Secret{ObjectMeta: meta("ci", "someone-elses", 2*time.Hour, nil)},
	}
}

func testOptions(objs ...runtime.Object) (*GCOptions, *fake.Clientset, *strings.Builder, *strings.Builder) {
	client := fake.NewClientset(objs...)
	var out, errOut strings.Builder
	o := &GCOptions{IOStreams: genericiooptions.IOStreams{Out: &out, ErrOut: &errOut}, OlderThan: DefaultOlderThan,
		Cluster: kernel.Cluster{Namespace: "ci", Client: client}, Now: func() time.Time { return now }}
	return o, client, &out, &errOut
}

// names is what is left of kind in the fake cluster, as ns/name.
func names(t *testing.T, client *fake.Clientset) []string {
	t.Helper()
	var got []string
	pods, err := client.CoreV1().Pods("").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		got = append(got, "pod "+p.Namespace+"/"+p.Name)
	}
	secrets, err := client.CoreV1().Secrets("").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		got = append(got, "secret "+s.Namespace+"/"+s.Name)
	}
	return got
}

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		set      func(*GCOptions)
		wantOut  string
		wantErr  string // stderr
		wantLeft string
	}{
		{name: "older than an hour, in the namespace",
			wantOut:  "pod/done-debug-abc deleted (age 3h)\npod/helper-both deleted (age 3h)\npod/one-off-1 deleted (age 120m)\nsecret/one-off-1-params deleted (age 120m)\n",
			wantLeft: "pod ci/one-off-2,pod ci/unit-42,pod ci/unlabelled,pod other/files-xyz,secret ci/someone-elses"},
		{name: "dry run deletes nothing", set: func(o *GCOptions) { o.DryRun = true },
			wantOut:  "pod/done-debug-abc deleted (dry run, age 3h)\npod/helper-both deleted (dry run, age 3h)\npod/one-off-1 deleted (dry run, age 120m)\nsecret/one-off-1-params deleted (dry run, age 120m)\n",
			wantLeft: "pod ci/done-debug-abc,pod ci/helper-both,pod ci/one-off-1,pod ci/one-off-2,pod ci/unit-42,pod ci/unlabelled,pod other/files-xyz,secret ci/one-off-1-params,secret ci/someone-elses"},
		{name: "every namespace, whatever the age", set: func(o *GCOptions) { o.AllNamespaces, o.OlderThan = true, 0 },
			wantOut:  "ci pod/done-debug-abc deleted (age 3h)\nci pod/helper-both deleted (age 3h)\nci pod/one-off-1 deleted (age 120m)\nci pod/one-off-2 deleted (age 60s)\nci secret/one-off-1-params deleted (age 120m)\nother pod/files-xyz deleted (age 120m)\n",
			wantLeft: "pod ci/unit-42,pod ci/unlabelled,secret ci/someone-elses"},
		{name: "nothing old enough", set: func(o *GCOptions) { o.OlderThan = 24 * time.Hour },
			wantErr:  "Nothing kubectl concourse created is older than 24h0m0s.\n",
			wantLeft: "pod ci/done-debug-abc,pod ci/helper-both,pod ci/one-off-1,pod ci/one-off-2,pod ci/unit-42,pod ci/unlabelled,pod other/files-xyz,secret ci/one-off-1-params,secret ci/someone-elses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, client, out, errOut := testOptions(objects()...)
			if tt.set != nil {
				tt.set(o)
			}
			if err := o.Run(t.Context()); err != nil {
				t.Fatalf("Run() = %v", err)
			}
			if out.String() != tt.wantOut || errOut.String() != tt.wantErr {
				t.Errorf("stdout:\n%s\nstderr %q\nwant:\n%s\nstderr %q", out, errOut, tt.wantOut, tt.wantErr)
			}
			if got := strings.Join(names(t, client), ","); got != tt.wantLeft {
				t.Errorf("left %s\nwant %s", got, tt.wantLeft)
			}
		})
	}
}

// A delete that RBAC refuses names the permission and lets the others go
// on; one already gone is not an error; a refused LIST deletes nothing.
func TestRunForbidden(t *testing.T) {
	forbidden := func(resource string) error {
		return apierrors.NewForbidden(schema.GroupResource{Resource: resource}, "", errors.New("RBAC: no"))
	}
	t.Run("delete", func(t *testing.T) {
		o, client, out, _ := testOptions(objects()...)
		client.PrependReactor("delete", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, forbidden("secrets")
		})
		client.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if a.(k8stesting.DeleteAction).GetName() == "one-off-1" {
				return true, nil, apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "one-off-1")
			}
			return false, nil, nil
		})
		err := o.Run(t.Context())
		var fe *cmderr.ForbiddenError
		if !errors.As(err, &fe) || fe.Verb != "delete" || fe.Resource != "secrets" || fe.Namespace != "ci" ||
			!strings.HasPrefix(err.Error(), "delete secret/one-off-1-params: permission denied") {
			t.Errorf("Run() = %v, want the delete of secrets in ci named", err)
		}
		if want := "pod/done-debug-abc deleted (age 3h)\npod/helper-both deleted (age 3h)\npod/one-off-1 deleted (age 120m)\n"; out.String() != want {
			t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
		}
	})
	t.Run("list", func(t *testing.T) {
		o, client, out, _ := testOptions(objects()...)
		client.PrependReactor("list", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, forbidden("secrets")
		})
		err := o.Run(t.Context())
		var fe *cmderr.ForbiddenError
		if !errors.As(err, &fe) || fe.Verb != "list" || fe.Resource != "secrets" {
			t.Errorf("Run() = %v, want the list of secrets named", err)
		}
		for _, a := range client.Actions() {
			if a.GetVerb() == "delete" {
				t.Errorf("a refused LIST deleted %v", a)
			}
		}
		if out.Len() != 0 {
			t.Errorf("stdout %q", out)
		}
	})
}
