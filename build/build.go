// Package build reads a Concourse build from what Kubernetes keeps of it:
// its step containers' states (Steps), the build's status as fly names it
// (StatusOf), and, when Tekton ran it, its PipelineRun or TaskRun (RunOf).
// The builds table (views) and watch (logs) read builds through it, so the
// two never disagree on how a build stands.
package build

import (
	"cmp"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// Build and step statuses, as fly names them.
const (
	Pending   = "pending"
	Started   = "started"
	Succeeded = "succeeded"
	Failed    = "failed"
	Errored   = "errored"
	Aborted   = "aborted"
)

// erroredReasons are waiting reasons that mean the step cannot run: Concourse
// calls that errored (the build's fault is not the task's exit status).
var erroredReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true, "ErrImageNeverPull": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
	"CrashLoopBackOff": true,
}

// Step is one step container as far as its build's status goes.
type Step struct {
	Pod, Container, Name string
	Kind                 string // the step's type: task, get, put, check, run
	Created              time.Time
	Status               string
	Started, Finished    time.Time // zero when unknown
	Reason               string    // why a step errored
	ExitCode             int32     // of a terminated container
}

// Steps reads the status of each step container of pod.
func Steps(pod *corev1.Pod) []Step {
	var steps []Step
	for _, m := range selector.Steps(pod) {
		s := Step{Pod: pod.Name, Container: m.Container, Name: cmp.Or(m.Step, m.Resource), Kind: m.StepType,
			Created: pod.CreationTimestamp.Time, Status: Pending}
		var cs *corev1.ContainerStatus
		for i := range pod.Status.ContainerStatuses {
			if pod.Status.ContainerStatuses[i].Name == m.Container {
				cs = &pod.Status.ContainerStatuses[i]
			}
		}
		switch {
		case cs != nil && cs.State.Terminated != nil:
			t := cs.State.Terminated
			s.Started, s.Finished, s.ExitCode = t.StartedAt.Time, t.FinishedAt.Time, t.ExitCode
			switch {
			case t.ExitCode == 0:
				s.Status = Succeeded
			case pod.DeletionTimestamp != nil:
				s.Status = Aborted
			default:
				s.Status = Failed
			}
		case cs != nil && cs.State.Running != nil:
			s.Started = cs.State.Running.StartedAt.Time
			s.Status = Started
			if pod.DeletionTimestamp != nil {
				s.Status = Aborted
			}
		case cs != nil && cs.State.Waiting != nil && erroredReasons[cs.State.Waiting.Reason]:
			s.Status, s.Reason = Errored, cs.State.Waiting.Reason
		case pod.Status.Phase == corev1.PodFailed:
			s.Status, s.Reason = Errored, cmp.Or(pod.Status.Reason, "pod failed")
		case pod.DeletionTimestamp != nil:
			s.Status = Aborted
		}
		steps = append(steps, s)
	}
	return steps
}

// InOrder is the steps of a build's pods (pod name -> its steps) in the
// order they were created.
func InOrder(pods map[string][]Step) []Step {
	var steps []Step
	for _, ps := range pods {
		steps = append(steps, ps...)
	}
	slices.SortStableFunc(steps, func(a, b Step) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Pod, b.Pod))
	})
	// Within a pod the container order stands: the sort is stable and each
	// pod's steps were appended in order.
	return steps
}

// Final reports whether a step or build status is final.
func Final(status string) bool {
	return status != Pending && status != Started
}

// StatusOf derives a build's status from its steps: the worst final status
// wins, then started, then succeeded; a build with no step started is
// pending.
func StatusOf(steps []Step) string {
	has := map[string]bool{}
	for _, s := range steps {
		has[s.Status] = true
	}
	for _, st := range []string{Errored, Failed, Aborted} {
		if has[st] {
			return st
		}
	}
	switch {
	case has[Started], has[Succeeded] && has[Pending]:
		return Started
	case has[Succeeded]:
		return Succeeded
	}
	return Pending
}

// StatusColour is the terminal colour of a status, as fly colours it; ""
// for none.
func StatusColour(status string) string {
	switch status {
	case Succeeded:
		return "\x1b[32m" // green
	case Failed:
		return "\x1b[31m" // red
	case Errored:
		return "\x1b[35m" // magenta
	case Aborted, Started:
		return "\x1b[33m" // yellow
	}
	return ""
}
