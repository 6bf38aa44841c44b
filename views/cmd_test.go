package views

import (
	"errors"
	"fmt"
	"slices"
	"testing"

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
		"containers": NewCmdContainers, "volumes": NewCmdVolumes, "builds": NewCmdBuilds, "watch": NewCmdWatch,
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
