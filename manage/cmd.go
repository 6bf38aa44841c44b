package manage

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-concourse/kubectl-concourse/kernel"
)

// wire gives cmd the three phases (Complete is the shared Options'), no
// positional arguments and completion.
func wire(cmd *cobra.Command, c kernel.Command, getter genericclioptions.RESTClientGetter) *cobra.Command {
	return kernel.Wire(kernel.NoArgs(cmd), getter, c)
}

// addNonInteractive binds fly's --non-interactive. fly's -n is kubectl's
// --namespace here, so its shorthand is -y.
func addNonInteractive(fs *pflag.FlagSet, o *Options, what string) {
	fs.BoolVarP(&o.NonInteractive, "non-interactive", "y", o.NonInteractive,
		what+" without confirmation (fly's -n; -n is kubectl's --namespace here)")
}

// NewCmdClearTaskCache is fly clear-task-cache.
func NewCmdClearTaskCache(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &ClearTaskCacheOptions{Options: newOptions(streams)}
	cmd := &cobra.Command{
		Use:     "clear-task-cache -j PIPELINE/JOB -s STEP [-c PATH]",
		Aliases: []string{"ctc"},
		Short:   "Delete the task cache PVCs of one step of a job",
		Long: templates.LongDesc(`
			Delete the PVCs of the label contract that hold the task caches of one step of one job
			(volume type task-cache, the job's pipeline, instance vars and team, the step's name; with
			-c only the cache at that path), in the current namespace. Names that are stored encoded
			are matched exactly through their annotations, so a look-alike pipeline, job or step keeps
			its caches. It says what it will remove, asks on a terminal unless --non-interactive,
			prints each PVC it deleted, waits until they are gone and prints fly's "N caches
			removed"; a cache that a running pod still uses is removed only when the pod ends, and
			the command names the pod and fails. Whether the runtime recreates a deleted cache is
			up to the runtime.`),
		Example: templates.Examples(`
			# Clear the caches of step "test" of main/unit
			kubectl concourse clear-task-cache -j main/unit -s test

			# Only the cache at one path, without asking
			kubectl concourse ctc -j main/unit -s test -c .gradle -y`),
	}
	fs := cmd.Flags()
	fs.StringVarP(&o.Job, "job", "j", o.Job, "Job to clear cache from, as PIPELINE/JOB or PIPELINE/KEY:VALUE,.../JOB")
	fs.StringVarP(&o.Step, "step", "s", o.Step, "Step name to clear cache from")
	fs.StringVarP(&o.CachePath, "cache-path", "c", o.CachePath, "Cache directory to clear out")
	fs.StringVar(&o.Team, "team", o.Team, "Name of the team to which the pipeline belongs")
	addNonInteractive(fs, &o.Options, "Destroy the task cache(s)")
	return wire(cmd, o, getter)
}

// NewCmdClearResourceCache is fly clear-resource-cache.
func NewCmdClearResourceCache(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &ClearResourceCacheOptions{Options: newOptions(streams)}
	cmd := &cobra.Command{
		Use:     "clear-resource-cache -r PIPELINE/RESOURCE [-v KEY:VALUE]",
		Aliases: []string{"crc"},
		Short:   "Delete the resource cache PVCs of a resource, or of one of its versions",
		Long: templates.LongDesc(`
			Delete the PVCs of the label contract that cache a resource's versions (volume type
			resource, the pipeline, instance vars, team and resource), in the current namespace; with
			-v, only those whose version annotation has each KEY:VALUE. It says what it will remove,
			asks on a terminal unless --non-interactive, and prints each PVC it deleted and fly's
			"N caches removed".`),
		Example: templates.Examples(`
			# Clear every cached version of main/repo
			kubectl concourse clear-resource-cache -r main/repo

			# Only the cache of one version
			kubectl concourse crc -r main/repo -v ref:abc123`),
	}
	fs := cmd.Flags()
	fs.StringVarP(&o.Resource, "resource", "r", o.Resource, "Name of a resource to clear cache, as PIPELINE/RESOURCE")
	fs.StringArrayVarP(&o.Version, "version", "v", o.Version, "Version of the resource, as KEY:VALUE (repeat for more keys); without it, every cache of the resource")
	fs.StringVar(&o.Team, "team", o.Team, "Name of the team to which the pipeline/resource belong")
	addNonInteractive(fs, &o.Options, "Destroy the resource cache(s)")
	return wire(cmd, o, getter)
}

// NewCmdLandWorker is fly land-worker.
func NewCmdLandWorker(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &LandWorkerOptions{Options: newOptions(streams)}
	cmd := &cobra.Command{
		Use:     "land-worker -w NODE",
		Aliases: []string{"lw"},
		Short:   "Let a worker finish its steps and take no new ones (cordon, no eviction)",
		Long: templates.LongDesc(`
			Land a worker, as fly does: the node is cordoned, so it takes no new pods, and nothing on
			it is evicted, so the steps it runs finish. workers shows it landing while unfinished
			Concourse step pods remain on it and landed once none do; then prune-worker, or the
			cluster's own tools, may take it away. kubectl drain would evict those very steps.`),
		Example: templates.Examples(`
			# Land a worker
			kubectl concourse land-worker -w node-3`),
	}
	cmd.Flags().StringVarP(&o.Worker, "worker", "w", o.Worker, "Worker (node) to land")
	return wire(cmd, o, getter)
}

// NewCmdPruneWorker is fly prune-worker.
func NewCmdPruneWorker(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &PruneWorkerOptions{Options: newOptions(streams)}
	cmd := &cobra.Command{
		Use:     "prune-worker (-w NODE | -a)",
		Aliases: []string{"pw"},
		Short:   "Remove the Node object of a stalled or landed worker",
		Long: templates.LongDesc(`
			Prune a worker: delete its Node object, only if the worker is stalled (not ready) or
			landed (cordoned with no unfinished step pods), and only as it was read: a node that
			changed in between (a controller taints a node that stalls) is read again and pruned
			only if it still may be. A running worker is refused with fly's "cannot prune running worker";
			a landing one too, until its steps finish. -a prunes every stalled worker. A node whose
			kubelet still runs registers itself again.`),
		Example: templates.Examples(`
			# Prune one stalled or landed worker
			kubectl concourse prune-worker -w node-3

			# Prune every stalled worker
			kubectl concourse pw -a`),
	}
	fs := cmd.Flags()
	fs.StringVarP(&o.Worker, "worker", "w", o.Worker, "Worker (node) to prune")
	fs.BoolVarP(&o.AllStalled, "all-stalled", "a", o.AllStalled, "Prune all stalled workers")
	return wire(cmd, o, getter)
}

// NewCmdAbortBuild is fly abort-build, on the build's pods.
func NewCmdAbortBuild(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &AbortBuildOptions{Options: newOptions(streams)}
	cmd := &cobra.Command{
		Use:     "abort-build (-j PIPELINE/JOB -b BUILD | -b BUILD_ID)",
		Aliases: []string{"ab"},
		Short:   "Delete the unfinished step pods of a build",
		Long: templates.LongDesc(`
			Abort a build as far as the cluster goes: its step pods that have not finished are
			deleted (each only if it is still the pod that was listed), after confirmation unless
			--non-interactive. Finished pods and their logs stay. What Concourse records of the build
			is its runtime's business: the runtime sees its step pods deleted. With -j, -b is the
			build number within the job; without, the global build id.`),
		Example: templates.Examples(`
			# Abort build 42 of main/unit
			kubectl concourse abort-build -j main/unit -b 42

			# Abort build id 1234 without asking
			kubectl concourse ab -b 1234 -y`),
	}
	fs := cmd.Flags()
	o.Target.AddFlags(fs, "job", "build", "url", "team", "all-namespaces")
	fs.Lookup("job").Usage = "Name of a job to cancel, as PIPELINE/JOB"
	fs.Lookup("build").Usage = "If job is specified: build number to cancel. If job not specified: build id"
	fs.Lookup("team").Usage = "Name of the team to which the pipeline belongs"
	fs.Lookup("all-namespaces").Usage = "Look for the build in every namespace"
	addNonInteractive(fs, &o.Options, "Delete the pods")
	return wire(cmd, o, getter)
}
