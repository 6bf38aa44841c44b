package logs

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-concourse/kubectl-concourse/kernel"
)

var (
	logsLong = templates.LongDesc(`
		Print the log of a Concourse build step, found by fly's flags, or of every step of
		a build: one LIST of pods by label selector, then the pods' log subresource, as
		kubectl logs reads it. A step that has finished is included for as long as its pod
		exists. Without -b, the job's latest build; without -j, -b is a global build id;
		with neither, the latest one-off build.

		Only each step's last attempt is shown, unless --attempt names one or
		-a/--all-attempts asks for all. Steps are printed in the order they started; with
		several, each line is prefixed with its step's name (coloured on a terminal, as
		stern does). -f follows running steps until they end; with no step named it
		follows the whole build, its steps to come included, until every pod of it has
		ended and no next step came for --settle, or until interrupted (watch follows a
		build until it ends, as fly reads its end, with its exit status).`)

	logsExample = templates.Examples(`
		# Print the log of step "unit" of build 42 of job "test" in pipeline "main"
		kubectl concourse logs -j main/test -b 42 -s unit

		# Follow every step of the job's latest build, each line under its step's name
		kubectl concourse logs -j main/test -f

		# The last 20 lines of every attempt of a step, with timestamps
		kubectl concourse logs -j main/test -b 42 -s unit -a --tail 20 --timestamps

		# The log of the previous run of a restarted step container
		kubectl concourse logs --pod my-pod --container step-build --previous`)
)

// NewCmdLogs returns `logs`.
func NewCmdLogs(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := NewLogsOptions(streams)
	cmd := &cobra.Command{
		Use:     "logs [target flags] [-f] [--tail N] [--since DURATION]",
		Short:   "Print the logs of a build step, or of every step of a build",
		Long:    logsLong,
		Example: logsExample,
	}
	fs := cmd.Flags()
	// -a is --all-attempts here, so --attempt goes without its shorthand.
	o.Target.AddFlagsExcept(fs, []string{"attempt"})
	fs.BoolVarP(&o.Follow, "follow", "f", o.Follow, "Follow the logs: running steps until they end; a whole build until it is over (--settle) or interrupted")
	fs.DurationVar(&o.Settle, "settle", o.Settle, "With -f of a whole build: once all its pods ended, how long after the last one ended to wait for a next step before the build counts as over")
	fs.Int64Var(&o.Tail, "tail", o.Tail, "Lines of each log to show, from its end; -1 shows all")
	fs.DurationVar(&o.Since, "since", o.Since, "Only lines newer than this, e.g. 5s, 2m or 3h")
	fs.BoolVar(&o.Timestamps, "timestamps", o.Timestamps, "Start each line with its time (RFC3339)")
	fs.BoolVarP(&o.Previous, "previous", "p", o.Previous, "The log of the previous run of a restarted container")
	fs.BoolVarP(&o.AllAttempts, "all-attempts", "a", o.AllAttempts, "Every attempt of each step, not only the last")
	fs.BoolVar(&o.Prefix, "prefix", o.Prefix, "Prefix each line with its step's name even when there is one step")
	kernel.AddColorFlag(fs, &o.Color, "Colour the steps' names")
	return kernel.Wire(kernel.NoArgs(cmd), getter, o)
}
