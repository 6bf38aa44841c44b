package execute

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/kernel"
)

var (
	executeLong = templates.LongDesc(`
		Run a task file as a one-off build, as fly execute does: a pod labelled as a one-off build
		of the team (so hijack with no target flags enters it, and watch, builds and containers
		show it), working in /tmp/build/b1dda4c3 like Concourse's one-off task.

		Inputs (-i NAME=PATH, and the one named like the current directory, from it) are uploaded
		in parallel before the task's process starts, with upload's file selection (git's
		ignores unless --include-ignored), safety and sha256 verification, into an init container
		that holds the pod back; the task's image needs neither sh nor tar. The task's log streams
		live; when it ends, whatever its status, every -o NAME=PATH output is downloaded and
		replaces PATH whole, verified; then the pod and its Secret are deleted (--keep keeps them).

		Params reach the task only through a Secret the pod owns (a local environment variable
		named like a param overrides it, as in fly); no value is in the pod's spec. ((vars)) come
		from -v, -y and -l, with fly's precedence. The exit status is the task's; else 1 failed,
		2 errored (it could not start), 3 aborted. Ctrl-C aborts: the pod and Secret are deleted
		before it exits 3; a second Ctrl-C exits at once.

		With -o yaml or -o json and --dry-run=client, the objects are printed instead (a v1 List)
		and no cluster is needed.`)

	executeExample = templates.Examples(`
		# Run a task against the code in the current directory (an input named like it)
		kubectl concourse execute -c ci/unit.yml

		# Give inputs, bring an output back, pass arguments to the task's run.path
		kubectl concourse execute -c task.yml -i repo=. -i deps=../deps -o built=./out -- -v

		# Resolve ((vars)) and print the pod and Secret instead of creating them
		kubectl concourse execute -c task.yml -v version=1.2 -l vars.yml --dry-run=client -o yaml

		# Start it and return, then follow it
		kubectl concourse execute -c task.yml -b`)
)

// NewCmdExecute returns `execute` (alias e).
func NewCmdExecute(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := NewExecuteOptions(streams)
	cmd := &cobra.Command{
		Use:     "execute -c TASK_FILE [flags] [-- ARGS...]",
		Aliases: []string{"e"},
		Short:   "Run a task file as a one-off build, with local inputs and outputs",
		Long:    executeLong,
		Example: executeExample,
		Args:    argsAfterDash,
	}
	fs := cmd.Flags()
	fs.StringVarP(&o.ConfigFile, "config", "c", o.ConfigFile, "The task config to execute")
	fs.StringArrayVarP(&o.InputFlags, "input", "i", o.InputFlags, "An input to provide to the task, as NAME=PATH (PATH may be a glob naming one directory)")
	fs.StringArrayVarP(&o.OutputFlags, "output", "o", o.OutputFlags, "An output to fetch from the task, as NAME=PATH (replaced whole); with --dry-run, yaml or json")
	fs.StringVar(&o.Image, "image", o.Image, "Image to run the task in, instead of its image_resource's")
	fs.BoolVarP(&o.Privileged, "privileged", "p", o.Privileged, "Run the task with full privileges")
	fs.StringArrayVar(&o.Tags, "tag", o.Tags, "A worker tag the task's node must have (label tags.concourse-ci.org/TAG)")
	fs.StringArrayVarP(&o.StringVars, "var", "v", o.StringVars, "A string value for ((NAME)) in the task file, as NAME=VALUE")
	fs.StringArrayVarP(&o.YAMLVars, "yaml-var", "y", o.YAMLVars, "A YAML value for ((NAME)) in the task file, as NAME=YAML")
	fs.StringArrayVarP(&o.VarFiles, "load-vars-from", "l", o.VarFiles, "A YAML file of vars; later files win over earlier ones, -v and -y over files")
	fs.BoolVar(&o.IncludeIgnored, "include-ignored", o.IncludeIgnored, "Upload every file of the inputs, also those git ignores (and .git itself)")
	fs.BoolVar(&o.NoCache, "no-cache", o.NoCache, "Upload the inputs in full, without their warm caches (claims of the plugin's own that keep each input between runs: docs/caches.md)")
	fs.BoolVarP(&o.Background, "background", "b", o.Background, "Create the build, upload its inputs and return; the pod runs on (kubectl concourse gc removes it)")
	fs.StringVar(&o.Team, "team", o.Team, "Team of the one-off build (default: the namespace's label concourse-ci.org/team)")
	fs.BoolVar(&o.Keep, "keep", o.Keep, "Keep the pod and its Secret after the build")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "How long the pod may live at most (its activeDeadlineSeconds)")
	fs.DurationVar(&o.PendingTimeout, "pending-timeout", o.PendingTimeout, "How long the pod may wait to start (scheduling, image pulls) before the build errors")
	fs.StringVar(&o.DryRun, "dry-run", o.DryRun, `"client" prints the objects (-o yaml|json) instead of creating them`)
	fs.Lookup("dry-run").NoOptDefVal = "client"
	fs.StringVarP(&o.InputsFrom, "inputs-from", "j", o.InputsFrom, "fly's job to take inputs from: needs Concourse's API (give inputs with -i)")
	fs.StringArrayVarP(&o.InputMappings, "input-mapping", "m", o.InputMappings, "fly's input mapping for --inputs-from: needs Concourse's API (give inputs with -i)")
	_ = fs.MarkHidden("inputs-from")
	_ = fs.MarkHidden("input-mapping")
	kernel.AddHelperImageFlag(fs, &o.HelperImage, "Image of the containers that receive the inputs and hold the outputs (needs sh, tar and sha256sum)")
	return kernel.Wire(cmd, getter, o)
}

// argsAfterDash refuses an argument before --: only the task's arguments
// are positional, and they follow --.
func argsAfterDash(c *cobra.Command, args []string) error {
	if len(args) > 0 && c.ArgsLenAtDash() != 0 {
		return cmderr.Usagef("unexpected %q: arguments for the task go after --", args[0])
	}
	return nil
}
