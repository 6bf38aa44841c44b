// Package manage holds the commands that change cluster state the way
// fly's do for Concourse: clear-task-cache and clear-resource-cache delete
// cache PVCs of the contract, land-worker cordons a node, prune-worker
// removes a stalled or landed node, abort-build deletes a build's
// unfinished step pods. Each says what it is about to do, asks on a
// terminal, and reports what it changed.
package manage

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/moby/term"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-concourse/kubectl-concourse/kernel"
)

// Options is what every manage command shares: streams, the namespace and
// a client, and the confirmation.
type Options struct {
	genericiooptions.IOStreams

	NonInteractive bool // --non-interactive/-y: do not ask

	kernel.Cluster
	// IsTerminal reports whether the confirmation can be asked on In.
	IsTerminal func(io.Reader) bool
	// DeleteTimeout bounds the wait for deleted caches to be gone.
	DeleteTimeout time.Duration
}

// DefaultDeleteTimeout is how long a deleted cache may stay Terminating
// when no pod holds it (the API server removes its finalizer in moments).
const DefaultDeleteTimeout = 30 * time.Second

func newOptions(streams genericiooptions.IOStreams) Options {
	return Options{IOStreams: streams, DeleteTimeout: DefaultDeleteTimeout}
}

// Complete reads the namespace and builds what tests did not preset.
func (o *Options) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, _ []string) error {
	if err := o.Cluster.Complete(getter); err != nil {
		return err
	}
	if o.IsTerminal == nil {
		o.IsTerminal = func(r io.Reader) bool {
			_, isTerminal := term.GetFdInfo(r)
			return isTerminal
		}
	}
	return nil
}

// confirm prints warning and, unless --non-interactive, asks fly's "are
// you sure? [yN]: " (fly/commands/clear_task_cache.go:38-52): y or yes
// goes on, anything else prints fly's "bailing out" and changes nothing
// (the command exits 0, as fly's). Without a terminal to ask on, it
// refuses rather than guess: scripts say --non-interactive.
func (o *Options) confirm(warning string) (bool, error) {
	fmt.Fprintln(o.Out, warning)
	if o.NonInteractive {
		return true, nil
	}
	if !o.IsTerminal(o.In) {
		return false, errors.New("stdin is not a terminal to confirm on: pass --non-interactive (-y) to go on without asking")
	}
	fmt.Fprint(o.Out, "are you sure? [yN]: ")
	line, err := bufio.NewReader(o.In).ReadString('\n')
	if err != nil && err != io.EOF {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	fmt.Fprintln(o.Out, "bailing out")
	return false, nil
}
