// Package complete offers shell completion of Concourse names (pipelines,
// jobs, builds, steps, resources, teams) read from the labels of the pods of
// the contract. kernel.Wire registers it for every command, with the run's
// clients.
package complete

import (
	"context"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// pageSize bounds each LIST made while completing.
const pageSize = 500

// Connect gives a completion its client and the current namespace: the
// run's (kernel's Clients), so that completion builds no client of its own.
type Connect func() (kubernetes.Interface, string, error)

// Register adds completion to whichever of these flags cmd has:
// -j/--job (PIPELINE/JOB), -c/--check (PIPELINE/RESOURCE), -b/--build,
// -s/--step, --pipeline, --team, --resource and --step-type. Candidates
// narrow down by the other flags already given (-b offers the builds of -j).
// Positional arguments are left to the command (cmd.ValidArgsFunction).
func Register(cmd *cobra.Command, conn Connect) {
	for flag, offer := range map[string]func(names, []step) []string{
		"job":       jobs,
		"check":     checks,
		"build":     builds,
		"step":      steps,
		"pipeline":  pipelines,
		"team":      teams,
		"resource":  resources,
		"step-type": func(names, []step) []string { return []string{"check", "get", "put", "run", "task"} },
	} {
		if cmd.Flags().Lookup(flag) == nil {
			continue
		}
		// Registering twice is an error cobra reports; the first one stands.
		_ = cmd.RegisterFlagCompletionFunc(flag, func(c *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			given := flagValues(c)
			list, err := list(c, conn)
			if err != nil {
				cobra.CompDebugln(err.Error(), true)
				return nil, cobra.ShellCompDirectiveError
			}
			return withPrefix(offer(given, list), toComplete), cobra.ShellCompDirectiveNoFileComp
		})
	}
}

// names are the values of the target flags given so far.
type names struct {
	pipeline, job, build, team string
	vars                       selector.InstanceVars
}

func flagValues(c *cobra.Command) names {
	get := func(name string) string {
		if f := c.Flags().Lookup(name); f != nil {
			return f.Value.String()
		}
		return ""
	}
	n := names{pipeline: get("pipeline"), build: get("build"), team: get("team"), job: get("job")}
	if p, vars, j, err := selector.ParseJob(n.job); err == nil {
		n.pipeline, n.vars, n.job = p, vars, j
	}
	return n
}

// step is what completion needs of one step container.
type step struct {
	selector.Match
	vars string
}

// list reads the step containers of the pods in the command's namespace
// (every namespace with -A), a page at a time.
func list(c *cobra.Command, conn Connect) ([]step, error) {
	ctx := c.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	client, namespace, err := conn()
	if err != nil {
		return nil, err
	}
	if f := c.Flags().Lookup("all-namespaces"); f != nil && f.Value.String() == "true" {
		namespace = metav1.NamespaceAll
	}
	opts := metav1.ListOptions{LabelSelector: labels.NewSelector().Add(selector.ManagedPods()).String(), Limit: pageSize}
	var all []step
	for {
		l, err := client.CoreV1().Pods(namespace).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		all = append(all, stepsOf(l.Items)...)
		if l.Continue == "" {
			return all, nil
		}
		opts.Continue = l.Continue
	}
}

func stepsOf(pods []corev1.Pod) []step {
	var out []step
	for i := range pods {
		for _, m := range selector.Steps(&pods[i]) {
			m.Pod = nil // keep the names, not the pods
			out = append(out, step{Match: m, vars: m.InstanceVars.String()})
		}
	}
	return out
}

// pipelineRef is fly's PIPELINE or PIPELINE/VARS.
func (s step) pipelineRef() string {
	if s.vars == "" {
		return s.Pipeline
	}
	return s.Pipeline + "/" + s.vars
}

// of reports whether s belongs to the pipeline, job and team given so far.
func (n names) of(s step) bool {
	return (n.team == "" || s.Team == n.team) && (n.pipeline == "" || s.Pipeline == n.pipeline) &&
		(n.vars == nil || s.InstanceVars.Equal(n.vars)) && (n.job == "" || s.Job == n.job)
}

func jobs(n names, ss []step) []string {
	return collect(ss, func(s step) string {
		if s.Job == "" || (n.team != "" && s.Team != n.team) {
			return ""
		}
		return s.pipelineRef() + "/" + s.Job
	})
}

func checks(n names, ss []step) []string {
	return collect(ss, func(s step) string {
		if s.StepType != "check" || s.Resource == "" || (n.team != "" && s.Team != n.team) {
			return ""
		}
		return s.pipelineRef() + "/" + s.Resource
	})
}

// builds offers the build names of the job given, else global build ids;
// newest first.
func builds(n names, ss []step) []string {
	out := collect(ss, func(s step) string {
		if !n.of(s) {
			return ""
		}
		if n.job != "" {
			return s.Build
		}
		return s.BuildID
	})
	slices.SortStableFunc(out, func(a, b string) int { return selector.CompareNumbered(b, a) })
	return out
}

func steps(n names, ss []step) []string {
	return collect(ss, func(s step) string {
		if !n.of(s) || (n.build != "" && s.Build != n.build && s.BuildID != n.build) {
			return ""
		}
		return s.Step
	})
}

func pipelines(n names, ss []step) []string {
	return collect(ss, func(s step) string {
		if n.team != "" && s.Team != n.team {
			return ""
		}
		return s.Pipeline
	})
}

func teams(_ names, ss []step) []string {
	return collect(ss, func(s step) string { return s.Team })
}

func resources(n names, ss []step) []string {
	return collect(ss, func(s step) string {
		if !n.of(s) {
			return ""
		}
		return s.Resource
	})
}

// collect returns the distinct non-empty values of f, sorted.
func collect(ss []step, f func(step) string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if v := f(s); v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

func withPrefix(cands []string, prefix string) []string {
	out := cands[:0]
	for _, c := range cands {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}
