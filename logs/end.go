package logs

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"

	"github.com/kubectl-concourse/kubectl-concourse/build"
)

// DefaultSettle is how long `logs -f` of a whole build and watch wait for
// the build's next step pod, once its last step ended, before they count
// the build as over: nothing in the pods says that no step is to come.
const DefaultSettle = 10 * time.Second

// buildEnd tells when a followed build is over: every pod of it has ended
// (Succeeded, Failed or deleted), and none came for settle after the last
// one ended.
type buildEnd struct {
	settle time.Duration
	clock  clock.Clock
	ends   map[string]time.Time // pod name -> when it ended; zero while it runs
	timer  clock.Timer          // armed while every pod has ended
	armed  time.Time            // the end the timer counts from
}

func newBuildEnd(settle time.Duration, c clock.Clock) *buildEnd {
	return &buildEnd{settle: settle, clock: c, ends: map[string]time.Time{}}
}

// see records pod as last seen (deleted: gone, so ended).
func (b *buildEnd) see(pod *corev1.Pod, deleted bool) {
	ended := deleted || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed || cannotStart(pod)
	switch {
	case !ended:
		b.ends[pod.Name] = time.Time{}
	case b.ends[pod.Name].IsZero():
		b.ends[pod.Name] = endOf(pod, b.clock.Now())
	}
}

// cannotStart: every step of pod errored before it ran (its image cannot
// be pulled), so the pod, Pending for good, has ended as a step.
func cannotStart(pod *corev1.Pod) bool {
	steps := build.Steps(pod)
	for _, s := range steps {
		if s.Status != build.Errored {
			return false
		}
	}
	return len(steps) > 0
}

// endOf is when pod's last container ended, else now (a pod that ended
// without one ending, or is deleted while it runs).
func endOf(pod *corev1.Pod, now time.Time) time.Time {
	var last time.Time
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range list {
			if t := s.State.Terminated; t != nil && t.FinishedAt.After(last) {
				last = t.FinishedAt.Time
			}
		}
	}
	if last.IsZero() {
		return now
	}
	return last
}

// over says whether the build is over now; while it is not, the timer
// runs only when every pod has ended, counting settle from the last end.
func (b *buildEnd) over() bool {
	var last time.Time
	for _, end := range b.ends {
		if end.IsZero() {
			b.stop()
			return false
		}
		if end.After(last) {
			last = end
		}
	}
	if len(b.ends) == 0 {
		b.stop()
		return false
	}
	wait := b.settle - b.clock.Since(last)
	if wait <= 0 {
		b.stop()
		return true
	}
	if b.timer == nil || !b.armed.Equal(last) {
		b.stop()
		b.timer, b.armed = b.clock.NewTimer(wait), last
	}
	return false
}

// settled fires when the build may be over; nil while it cannot be.
func (b *buildEnd) settled() <-chan time.Time {
	if b.timer == nil {
		return nil
	}
	return b.timer.C()
}

func (b *buildEnd) stop() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
}
