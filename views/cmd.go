// Package views holds fly's read-only views rebuilt on Kubernetes objects:
// workers (nodes), containers (step containers of pods), volumes (PVCs and
// pod volumes) and builds (pods grouped by build).
package views

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-concourse/kubectl-concourse/kernel"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// listCommand wires a list view: flags, the three phases (ViewOptions'
// unless the view has flags of its own), completion.
func listCommand(v kernel.Command, o *ViewOptions, getter genericclioptions.RESTClientGetter, cmd *cobra.Command) *cobra.Command {
	o.AddFlags(cmd)
	return kernel.Wire(kernel.NoArgs(cmd), getter, v)
}

// NewCmdWorkers is fly workers: nodes as workers.
func NewCmdWorkers(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &WorkersOptions{NewViewOptions(streams)}
	cmd := &cobra.Command{
		Use:     "workers",
		Aliases: []string{"ws"},
		Short:   "List the nodes that run Concourse steps, as fly workers",
		Long: templates.LongDesc(`
			List the nodes that are Concourse workers: every node, or only those labelled
			` + selector.LabelWorker + `=true when any node is. CONTAINERS counts the Concourse pods
			bound to each node, in every namespace (only the namespace given with -n); STATE is
			running, landing (cordoned) or stalled (not ready).`),
		Example: templates.Examples(`
			# List the workers, sorted by name
			kubectl concourse workers

			# Add allocatable resources, pressure conditions and taints
			kubectl concourse workers -d

			# Follow changes
			kubectl concourse workers -w`),
	}
	cmd.Flags().BoolVarP(&o.Details, "details", "d", o.Details, "Print allocatable CPU, memory and pods, pressure conditions and taints")
	return listCommand(o, o.ViewOptions, getter, cmd)
}

// NewCmdContainers is fly containers: the step containers of Concourse pods.
func NewCmdContainers(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &ContainersOptions{NewViewOptions(streams)}
	cmd := &cobra.Command{
		Use:     "containers",
		Aliases: []string{"cs"},
		Short:   "List the step containers of Concourse builds and checks",
		Long: templates.LongDesc(`
			List one row per step container of the pods labelled ` + selector.LabelManagedBy + "=" + selector.ManagedByValue + `
			(one per step-* container of a Tekton pod), in the pods' order (namespace, then name).`),
		Example: templates.Examples(`
			# List the step containers of every namespace
			kubectl concourse containers -A

			# Only those of one job, with pod and container names
			kubectl concourse containers -j main/unit -o wide`),
	}
	o.addFilterFlags(cmd)
	return listCommand(o, o.ViewOptions, getter, cmd)
}

// NewCmdVolumes is fly volumes: Concourse PVCs and the volumes of Concourse pods.
func NewCmdVolumes(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &VolumesOptions{NewViewOptions(streams)}
	cmd := &cobra.Command{
		Use:     "volumes",
		Aliases: []string{"vs"},
		Short:   "List Concourse volumes: labelled PVCs and the volumes of step pods",
		Long: templates.LongDesc(`
			List the PVCs labelled ` + selector.LabelVolumeType + ` and the data volumes of Concourse pods
			(emptyDir, hostPath, ephemeral, CSI, PVC), sorted by worker then handle. IDENTIFIER follows
			fly's rules; -d prints the detailed identifier.`),
		Example: templates.Examples(`
			# List the volumes of the current namespace
			kubectl concourse volumes

			# With detailed identifiers (container:HANDLE,path:PATH)
			kubectl concourse volumes -d`),
	}
	cmd.Flags().BoolVarP(&o.Details, "details", "d", o.Details, "Print the detailed identifier")
	o.addFilterFlags(cmd)
	return listCommand(o, o.ViewOptions, getter, cmd)
}

// DefaultBuildCount is fly's default of builds -c (fly/commands/builds.go:25).
const DefaultBuildCount = 50

// NewCmdBuilds lists builds from their step pods.
func NewCmdBuilds(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &BuildsOptions{ViewOptions: NewViewOptions(streams), Count: DefaultBuildCount}
	cmd := &cobra.Command{
		Use:     "builds",
		Aliases: []string{"bs"},
		Short:   "List builds, from their step pods, newest first",
		Long: templates.LongDesc(`
			List the builds whose step pods exist, newest (highest build id) first, at most -c of
			them (fly's 50). STATUS is derived from the step containers: errored (a step cannot run,
			e.g. its image cannot be pulled), failed (a step exited non-zero), aborted (a step was
			deleted while running), started, succeeded or pending. When Tekton ran the build, its
			PipelineRun's or TaskRun's conditions give the status, start and end, RETRIES (-o wide) counts its
			TaskRuns' retries and STEPS names the tasks it skipped.

			--since and --until keep the builds that started in that range, in fly's format and the
			local time zone. A --pipeline or -j that no pod names is an error, as fly's "pipeline/job
			not found": the pods are the only record of a build here.`),
		Example: templates.Examples(`
			# List the builds of every namespace
			kubectl concourse builds -A

			# The builds of one job, as fly's JSON
			kubectl concourse builds -j main/unit --json

			# The last 5 builds of a pipeline that started today after 09:00
			kubectl concourse builds -p main -c 5 --since '2026-12-01 09:00:00'`),
	}
	fs := cmd.Flags()
	fs.IntVarP(&o.Count, "count", "c", o.Count, "Number of builds you want to limit the return to (0 for all)")
	fs.StringVar(&o.Since, "since", o.Since, "Start of the range to filter builds. Expected time format of 'yyyy-mm-dd HH:mm:ss'")
	fs.StringVar(&o.Until, "until", o.Until, "End of the range to filter builds. Expected time format of 'yyyy-mm-dd HH:mm:ss'")
	o.addFilterFlags(cmd)
	return listCommand(o, o.ViewOptions, getter, cmd)
}
