package hijack

import (
	"errors"
	"strings"
	"testing"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-concourse/kubectl-concourse/helper"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// startContainers makes the fake API server report every container and
// ephemeral container of a pod as running, as a kubelet would; created
// pods get a name from generateName.
func startContainers(client *fake.Clientset) {
	client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		if p.Name == "" {
			p.Name = p.GenerateName + "x1y2z"
		}
		return false, nil, nil
	})
	client.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		obj, err := client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), a.GetNamespace(), a.(k8stesting.GetAction).GetName())
		if err != nil {
			return true, nil, err
		}
		p := obj.(*corev1.Pod).DeepCopy()
		running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
		p.Status.ContainerStatuses, p.Status.EphemeralContainerStatuses = nil, nil
		for _, c := range p.Spec.Containers {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, State: running})
		}
		for _, c := range p.Spec.EphemeralContainers {
			p.Status.EphemeralContainerStatuses = append(p.Status.EphemeralContainerStatuses, corev1.ContainerStatus{Name: c.Name, State: running})
		}
		p.Status.Phase = corev1.PodRunning
		return true, p, nil
	})
}

func TestDebugEphemeral(t *testing.T) {
	ex := &fakeExecutor{}
	o, client, _, errOut := newOptions(t, ex, stepPod("unit-42", "test", "42", "unit"))
	startContainers(client)
	o.Target, o.Debug, o.Command = selector.Target{Job: "main/test", Build: "42", Step: "unit"}, true, []string{"ls"}
	if err := o.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	pod, err := client.CoreV1().Pods("ci").Get(t.Context(), "unit-42", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.EphemeralContainers) != 1 {
		t.Fatalf("ephemeral containers: %+v", pod.Spec.EphemeralContainers)
	}
	ec := pod.Spec.EphemeralContainers[0]
	if ec.TargetContainerName != "main" || ec.Image != "busybox" || ec.WorkingDir != "/tmp/build/abc" ||
		len(ec.VolumeMounts) != 1 || ec.VolumeMounts[0].MountPath != "/tmp/build" {
		t.Errorf("ephemeral container %+v", ec)
	}
	sessions := ex.sessions()
	tethers, words := ex.tethers()
	if len(sessions) != 1 || len(tethers) != 1 {
		t.Fatalf("exec requests %+v, want the session and the keeper's tether", ex.got)
	}
	if session := sessions[0]; session.Container != ec.Name || !equal(session.Command, shellArgv("xterm-256color", "/tmp/build/abc", "explicit", "ls")) {
		t.Errorf("session %+v", session)
	}
	if tethers[0].Container != ec.Name || words[0] != "stop" {
		t.Errorf("keeper not stopped: %+v told %q", tethers[0], words[0])
	}
	if !strings.Contains(errOut.String(), "targets container main of pod ci/unit-42") {
		t.Errorf("stderr %q", errOut.String())
	}
}

func TestDebugCopy(t *testing.T) {
	finished := func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodFailed
		p.Spec.Containers[0].Image = "golang:1.26"
		p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "b"}}
		p.Spec.Containers[0].LivenessProbe = &corev1.Probe{}
	}
	for _, keep := range []bool{false, true} {
		t.Run(map[bool]string{false: "removed", true: "kept"}[keep], func(t *testing.T) {
			// The copy's report of its emptyDirs, then the session.
			ex := &fakeExecutor{stdout: "gone work\n", results: []error{nil, exitCode(2)}}
			o, client, _, errOut := newOptions(t, ex, stepPod("unit-42", "test", "42", "unit", finished))
			startContainers(client)
			o.Target, o.Debug, o.Keep, o.KubeletDir = selector.Target{Job: "main/test", Build: "42", Step: "unit"}, true, keep, "/var/lib/k"
			err := o.Run(t.Context())
			if st := exitStatusOf(err); st != 2 {
				t.Fatalf("Run() = %v, want the session's exit status 2", err)
			}
			var created *corev1.Pod
			for _, a := range client.Actions() {
				if c, ok := a.(k8stesting.CreateAction); ok {
					created = c.GetObject().(*corev1.Pod)
				}
			}
			if created == nil {
				t.Fatal("no copy created")
			}
			c := created.Spec.Containers[0]
			if c.Name != "main" || c.Image != "golang:1.26" || c.WorkingDir != "/tmp/build/abc" || len(c.Env) != 1 || c.LivenessProbe != nil ||
				created.Labels[selector.LabelPipeline] != "" || created.Labels[selector.LabelManagedBy] != selector.ManagedByPlugin ||
				created.Annotations[selector.AnnotationHelperOf] != "unit-42" || created.Spec.NodeName != "node-1" {
				t.Errorf("copy %+v", created)
			}
			if c.Command[0] != helper.ToolboxBin+"/sh" {
				t.Errorf("the copy's keeper needs the image's sh: %q", c.Command)
			}
			var inits []string
			for _, ic := range created.Spec.InitContainers {
				inits = append(inits, ic.Name+"="+ic.Image)
			}
			if strings.Join(inits, " ") != "kubectl-concourse-tools=busybox kubectl-concourse-copy=busybox" {
				t.Errorf("init containers %v", inits)
			}
			var node string
			for _, v := range created.Spec.Volumes {
				if v.HostPath != nil {
					node = v.HostPath.Path
				}
			}
			if node != "/var/lib/k/pods/volumes/kubernetes.io~empty-dir" { // the fixture has no UID
				t.Errorf("the node's emptyDirs are read from %q", node)
			}
			if !strings.HasPrefix(created.Name, "unit-42-debug-") {
				t.Errorf("copy named %q", created.Name)
			}
			sessions := ex.sessions()
			if len(sessions) != 2 || sessions[1].Pod != created.Name ||
				!equal(sessions[1].Command, reportedArgv(toolboxCommand(nil, "/tmp/build/abc", "xterm-256color", helper.ToolboxBin))) {
				t.Errorf("exec %+v", ex.got)
			}
			if !strings.Contains(errOut.String(), "emptyDir work starts empty: the kubelet of node node-1 removed it") {
				t.Errorf("stderr %q", errOut.String())
			}
			if tethers, _ := ex.tethers(); len(tethers) != map[bool]int{false: 1, true: 0}[keep] {
				t.Errorf("keep=%v: tethers %+v", keep, tethers)
			}
			if created.Spec.ActiveDeadlineSeconds == nil {
				t.Errorf("the copy has no deadline")
			}
			_, err = client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), "ci", created.Name)
			if gone := err != nil; gone == keep {
				t.Errorf("keep=%v but copy gone=%v (stderr %q)", keep, gone, errOut.String())
			}
		})
	}
}

// A copy whose image cannot be pulled gives way to the helper image; one
// the user chose does not.
func TestDebugCopyFallsBackToTheHelperImage(t *testing.T) {
	ex := &fakeExecutor{}
	o, client, _, errOut := newOptions(t, ex, stepPod("unit-42", "test", "42", "unit", func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodSucceeded
		p.Spec.Containers[0].Image = "registry.gone/toolchain:1"
		p.Spec.Volumes = nil
		p.Spec.Containers[0].VolumeMounts = nil
	}))
	var images []string
	client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		images = append(images, a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).Spec.Containers[0].Image)
		return false, nil, nil
	})
	client.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		obj, err := client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), a.GetNamespace(), a.(k8stesting.GetAction).GetName())
		if err != nil {
			return true, nil, err
		}
		p := obj.(*corev1.Pod).DeepCopy()
		if p.Name == "unit-42" {
			return true, p, nil
		}
		state := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
		if p.Spec.Containers[0].Image != "busybox" {
			state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "not found"}}
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: state}}
		return true, p, nil
	})
	o.Target, o.Debug, o.Command = selector.Target{Job: "main/test", Build: "42", Step: "unit"}, true, []string{"true"}
	if err := o.Run(t.Context()); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if strings.Join(images, " ") != "registry.gone/toolchain:1 busybox" {
		t.Errorf("copies of images %v", images)
	}
	if !strings.Contains(errOut.String(), "cannot run here (ImagePullBackOff: not found); the copy runs the helper image busybox") {
		t.Errorf("stderr %q", errOut.String())
	}
	if pods, _ := client.CoreV1().Pods("ci").List(t.Context(), metav1.ListOptions{}); len(pods.Items) != 1 {
		t.Errorf("pods left: %d", len(pods.Items))
	}
}

func TestDebugImagePullFails(t *testing.T) {
	ex := &fakeExecutor{}
	o, client, _, _ := newOptions(t, ex, stepPod("unit-42", "test", "42", "unit", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }))
	client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).Name = "copy"
		return false, nil, nil
	})
	client.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.GetAction).GetName() != "copy" {
			return false, nil, nil
		}
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "copy", Namespace: "ci"}, Status: corev1.PodStatus{Phase: corev1.PodPending,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "no such image"}}}}}}
		return true, p, nil
	})
	o.Target, o.Debug, o.DebugImage = selector.Target{Job: "main/test", Build: "42", Step: "unit"}, true, "nope"
	err := o.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "cannot start: ImagePullBackOff: no such image") {
		t.Fatalf("Run() = %v", err)
	}
	if len(ex.got) != 0 {
		t.Errorf("exec despite failure: %+v", ex.got)
	}
	if _, err := client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), "ci", "copy"); err == nil {
		t.Error("copy left behind after a failure")
	}
}

// A copy whose node has no such kubelet directory (a wrong --kubelet-dir)
// fails at once with the kubelet's own words and says what to do, read
// from the wait's typed error, not its text.
func TestDebugCopyWrongKubeletDir(t *testing.T) {
	ex := &fakeExecutor{}
	missing := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "copy.1"}, Type: corev1.EventTypeWarning, Reason: "FailedMount",
		Message:        `MountVolume.SetUp failed for volume "kubectl-concourse-node" : hostPath type check failed: /wrong/pods/u1/volumes/kubernetes.io~empty-dir is not a directory`,
		InvolvedObject: corev1.ObjectReference{UID: "u-copy"}, LastTimestamp: metav1.Now()}
	o, client, _, _ := newOptions(t, ex, missing, stepPod("unit-42", "test", "42", "unit", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }))
	client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).Name = "copy"
		return false, nil, nil
	})
	client.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.GetAction).GetName() != "copy" {
			return false, nil, nil
		}
		return true, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "copy", Namespace: "ci", UID: "u-copy"},
			Spec: corev1.PodSpec{NodeName: "node-1"}, Status: corev1.PodStatus{Phase: corev1.PodPending}}, nil
	})
	o.Target, o.Debug, o.KubeletDir = selector.Target{Job: "main/test", Build: "42", Step: "unit"}, true, "/wrong"
	err := o.Run(t.Context())
	if !errors.Is(err, helper.ErrHostPathMissing) || !strings.Contains(err.Error(), "the kubelet of node node-1 does not keep pod unit-42 under /wrong") {
		t.Fatalf("Run() = %v, want the missing host path explained", err)
	}
}

func TestDebugDir(t *testing.T) {
	o := &HijackOptions{}
	tests := []struct {
		dir    string
		mounts []corev1.VolumeMount
		want   string
	}{
		{"/tmp/build/abc", []corev1.VolumeMount{{MountPath: "/tmp/build/"}}, "/tmp/build/abc"},
		{"/tmp/build/abc", []corev1.VolumeMount{{MountPath: "/tmp/buil"}}, ""},
		{"/tmp/build/abc", []corev1.VolumeMount{{MountPath: "/tmp/build", SubPath: "x"}}, ""},
		{"/work", []corev1.VolumeMount{{MountPath: "/work"}}, "/work"},
		{"", []corev1.VolumeMount{{MountPath: "/work"}}, ""},
	}
	for _, tt := range tests {
		if got := o.debugDir(&corev1.Container{WorkingDir: tt.dir, VolumeMounts: tt.mounts}); got != tt.want {
			t.Errorf("debugDir(%q, %+v) = %q, want %q", tt.dir, tt.mounts, got, tt.want)
		}
	}
}

func exitStatusOf(err error) int {
	var st cmderr.Status
	if errors.As(err, &st) {
		return st.Code
	}
	return -1
}

func equal(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }
