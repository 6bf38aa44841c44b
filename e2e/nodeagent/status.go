package nodeagent

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podIP is every pod's (and the node's) address: containers share the host's
// network.
const podIP = "127.0.0.1"

// podState is what the agent knows about a pod, from which its status is
// computed.
type podState struct {
	sandboxReady bool // volumes and root filesystems are set up
	startTime    *metav1.Time
	// statuses holds the containers the agent has dealt with, by name; the
	// others are reported as waiting to be created.
	statuses map[string]corev1.ContainerStatus
}

func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// computePodStatus derives a pod's status the way the kubelet does, keeping
// the conditions other components own (PodScheduled, ...).
func computePodStatus(pod *corev1.Pod, st podState, now metav1.Time) corev1.PodStatus {
	status := corev1.PodStatus{
		HostIP:    podIP,
		HostIPs:   []corev1.HostIP{{IP: podIP}},
		PodIP:     podIP,
		PodIPs:    []corev1.PodIP{{IP: podIP}},
		StartTime: st.startTime,
		QOSClass:  pod.Status.QOSClass,
	}

	waiting := func(reason string) corev1.ContainerState {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
	}
	statusOf := func(c *corev1.Container, notCreated string) corev1.ContainerStatus {
		if s, ok := st.statuses[c.Name]; ok {
			return s
		}
		return corev1.ContainerStatus{Name: c.Name, Image: c.Image, State: waiting(notCreated), Started: new(bool)}
	}

	var incompleteInit []string
	initFailed := false
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		s := statusOf(c, "PodInitializing")
		status.InitContainerStatuses = append(status.InitContainerStatuses, s)
		switch {
		case isSidecar(c) && s.State.Running != nil:
		case s.State.Terminated != nil && s.State.Terminated.ExitCode == 0 && !isSidecar(c):
		default:
			incompleteInit = append(incompleteInit, c.Name)
			if t := s.State.Terminated; t != nil && t.ExitCode != 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
				initFailed = true
			}
		}
	}
	notCreated := "ContainerCreating"
	if len(incompleteInit) > 0 {
		notCreated = "PodInitializing"
	}
	var unready []string
	var running, waitingCount, stopped, succeeded int
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		s := statusOf(c, notCreated)
		status.ContainerStatuses = append(status.ContainerStatuses, s)
		if !s.Ready {
			unready = append(unready, c.Name)
		}
		switch {
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			stopped++
			if s.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case s.LastTerminationState.Terminated != nil:
			// Waiting to restart after a previous run.
			stopped++
		default:
			waitingCount++
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		c := &pod.Spec.EphemeralContainers[i]
		ec := corev1.Container(c.EphemeralContainerCommon)
		status.EphemeralContainerStatuses = append(status.EphemeralContainerStatuses, statusOf(&ec, "ContainerCreating"))
	}

	switch {
	case initFailed:
		status.Phase = corev1.PodFailed
	case len(incompleteInit) > 0, waitingCount > 0:
		status.Phase = corev1.PodPending
	case running > 0:
		status.Phase = corev1.PodRunning
	case stopped > 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyAlways:
		status.Phase = corev1.PodRunning
	case stopped > 0 && stopped == succeeded:
		status.Phase = corev1.PodSucceeded
	case stopped > 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
		status.Phase = corev1.PodFailed
	case stopped > 0:
		status.Phase = corev1.PodRunning
	default:
		status.Phase = corev1.PodPending
	}

	terminal := status.Phase == corev1.PodSucceeded || status.Phase == corev1.PodFailed
	cond := func(t corev1.PodConditionType, ok bool, reason, msg string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now}
		if !ok {
			c.Status, c.Reason, c.Message = corev1.ConditionFalse, reason, msg
		}
		return c
	}
	readyReason, readyMsg := "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	if terminal {
		readyReason, readyMsg = "PodCompleted", ""
	}
	ours := []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, st.sandboxReady && !terminal, "", ""),
		cond(corev1.PodInitialized, len(incompleteInit) == 0 || (terminal && !initFailed), "ContainersNotInitialized",
			fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(incompleteInit, " "))),
		cond(corev1.ContainersReady, len(unready) == 0 && !terminal, readyReason, readyMsg),
		cond(corev1.PodReady, len(unready) == 0 && !terminal, readyReason, readyMsg),
	}
	if initFailed {
		ours[1].Reason = "PodCompleted"
		ours[1].Message = ""
	}
	for _, old := range pod.Status.Conditions {
		owned := false
		for i := range ours {
			if ours[i].Type == old.Type {
				owned = true
				if ours[i].Status == old.Status {
					ours[i].LastTransitionTime = old.LastTransitionTime
				}
			}
		}
		if !owned {
			status.Conditions = append(status.Conditions, old)
		}
	}
	status.Conditions = append(status.Conditions, ours...)
	return status
}
