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

// NewCmdWatch is fly watch: a build's step logs until it ends.
func NewCmdWatch(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := NewWatchOptions(streams)
	cmd := &cobra.Command{
		Use:     "watch -j PIPELINE/JOB [-b BUILD]",
		Aliases: []string{"w"},
		Short:   "Follow the step logs of a build until it ends",
		Long: templates.LongDesc(`
			Print the logs of a build's steps in the order they started, each under a header naming
			the step, following running steps and new ones until the build ends. Without -b, the
			job's latest build; without -j, -b is a global build id; with neither, the latest
			one-off build; -u takes the build's or job's URL from the web UI.

			The exit status is fly's: the exit status of the last task to finish (a failed task that
			exited 42 exits 42), else 0 succeeded, 1 failed, 2 errored, 3 aborted.

			When Tekton ran the build, its PipelineRun (or TaskRun) says when the build is over and
			how it ended, and the steps it skipped are named. Otherwise nothing in the pods says that
			a build has no more steps to come: a failed, errored or aborted step ends it, and once
			every step has succeeded, watch waits until --settle after the last one ended for the
			next step's pod before it calls the build succeeded.`),
		Example: templates.Examples(`
			# Follow the latest build of a job
			kubectl concourse watch -j main/unit

			# Follow build 42 of the job, each line with its time
			kubectl concourse watch -j main/unit -b 42 -t`),
	}
	fs := cmd.Flags()
	o.Target.AddFlags(fs, "job", "build", "url", "team", "all-namespaces")
	fs.BoolVarP(&o.Timestamps, "timestamps", "t", o.Timestamps, "Print with local timestamp")
	// The shared flags speak of a step's container; watch follows a build.
	fs.Lookup("team").Usage = "Name of the team the build belongs to"
	fs.Lookup("all-namespaces").Usage = "Look for the build in every namespace"
	fs.Lookup("url").Usage = "URL for the build or job to watch, as copied from the Concourse web UI"
	fs.DurationVar(&o.Settle, "settle", o.Settle, "Once every step ended, how long after the last one ended to wait for a next step (a hook) before the build counts as over")
	kernel.AddColorFlag(fs, &o.Color, "Colour headers and the status")
	return kernel.Wire(kernel.NoArgs(cmd), getter, o)
}
