package helper

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func podWith(mutate func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "p"},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "inputs"}},
			Containers:     []corev1.Container{{Name: "task"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	mutate(p)
	return p
}

func waiting(reason, msg string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
}

// A pull's failures as containerd words them through the kubelet.
const (
	registryDown  = `failed to pull and unpack image "reg:5000/ci/unit:1": failed to resolve reference "reg:5000/ci/unit:1": failed to do request: Head "http://reg:5000/v2/ci/unit/manifests/1": dial tcp 10.0.0.9:5000: connect: connection refused`
	imageNotFound = `rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/library/nope:latest": failed to resolve reference "docker.io/library/nope:latest": docker.io/library/nope:latest: not found`
	pullDenied    = `failed to pull and unpack image "docker.io/acme/private:latest": failed to resolve reference "docker.io/acme/private:latest": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed`
)

func TestWaiting(t *testing.T) {
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	done := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}}
	tests := []struct {
		name      string
		container string
		pod       func(*corev1.Pod)
		want      string
		hope      Hope
	}{
		{"no status yet", "task", func(p *corev1.Pod) {}, "pending", Pending},
		{"unschedulable", "task", func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
				Reason: corev1.PodReasonUnschedulable, Message: "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."}}
		}, "unschedulable: 0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.", Pending},
		{"an init container pulls its image", "task", func(p *corev1.Pod) {
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "inputs", State: waiting("ErrImagePull", registryDown)}}
		}, "init container inputs: ErrImagePull: " + registryDown, Retrying},
		{"the registry has no such image", "task", func(p *corev1.Pod) {
			p.Spec.InitContainers = nil
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "task", State: waiting("ErrImagePull", imageNotFound)}}
		}, "ErrImagePull: " + imageNotFound, Hopeless},
		{"the registry denies the pull", "task", func(p *corev1.Pod) {
			p.Spec.InitContainers = nil
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "task", State: waiting("ErrImagePull", pullDenied)}}
		}, "ErrImagePull: " + pullDenied, Hopeless},
		{"an init container failed", "task", func(p *corev1.Pod) {
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "inputs",
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 143}}}}
		}, "init container inputs: ended (Error, exit code 143)", Hopeless},
		{"the init container itself runs", "inputs", func(p *corev1.Pod) {
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "inputs", State: running}}
		}, "", Running},
		{"past the init containers", "task", func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodRunning
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "inputs", State: done}}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "task", State: running}}
		}, "", Running},
		{"an image that can never be pulled", "task", func(p *corev1.Pod) {
			p.Spec.InitContainers = nil
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "task", State: waiting("InvalidImageName", "bad \x1b[31m")}}
		}, "InvalidImageName: bad ^[[31m", Hopeless},
		{"backing off", "task", func(p *corev1.Pod) {
			p.Spec.InitContainers = nil
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "task", State: waiting("ImagePullBackOff", "")}}
		}, "ImagePullBackOff", Retrying},
		{"creating", "task", func(p *corev1.Pod) {
			p.Spec.InitContainers = nil
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "task", State: waiting("ContainerCreating", "")}}
		}, "ContainerCreating", Pending},
		{"the pod finished", "task", func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }, "the pod has Failed", Hopeless},
		{"the pod is deleted", "task", func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{} }, "the pod is being deleted", Hopeless},
		{"an ephemeral container", "debugger", func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodRunning
			p.Spec.InitContainers = nil
			p.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{{Name: "debugger", State: running}}
		}, "", Running},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why, hope := Waiting(podWith(tt.pod), tt.container)
			if why != tt.want || hope != tt.hope {
				t.Errorf("Waiting() = %q, %d; want %q, %d", why, hope, tt.want, tt.hope)
			}
		})
	}
}

// statusSequence makes the fake API server answer each GET of pod p with
// the next status, the last one repeating, as a kubelet moves it along. It
// refuses the watch, so that the waits poll (as under a Role without it).
func statusSequence(client *fake.Clientset, states ...func(*corev1.Pod)) {
	n := 0
	client.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		p := podWith(states[min(n, len(states)-1)])
		p.ResourceVersion = strconv.Itoa(n + 1)
		n++
		return true, p, nil
	})
	client.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), "", errors.New("no watch"))
	})
}

// With a watch, the wait sees the container run from the change that says
// so, without polling: the interval here is longer than the test. Given
// the pod as the caller last saw it (Seen), it watches from there without
// reading the pod first.
func TestWaitRunningWatches(t *testing.T) {
	for _, seen := range []bool{false, true} {
		t.Run(fmt.Sprintf("seen %v", seen), func(t *testing.T) {
			pending := podWith(func(*corev1.Pod) {})
			pending.ResourceVersion = "1"
			client := fake.NewClientset(pending)
			watching := make(chan struct{})
			client.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
				w, err := client.Tracker().Watch(a.GetResource(), a.GetNamespace())
				close(watching)
				return true, w, err
			})
			go func() {
				<-watching
				up := podWith(func(p *corev1.Pod) {
					p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "inputs", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
				})
				up.ResourceVersion = "2"
				if err := client.Tracker().Update(corev1.SchemeGroupVersion.WithResource("pods"), up, "ci"); err != nil {
					t.Error(err)
				}
			}()
			o := WaitOptions{Interval: time.Hour, Timeout: 10 * time.Second}
			if seen {
				o.Seen = pending
			}
			p, err := WaitRunning(t.Context(), client.CoreV1(), "ci", "p", "inputs", o)
			if err != nil || p.ResourceVersion != "2" {
				t.Fatalf("WaitRunning() = %v, %v; want the running pod", p, err)
			}
			gets := 0
			for _, a := range client.Actions() {
				if a.GetVerb() == "get" {
					gets++
				}
			}
			if want := map[bool]int{false: 1, true: 0}[seen]; gets != want {
				t.Errorf("%d GETs of the pod, want %d", gets, want)
			}
		})
	}
}

func TestWaitRunning(t *testing.T) {
	pull := func(p *corev1.Pod) {
		p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "inputs", State: waiting("ErrImagePull", "no such image")}}
	}
	up := func(p *corev1.Pod) {
		p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "inputs", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	}
	t.Run("impatient gives up on a failing pull", func(t *testing.T) {
		client := fake.NewClientset()
		statusSequence(client, pull, up)
		_, err := WaitRunning(t.Context(), client.CoreV1(), "ci", "p", "inputs", WaitOptions{Interval: time.Millisecond})
		if err == nil || err.Error() != "container inputs of pod ci/p: cannot start: ErrImagePull: no such image" {
			t.Errorf("WaitRunning() = %v", err)
		}
	})
	t.Run("patient waits through it and reports each reason once", func(t *testing.T) {
		client := fake.NewClientset()
		statusSequence(client, func(*corev1.Pod) {}, pull, pull, up)
		var reports []string
		p, err := WaitRunning(t.Context(), client.CoreV1(), "ci", "p", "inputs", WaitOptions{Interval: time.Millisecond, Patient: true,
			Report: func(why string, _ Hope) { reports = append(reports, why) }})
		if err != nil || p == nil {
			t.Fatalf("WaitRunning() = %v", err)
		}
		if want := []string{"pending", "ErrImagePull: no such image"}; strings.Join(reports, "|") != strings.Join(want, "|") {
			t.Errorf("reports %q, want %q", reports, want)
		}
	})
	t.Run("the timeout says what it waited for", func(t *testing.T) {
		client := fake.NewClientset()
		statusSequence(client, pull)
		_, err := WaitRunning(t.Context(), client.CoreV1(), "ci", "p", "inputs", WaitOptions{Interval: time.Millisecond, Patient: true, Timeout: 20 * time.Millisecond})
		if err == nil || !strings.Contains(err.Error(), "did not start within 20ms: ErrImagePull: no such image") || !errors.Is(err, ErrTimedOut) {
			t.Errorf("WaitRunning() = %v, want ErrTimedOut saying what it waited for", err)
		}
	})
	t.Run("unschedulable", func(t *testing.T) {
		client := fake.NewClientset()
		statusSequence(client, func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
				Reason: corev1.PodReasonUnschedulable, Message: "0/3 nodes are available"}}
		})
		_, err := WaitRunning(t.Context(), client.CoreV1(), "ci", "p", "inputs", WaitOptions{Interval: time.Millisecond, Timeout: 20 * time.Millisecond})
		if !errors.Is(err, ErrUnschedulable) || !errors.Is(err, ErrTimedOut) || errors.Is(err, ErrHostPathMissing) ||
			err.Error() != "container inputs of pod ci/p did not start within 20ms: unschedulable: 0/3 nodes are available" {
			t.Errorf("WaitRunning() = %v, want ErrUnschedulable and ErrTimedOut", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		client := fake.NewClientset()
		statusSequence(client, pull)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := WaitRunning(ctx, client.CoreV1(), "ci", "p", "inputs", WaitOptions{Patient: true}); !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimedOut) {
			t.Errorf("WaitRunning() with a cancelled context = %v, want context.Canceled", err)
		}
	})
}
