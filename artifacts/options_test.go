package artifacts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/kubectl-concourse/kubectl-concourse/internal/transfertest"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

func stepPod(workingDir string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", WorkingDir: workingDir}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

func TestOptionsRoundTripThroughPod(t *testing.T) {
	container := t.TempDir()
	ex := transfertest.Container{Bin: transfertest.BusyboxBin(t)}
	for _, quiet := range []bool{true, false} {
		streams, _, out, errOut := genericiooptions.NewTestIOStreams()
		local := filepath.Join(t.TempDir(), "in")
		transfertest.WriteTree(t, local, map[string]string{"f": strings.Repeat("data", 1000), "d/g": "g"})

		up := NewUploadOptions(streams)
		up.Client, up.Executor, up.Namespace = fake.NewClientset(stepPod(container)), ex, "ns"
		up.Target = selector.Target{Pod: "p"}
		up.LocalPath, up.Quiet, up.Progress = local, quiet, !quiet
		up.isTerminal = func(any) bool { return false }
		if err := up.Validate(); err != nil {
			t.Fatal(err)
		}
		if err := up.Run(context.Background()); err != nil {
			t.Fatalf("upload: %v", err)
		}
		down := NewDownloadOptions(streams)
		down.Client, down.Executor, down.Namespace = up.Client, ex, "ns"
		down.Target = selector.Target{Pod: "p"}
		down.RemotePath, down.LocalDir, down.Quiet, down.Progress = "in", t.TempDir(), quiet, !quiet
		down.isTerminal = up.isTerminal
		if err := down.Run(context.Background()); err != nil {
			t.Fatalf("download: %v", err)
		}
		if got, want := transfertest.Tree(t, filepath.Join(down.LocalDir, "in")), transfertest.Tree(t, local); !reflect.DeepEqual(got, want) {
			t.Errorf("round trip = %v, want %v", got, want)
		}
		if out.Len() != 0 {
			t.Errorf("stdout = %q, want nothing: data only goes there", out.String())
		}
		if quiet && errOut.Len() != 0 || !quiet && !strings.Contains(errOut.String(), "uploading in") {
			t.Errorf("quiet=%v: stderr = %q", quiet, errOut.String())
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*UploadOptions)
		want string
	}{
		{name: "ok", mod: func(o *UploadOptions) {}},
		{name: "no path", mod: func(o *UploadOptions) { o.LocalPath = "" }, want: "LOCAL_PATH"},
		{name: "bad compress", mod: func(o *UploadOptions) { o.Compress = "zstd" }, want: "--compress"},
		{name: "quiet and progress", mod: func(o *UploadOptions) { o.Quiet, o.Progress = true, true }, want: "--quiet"},
		{name: "no helper image", mod: func(o *UploadOptions) { o.HelperImage = "" }, want: "--helper-image"},
		{name: "bad target", mod: func(o *UploadOptions) { o.Target = selector.Target{Job: "a/b", Check: "a/c"} }, want: "--check"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewUploadOptions(genericiooptions.NewTestIOStreamsDiscard())
			o.LocalPath = "x"
			tt.mod(o)
			err := o.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// noShellExecutor is a distroless container: every exec fails as the node
// does when sh is missing.
type noShellExecutor struct{ podexec.Executor }

func (noShellExecutor) Exec(context.Context, podexec.Request, podexec.Streams, remotecommand.TerminalSizeQueue) error {
	return errors.New(`exec: "sh": executable file not found in $PATH`)
}

func TestNoShellNeedsHelperPermission(t *testing.T) {
	pod := stepPod("/w")
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "work", MountPath: "/w"}}
	client := fake.NewClientset(pod)
	client.PrependReactor("patch", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods/ephemeralcontainers"}, "p", errors.New("no"))
	})
	o := NewDownloadOptions(genericiooptions.NewTestIOStreamsDiscard())
	o.Client, o.Executor, o.Namespace = client, noShellExecutor{}, "ns"
	o.Target = selector.Target{Pod: "p"}
	o.RemotePath, o.LocalDir, o.Quiet = "/w/out", t.TempDir(), true
	o.isTerminal = func(any) bool { return false }
	err := o.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "pods/ephemeralcontainers") || !strings.Contains(err.Error(), "no sh or tar") {
		t.Fatalf("Run() = %v, want the missing sh and the missing permission named", err)
	}
	if entries, _ := os.ReadDir(o.LocalDir); len(entries) != 0 {
		t.Errorf("left %v", entries)
	}
}
