// Package logs implements `kubectl concourse logs` and `watch`: the log of one step, or
// of every step of a build, found by fly's flags, as `kubectl logs` and
// stern print them: finished steps included while their pods exist,
// following running ones, several at once each under its step's name.
package logs

import (
	"cmp"
	"context"
	"errors"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/utils/clock"

	"github.com/kubectl-concourse/kubectl-concourse/kernel"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// LogsOptions is the state of one logs.
type LogsOptions struct {
	genericiooptions.IOStreams

	Target      selector.Target
	Follow      bool
	Tail        int64 // lines from the end; -1: all
	Since       time.Duration
	Timestamps  bool
	Previous    bool
	AllAttempts bool
	Prefix      bool // a prefix even on one step's log
	Color       string
	Settle      time.Duration // -f of a whole build: how long after its pods ended to wait for a next step

	kernel.Cluster
	// IsTerminal decides --color auto, for a writer.
	IsTerminal func(io.Writer) bool
	Clock      clock.Clock // --settle's timer
}

// NewLogsOptions sets every default.
func NewLogsOptions(streams genericiooptions.IOStreams) *LogsOptions {
	return &LogsOptions{IOStreams: streams, Tail: -1, Color: "auto", Settle: DefaultSettle, Clock: clock.RealClock{}}
}

// Complete reads the namespace and builds the client when not preset.
func (o *LogsOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, _ []string) error {
	if o.IsTerminal == nil {
		o.IsTerminal = printers.AllowsColorOutput
	}
	return o.Cluster.Complete(getter)
}

// Validate checks the flags; it calls no API.
func (o *LogsOptions) Validate() error {
	switch {
	case o.Tail < -1:
		return errors.New("--tail must be -1 (all) or more")
	case o.Since < 0:
		return errors.New("--since must not be negative")
	case o.Settle < 0:
		return errors.New("--settle must not be negative")
	case o.AllAttempts && o.Target.Attempt != "":
		return errors.New("-a/--all-attempts and --attempt contradict each other")
	}
	if err := kernel.ValidateColor(o.Color); err != nil {
		return err
	}
	return o.Target.Validate()
}

// Run finds the steps and prints their logs: one after the other in the
// order they started, or, with -f, as they come.
func (o *LogsOptions) Run(ctx context.Context) error {
	ms, err := kernel.Resolve(ctx, o.Client.CoreV1(), o.Namespace, o.Target)
	if err != nil {
		return err
	}
	byName := o.Target.Pod != "" || o.Target.Handle != ""
	if !byName {
		// fly's rule: without -b, the job's latest build.
		latest := selector.LatestBuild(ms)
		ms = slices.DeleteFunc(ms, func(m selector.Match) bool { return !selector.SameBuild(m, latest) })
	}
	if !o.AllAttempts && o.Target.Attempt == "" {
		ms = lastAttempts(ms)
	}
	sortByStart(ms)
	// A whole build is followed until interrupted, as stern does (its
	// next steps' pods may come at any time), or until it is over.
	watchBuild := o.Follow && !byName && o.Target.Step == "" && o.Target.Container == ""
	p := o.newPrinter(ms, watchBuild)
	if !o.Follow {
		for _, m := range ms {
			if err := o.print(ctx, p, m); err != nil {
				return err
			}
		}
		return nil
	}
	return o.follow(ctx, p, ms, watchBuild)
}

// attemptKey is a step whatever its attempt.
type attemptKey struct{ build, step, stepType, resource, container string }

func attemptKeyOf(m selector.Match) attemptKey {
	return attemptKey{selector.BuildSelector(m), m.Step, m.StepType, m.Resource, m.Container}
}

// lastAttempts keeps the last attempt of each step.
func lastAttempts(ms []selector.Match) []selector.Match {
	last := map[attemptKey]selector.Match{}
	var order []attemptKey
	for _, m := range ms {
		k := attemptKeyOf(m)
		prev, seen := last[k]
		if !seen {
			order = append(order, k)
		}
		if !seen || selector.CompareNumbered(m.Attempt, prev.Attempt) > 0 {
			last[k] = m
		}
	}
	out := make([]selector.Match, 0, len(order))
	for _, k := range order {
		out = append(out, last[k])
	}
	return out
}

// sortByStart orders steps as they ran: by when their container started,
// those yet to start last, then as fly sorts them.
func sortByStart(ms []selector.Match) {
	selector.SortMatches(ms)
	slices.SortStableFunc(ms, func(a, b selector.Match) int {
		sa, sb := started(a), started(b)
		switch {
		case sa.IsZero() && sb.IsZero():
			return 0
		case sa.IsZero():
			return 1
		case sb.IsZero():
			return -1
		}
		return cmp.Compare(sa.UnixNano(), sb.UnixNano())
	})
}

// started is when the step's container started, zero when it has not.
func started(m selector.Match) time.Time {
	s := status(m.Pod, m.Container)
	switch {
	case s == nil:
	case s.State.Running != nil:
		return s.State.Running.StartedAt.Time
	case s.State.Terminated != nil:
		return s.State.Terminated.StartedAt.Time
	case s.LastTerminationState.Terminated != nil:
		return s.LastTerminationState.Terminated.StartedAt.Time
	}
	return time.Time{}
}

func status(pod *corev1.Pod, container string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == container {
				return &list[i]
			}
		}
	}
	return nil
}

// logOptions are the log request's for container.
func (o *LogsOptions) logOptions(container string, follow bool) *corev1.PodLogOptions {
	opts := &corev1.PodLogOptions{Container: container, Follow: follow, Timestamps: o.Timestamps, Previous: o.Previous}
	if o.Tail >= 0 {
		opts.TailLines = &o.Tail
	}
	if o.Since > 0 {
		secs := int64(o.Since.Round(time.Second) / time.Second)
		opts.SinceSeconds = &secs
	}
	return opts
}
