package views

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// A mistake in a filter or target flag is a usage error in every view, as
// in hijack: cli adds kubectl's "See ... -h" hint to it.
func TestFilterMistakesAreUsageErrors(t *testing.T) {
	getter := genericclioptions.NewConfigFlags(false)
	streams := genericiooptions.NewTestIOStreamsDiscard()
	commands := map[string]func(genericiooptions.IOStreams, genericclioptions.RESTClientGetter) *cobra.Command{
		"containers": NewCmdContainers, "volumes": NewCmdVolumes, "builds": NewCmdBuilds,
	}
	for name, newCmd := range commands {
		for _, args := range [][]string{{"-j", "a/"}, {"-j", "p/novalue/j"}} {
			cmd := newCmd(streams, getter)
			cmd.SetArgs(args)
			cmd.SilenceErrors, cmd.SilenceUsage = true, true
			err := cmd.Execute()
			var usage *cmderr.UsageError
			if !errors.As(err, &usage) {
				t.Errorf("%s %v: %v, want a usage error", name, args, err)
			}
		}
	}
	cmd := NewCmdWorkers(streams, getter)
	cmd.SetArgs([]string{"-l", "a in ("})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	var usage *cmderr.UsageError
	if err := cmd.Execute(); !errors.As(err, &usage) {
		t.Errorf("workers -l 'a in (': %v, want a usage error", err)
	}
}

func TestWorkerTable(t *testing.T) {
	node := func(name string) *corev1.Node { return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} }
	onNode := func(name, nodeName string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: name}, Spec: corev1.PodSpec{NodeName: nodeName}}
	}
	count := podCount{perNode: map[string]int{"a": 2}, unfinished: map[string]int{}, podNode: map[string]podPlace{"ci/p1": {node: "a"}, "ci/p2": {node: "a"}}}
	table := newWorkerTable([]*Worker{newWorker(node("a"), 0, 0), newWorker(node("b"), 0, 0)}, count, selector.Scope{})
	names := func(rows []item) []string {
		var out []string
		for _, r := range rows {
			w := r.(*Worker)
			out = append(out, fmt.Sprintf("%s=%d", w.Name, w.Containers))
		}
		return out
	}
	steps := []struct {
		name string
		do   func() []item
		want []string
	}{
		{"a pod moves from a to b", func() []item { return table.podChanged(onNode("p1", "b"), false) }, []string{"a=1", "b=1"}},
		{"the same pod again: nothing changed", func() []item { return table.podChanged(onNode("p1", "b"), false) }, nil},
		{"a new pod on b", func() []item { return table.podChanged(onNode("p3", "b"), false) }, []string{"b=2"}},
		{"a pending pod: no node yet", func() []item { return table.podChanged(onNode("p4", ""), false) }, nil},
		{"a pod deleted", func() []item { return table.podChanged(onNode("p2", "a"), true) }, []string{"a=0"}},
		{"a node deleted", func() []item { return table.nodeChanged(node("b"), true) }, nil},
		{"a pod on a node no longer shown", func() []item { return table.podChanged(onNode("p3", "b"), true) }, nil},
		{"a node comes back", func() []item { return table.nodeChanged(node("b"), false) }, []string{"b=1"}},
	}
	for _, s := range steps {
		if got := names(s.do()); !slices.Equal(got, s.want) {
			t.Errorf("%s: rows %v, want %v", s.name, got, s.want)
		}
	}
}

// builds -c, --since and --until (fly/commands/builds.go:25, 266-284) and
// fly's "pipeline/job not found" (builds.go:167-169).
func TestBuildsWindow(t *testing.T) {
	ids := func(b *BuildsOptions) ([]string, error) {
		o := b.ViewOptions
		o.FlyJSON = true
		if err := b.Complete(nil, nil, nil); err != nil {
			return nil, err
		}
		if err := b.Validate(); err != nil {
			return nil, err
		}
		if err := b.Run(t.Context()); err != nil {
			return nil, err
		}
		var got []flyBuild
		if err := json.Unmarshal(o.Out.(*bytes.Buffer).Bytes(), &got); err != nil {
			return nil, err
		}
		var out []string
		for _, b := range got {
			out = append(out, strconv.Itoa(b.ID))
		}
		return out, nil
	}
	format := func(d time.Duration) string { return now.Add(-d).Format(flyInputTime) }
	tests := []struct {
		name    string
		set     func(*BuildsOptions)
		want    []string
		wantErr string
	}{
		{"count", func(b *BuildsOptions) { b.Count = 2 }, []string{"45", "44"}, ""},
		// Started within 16 minutes: ops/deploy 43 (10m ago, the bounds are inclusive) and one-off 45
		// (5m ago); 42 started 20m ago and 44 never started.
		{"since", func(b *BuildsOptions) { b.Since = format(16 * time.Minute) }, []string{"45", "43"}, ""},
		{"since and until", func(b *BuildsOptions) { b.Since, b.Until = format(16*time.Minute), format(10*time.Minute) }, []string{"43"}, ""},
		{"since after until", func(b *BuildsOptions) { b.Since, b.Until = format(time.Minute), format(time.Hour) }, nil, "Cannot have --since after --until"},
		{"fly's format", func(b *BuildsOptions) { b.Since = "yesterday" }, nil, "Since time should be in the format: 2006-01-02 15:04:05"},
		{"unknown job", func(b *BuildsOptions) { b.Job = "main/nope" }, nil, "pipeline/job not found"},
		{"unknown pipeline", func(b *BuildsOptions) { b.Pipeline = "nope" }, nil, "pipeline not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _, _ := newTestOptions(t, fixtures()...)
			o.AllNamespaces = true
			b := &BuildsOptions{ViewOptions: o}
			tt.set(b)
			got, err := ids(b)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Errorf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("builds %v (%v), want %v", got, err, tt.want)
			}
		})
	}
}
