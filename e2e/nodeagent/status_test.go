package nodeagent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func running() corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
}

func exited(code int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}
}

func backingOff(code int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: exited(code),
	}
}

func TestComputePodStatus(t *testing.T) {
	sidecar := corev1.Container{Name: "side", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}
	tests := []struct {
		name        string
		policy      corev1.RestartPolicy
		init        []corev1.Container
		statuses    map[string]corev1.ContainerStatus
		wantPhase   corev1.PodPhase
		wantReady   corev1.ConditionStatus
		wantInit    corev1.ConditionStatus
		wantWaiting string // reason of container "a" when waiting
	}{
		{name: "nothing created yet", policy: corev1.RestartPolicyAlways, wantPhase: corev1.PodPending, wantReady: corev1.ConditionFalse, wantInit: corev1.ConditionTrue, wantWaiting: "ContainerCreating"},
		{name: "init running", policy: corev1.RestartPolicyAlways, init: []corev1.Container{{Name: "i"}},
			statuses: map[string]corev1.ContainerStatus{"i": {State: running()}}, wantPhase: corev1.PodPending, wantReady: corev1.ConditionFalse, wantInit: corev1.ConditionFalse, wantWaiting: "PodInitializing"},
		{name: "init failed, Never", policy: corev1.RestartPolicyNever, init: []corev1.Container{{Name: "i"}},
			statuses: map[string]corev1.ContainerStatus{"i": {State: exited(1)}}, wantPhase: corev1.PodFailed, wantReady: corev1.ConditionFalse, wantInit: corev1.ConditionFalse},
		{name: "init done, sidecar running", policy: corev1.RestartPolicyAlways, init: []corev1.Container{{Name: "i"}, sidecar},
			statuses:  map[string]corev1.ContainerStatus{"i": {State: exited(0)}, "side": {State: running(), Ready: true}, "a": {State: running(), Ready: true}, "b": {State: running(), Ready: true}},
			wantPhase: corev1.PodRunning, wantReady: corev1.ConditionTrue, wantInit: corev1.ConditionTrue},
		{name: "one running, one created", policy: corev1.RestartPolicyAlways,
			statuses: map[string]corev1.ContainerStatus{"b": {State: running(), Ready: true}}, wantPhase: corev1.PodPending, wantReady: corev1.ConditionFalse, wantInit: corev1.ConditionTrue, wantWaiting: "ContainerCreating"},
		{name: "crash looping", policy: corev1.RestartPolicyAlways,
			statuses: map[string]corev1.ContainerStatus{"a": backingOff(2), "b": {State: running(), Ready: true}}, wantPhase: corev1.PodRunning, wantReady: corev1.ConditionFalse, wantInit: corev1.ConditionTrue, wantWaiting: "CrashLoopBackOff"},
		{name: "all succeeded", policy: corev1.RestartPolicyOnFailure,
			statuses: map[string]corev1.ContainerStatus{"a": {State: exited(0)}, "b": {State: exited(0)}}, wantPhase: corev1.PodSucceeded, wantReady: corev1.ConditionFalse, wantInit: corev1.ConditionTrue},
		{name: "one failed, Never", policy: corev1.RestartPolicyNever,
			statuses: map[string]corev1.ContainerStatus{"a": {State: exited(0)}, "b": {State: exited(137)}}, wantPhase: corev1.PodFailed, wantReady: corev1.ConditionFalse, wantInit: corev1.ConditionTrue},
		{name: "all exited, Always restarts", policy: corev1.RestartPolicyAlways,
			statuses: map[string]corev1.ContainerStatus{"a": {State: exited(0)}, "b": {State: exited(1)}}, wantPhase: corev1.PodRunning, wantReady: corev1.ConditionFalse, wantInit: corev1.ConditionTrue},
		{name: "one failed, OnFailure restarts", policy: corev1.RestartPolicyOnFailure,
			statuses: map[string]corev1.ContainerStatus{"a": {State: exited(0)}, "b": {State: exited(1)}}, wantPhase: corev1.PodRunning, wantReady: corev1.ConditionFalse, wantInit: corev1.ConditionTrue},
	}
	now := metav1.Now()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{
				Spec: corev1.PodSpec{RestartPolicy: tt.policy, InitContainers: tt.init, Containers: []corev1.Container{{Name: "a", Image: "busybox"}, {Name: "b"}}},
				Status: corev1.PodStatus{Conditions: []corev1.PodCondition{
					{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
					{Type: corev1.PodReady, Status: tt.wantReady, LastTransitionTime: metav1.Unix(1, 0)},
				}},
			}
			statuses := map[string]corev1.ContainerStatus{}
			for name, s := range tt.statuses {
				s.Name = name
				statuses[name] = s
			}
			got := computePodStatus(pod, podState{sandboxReady: true, statuses: statuses}, now)
			if got.Phase != tt.wantPhase {
				t.Errorf("phase = %s, want %s", got.Phase, tt.wantPhase)
			}
			conds := map[corev1.PodConditionType]corev1.PodCondition{}
			for _, c := range got.Conditions {
				conds[c.Type] = c
			}
			if _, ok := conds[corev1.PodScheduled]; !ok {
				t.Error("PodScheduled condition (the scheduler's) was dropped")
			}
			if c := conds[corev1.PodReady]; c.Status != tt.wantReady || !c.LastTransitionTime.Equal(&metav1.Time{Time: metav1.Unix(1, 0).Time}) {
				t.Errorf("Ready = %s (since %v), want %s, transition time kept", c.Status, c.LastTransitionTime, tt.wantReady)
			}
			if c := conds[corev1.PodInitialized]; c.Status != tt.wantInit {
				t.Errorf("Initialized = %s, want %s", c.Status, tt.wantInit)
			}
			if len(got.ContainerStatuses) != 2 || got.ContainerStatuses[0].Name != "a" {
				t.Fatalf("container statuses = %+v", got.ContainerStatuses)
			}
			a := got.ContainerStatuses[0]
			if tt.wantWaiting != "" && (a.State.Waiting == nil || a.State.Waiting.Reason != tt.wantWaiting) {
				t.Errorf("container a state = %+v, want waiting %s", a.State, tt.wantWaiting)
			}
			if got.PodIP != podIP || got.HostIP != podIP {
				t.Errorf("IPs = %s/%s, want %s", got.PodIP, got.HostIP, podIP)
			}
		})
	}
}

func TestTerminatedStatusReasons(t *testing.T) {
	now := metav1.Now()
	tests := []struct {
		code       int
		kind       containerKind
		wantReason string
		wantReady  bool
	}{
		{0, kindRegular, "Completed", false},
		{1, kindRegular, "Error", false},
		{0, kindInit, "Completed", true},
		{137, kindInit, "Error", false},
	}
	for _, tt := range tests {
		s := terminatedStatus(corev1.ContainerStatus{ContainerID: "local://x"}, tt.code, "", "", now, now, tt.kind)
		if s.State.Terminated.Reason != tt.wantReason || s.Ready != tt.wantReady || s.State.Terminated.ContainerID != "local://x" {
			t.Errorf("terminatedStatus(%d, %v) = %+v ready %v, want reason %s ready %v", tt.code, tt.kind, s.State.Terminated, s.Ready, tt.wantReason, tt.wantReady)
		}
	}
}
