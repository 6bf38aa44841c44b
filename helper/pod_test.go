package helper

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// tetherExecutor answers every exec at once, draining stdin: a tether is
// told its word and ends.
type tetherExecutor struct {
	mu   sync.Mutex
	reqs []podexec.Request
}

func (e *tetherExecutor) Exec(_ context.Context, r podexec.Request, s podexec.Streams, _ remotecommand.TerminalSizeQueue) error {
	if r.Stdin && s.In != nil {
		_, _ = io.Copy(io.Discard, s.In)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reqs = append(e.reqs, r)
	if s.ErrOut != nil {
		_, _ = io.WriteString(s.ErrOut, podexec.ExitReport(0))
	}
	return nil
}

func scriptOf(r podexec.Request) string {
	script, _, _ := podexec.ScriptOf(r.Command)
	return script
}

// kubelet makes the fake API server run every container of the pods it
// is asked for, unless state says otherwise.
func kubelet(client *fake.Clientset, state func(*corev1.Pod) corev1.ContainerState) {
	client.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		obj, err := client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), a.GetNamespace(), a.(k8stesting.GetAction).GetName())
		if err != nil {
			return true, nil, err
		}
		p := obj.(*corev1.Pod).DeepCopy()
		if p.Name == "step" {
			return true, p, nil
		}
		st := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
		if state != nil {
			st = state(p)
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: p.Spec.Containers[0].Name, State: st}}
		return true, p, nil
	})
}

func finishedStep() *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "step"}, Status: corev1.PodStatus{Phase: corev1.PodFailed}}
}

func helperSpec(mutate ...func(*PodSpec)) PodSpec {
	s := PodSpec{Of: finishedStep(), Purpose: "files", Lifetime: time.Hour, Wait: WaitOptions{Interval: time.Millisecond, Timeout: time.Second},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "files", Image: "busybox", Command: []string{"replaced"}}},
			Volumes:    []corev1.Volume{NodeDirVolume("node", "/var/lib/kubelet/pods/u/volumes/kubernetes.io~empty-dir")},
		}}
	for _, m := range mutate {
		m(&s)
	}
	return s
}

func pods(t *testing.T, client *fake.Clientset) []corev1.Pod {
	t.Helper()
	list, err := client.CoreV1().Pods("ci").List(context.Background(), metav1.ListOptions{LabelSelector: selector.LabelManagedBy + "=" + selector.ManagedByPlugin})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func TestStartPodAndEnd(t *testing.T) {
	client := fake.NewClientset(finishedStep())
	kubelet(client, nil)
	ex := &tetherExecutor{}
	p, err := StartPod(t.Context(), client.CoreV1(), ex, helperSpec())
	if err != nil {
		t.Fatal(err)
	}
	created := pods(t, client)
	if len(created) != 1 {
		t.Fatalf("pods %v", created)
	}
	c := created[0]
	if !strings.HasPrefix(c.Name, "step-files-") || c.Labels[selector.LabelPurpose] != "files" || c.Annotations[selector.AnnotationHelperOf] != "step" ||
		c.Spec.RestartPolicy != corev1.RestartPolicyNever || *c.Spec.ActiveDeadlineSeconds != 3600 || c.Spec.Containers[0].Command[0] != "sh" {
		t.Errorf("pod %+v", c)
	}
	if p.Container != (podexec.Container{Namespace: "ci", Pod: c.Name, Name: "files"}) || p.Refused != nil {
		t.Errorf("StartPod() = %+v", p)
	}
	if err := p.End(t.Context()); err != nil {
		t.Fatal(err)
	}
	if left := pods(t, client); len(left) != 0 {
		t.Errorf("End left %v", left)
	}
	if len(ex.reqs) == 0 || !strings.Contains(scriptOf(ex.reqs[0]), "IFS= read -r word") {
		t.Errorf("the keeper was not tied: %+v", ex.reqs)
	}
}

// A cluster that refuses what the pod holds gets the fallback; RBAC's
// refusal is said as such, and nothing is left either way.
func TestStartPodRefused(t *testing.T) {
	psa := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "x", errors.New(`violates PodSecurity "baseline:latest": hostPath volumes (volume "node")`))
	rbac := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New(`User "dev" cannot create resource "pods" in API group "" in the namespace "ci"`))
	hostPaths := func(a k8stesting.Action, refusal error) (bool, runtime.Object, error) {
		for _, v := range a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).Spec.Volumes {
			if v.HostPath != nil {
				return true, nil, refusal
			}
		}
		return false, nil, nil
	}
	dropHostPaths := func(s *PodSpec) {
		s.Fallback = func(spec corev1.PodSpec) corev1.PodSpec { spec.Volumes = nil; return spec }
	}

	t.Run("policy, with a fallback", func(t *testing.T) {
		client := fake.NewClientset(finishedStep())
		kubelet(client, nil)
		client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) { return hostPaths(a, psa) })
		p, err := StartPod(t.Context(), client.CoreV1(), &tetherExecutor{}, helperSpec(dropHostPaths))
		var refused *cmderr.RefusedError
		if err != nil || !errors.As(p.Refused, &refused) {
			t.Fatalf("StartPod() = %v, refused %v", err, p.Refused)
		}
		if vols := pods(t, client)[0].Spec.Volumes; len(vols) != 0 {
			t.Errorf("the fallback kept %v", vols)
		}
		_ = p.End(t.Context())
	})
	t.Run("policy, without one", func(t *testing.T) {
		client := fake.NewClientset(finishedStep())
		client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) { return hostPaths(a, psa) })
		_, err := StartPod(t.Context(), client.CoreV1(), &tetherExecutor{}, helperSpec())
		var refused *cmderr.RefusedError
		var forbidden *cmderr.ForbiddenError
		if !errors.As(err, &refused) || errors.As(cmderr.ExplainForbidden(err, "ci", "create", "pods/exec"), &forbidden) {
			t.Errorf("StartPod() = %v, want a refusal that no Role explains", err)
		}
	})
	t.Run("RBAC", func(t *testing.T) {
		client := fake.NewClientset(finishedStep())
		client.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, rbac })
		_, err := StartPod(t.Context(), client.CoreV1(), &tetherExecutor{}, helperSpec(dropHostPaths))
		var forbidden *cmderr.ForbiddenError
		if !errors.As(err, &forbidden) || forbidden.Verb != "create" || forbidden.Resource != "pods" {
			t.Errorf("StartPod() = %v, want the missing permission", err)
		}
		creates := 0
		for _, a := range client.Actions() {
			if a.GetVerb() == "create" {
				creates++
			}
		}
		if creates != 1 {
			t.Errorf("%d creates: a pod RBAC refuses is not tried again", creates)
		}
	})
}

// A pod that cannot run is deleted, and says how it last was.
func TestStartPodThatCannotRun(t *testing.T) {
	client := fake.NewClientset(finishedStep())
	kubelet(client, func(*corev1.Pod) corev1.ContainerState {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "no such image"}}
	})
	_, err := StartPod(t.Context(), client.CoreV1(), &tetherExecutor{}, helperSpec())
	var se *StartError
	if !errors.As(err, &se) {
		t.Fatalf("StartPod() = %v, want a StartError", err)
	}
	if why, ok := se.ImageCannotRun(); !ok || why != "ImagePullBackOff: no such image" {
		t.Errorf("ImageCannotRun() = %q, %v", why, ok)
	}
	if left := pods(t, client); len(left) != 0 {
		t.Errorf("left %v", left)
	}
}

func TestStartPodKept(t *testing.T) {
	client := fake.NewClientset(finishedStep())
	kubelet(client, nil)
	ex := &tetherExecutor{}
	p, err := StartPod(t.Context(), client.CoreV1(), ex, helperSpec(func(s *PodSpec) { s.Keep, s.Keeper = true, ToolboxKeeper }))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.End(t.Context()); err != nil {
		t.Fatal(err)
	}
	kept := pods(t, client)
	if len(kept) != 1 || len(ex.reqs) != 0 {
		t.Fatalf("kept %d pods, %d execs", len(kept), len(ex.reqs))
	}
	if cmd := kept[0].Spec.Containers[0].Command; cmd[0] != ToolboxBin+"/sh" || !strings.Contains(cmd[2], "exec sleep") || cmd[4] != "3600" {
		t.Errorf("a kept pod sleeps its lifetime, tied to nothing: %q", cmd)
	}
}

func TestVolumeEventsExplainAWait(t *testing.T) {
	pending := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "p", UID: "u1"}, Spec: corev1.PodSpec{NodeName: "node-1",
		Containers: []corev1.Container{{Name: "files"}}}, Status: corev1.PodStatus{Phase: corev1.PodPending}}
	event := func(uid, reason, msg string) *corev1.Event {
		return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: reason + uid}, Type: corev1.EventTypeWarning, Reason: reason, Message: msg,
			InvolvedObject: corev1.ObjectReference{UID: "u1"}, LastTimestamp: metav1.Now()}
	}
	client := fake.NewClientset(pending,
		event("u1", "FailedMount", `MountVolume.SetUp failed for volume "node" : hostPath type check failed: /x is not a directory`))
	_, err := WaitRunning(t.Context(), client.CoreV1(), "ci", "p", "files", WaitOptions{Interval: time.Millisecond, Timeout: 5 * time.Second, Events: client.CoreV1()})
	if err == nil || !strings.Contains(err.Error(), "cannot start: FailedMount: MountVolume.SetUp failed") || !errors.Is(err, ErrHostPathMissing) {
		t.Errorf("WaitRunning() = %v, want the mount's failure at once, as ErrHostPathMissing", err)
	}
	if errors.Is(err, ErrTimedOut) || errors.Is(err, ErrUnschedulable) {
		t.Errorf("WaitRunning() = %v: a missing host path is neither a timeout nor unschedulable", err)
	}
}

// The kubelet says a hostPath volume's path is missing (or of another
// type) only in words, which pkg/volume/hostpath's checkType writes.
func TestHostPathTypeCheckFailed(t *testing.T) {
	for msg, want := range map[string]bool{
		`MountVolume.SetUp failed for volume "node" : hostPath type check failed: /var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir is not a directory`: true,
		`MountVolume.SetUp failed for volume "cache" : rpc error: code = Internal desc = attach failed`:                                                        false,
	} {
		if got := hostPathTypeCheckFailed(msg); got != want {
			t.Errorf("hostPathTypeCheckFailed(%q) = %v, want %v", msg, got, want)
		}
	}
}
