// Package execute implements `kubectl concourse execute`: fly's one-off task
// loop as a pod. The task file's inputs are uploaded before the task starts,
// its log streams live, its outputs come back whatever its status, and the
// pod and the Secret of its params go when it ends.
package execute

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/helper"
	"github.com/kubectl-concourse/kubectl-concourse/kernel"
	"github.com/kubectl-concourse/kubectl-concourse/transfer"
)

// Defaults.
const (
	DefaultTimeout        = time.Hour
	DefaultPendingTimeout = 5 * time.Minute
)

// ExecuteOptions is the state of one execute.
type ExecuteOptions struct {
	genericiooptions.IOStreams

	ConfigFile     string   // -c
	InputFlags     []string // -i NAME=PATH
	OutputFlags    []string // -o NAME=PATH, or with --dry-run -o yaml|json
	Image          string
	Privileged     bool
	Tags           []string
	StringVars     []string // -v NAME=VALUE
	YAMLVars       []string // -y NAME=YAML
	VarFiles       []string // -l FILE
	IncludeIgnored bool
	NoCache        bool // --no-cache: upload the inputs in full, without their warm caches
	Background     bool
	Team           string
	Keep           bool
	Timeout        time.Duration
	PendingTimeout time.Duration
	DryRun         string
	HelperImage    string
	Args           []string // after --, appended to run.args
	// fly's flags that need Concourse's API: accepted only to say so.
	InputsFrom    string   // -j PIPELINE/JOB
	InputMappings []string // -m NAME=JOB_INPUT

	kernel.Connection
	// Seams for tests.
	Now        func() time.Time
	Getenv     func(string) (string, bool)
	Getwd      func() (string, error)
	isTerminal func(any) bool

	// Filled by Complete.
	config  TaskConfig
	inputs  []inputFlag
	outputs []outputFlag
	format  string // with --dry-run: yaml or json
	agent   transfer.AgentUse
}

type inputFlag struct {
	name, path string // path as globbed, absolute
	implicit   bool   // the current directory, named like the input
}

type outputFlag struct {
	name, path string // path absolute
}

// NewExecuteOptions sets every default.
func NewExecuteOptions(streams genericiooptions.IOStreams) *ExecuteOptions {
	return &ExecuteOptions{IOStreams: streams, Timeout: DefaultTimeout, PendingTimeout: DefaultPendingTimeout,
		DryRun: "none", HelperImage: helper.DefaultImage}
}

// Complete reads the task file with its vars, finds the inputs' and
// outputs' paths and builds the clients that are still nil. A task file's
// problems are reported together, before anything is created.
func (o *ExecuteOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, args []string) error {
	o.Args = args
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	if o.Getwd == nil {
		o.Getwd = os.Getwd
	}
	if o.isTerminal == nil {
		o.isTerminal = printers.IsTerminal
	}
	if o.ConfigFile == "" {
		return cmderr.Usagef("-c/--config is required: the task file to execute")
	}
	var vars Vars
	for _, kv := range o.StringVars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return cmderr.Usagef("-v %q: want NAME=VALUE", kv)
		}
		vars.AddString(k, v)
	}
	for _, kv := range o.YAMLVars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return cmderr.Usagef("-y %q: want NAME=YAML", kv)
		}
		if err := vars.AddYAML(k, v); err != nil {
			return cmderr.Usage(err)
		}
	}
	for _, f := range o.VarFiles {
		if err := vars.AddFile(f); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(o.ConfigFile)
	if err != nil {
		return fmt.Errorf("task file: %w", err)
	}
	if o.config, err = ParseTaskConfig(o.ConfigFile, data, vars); err != nil {
		return err
	}
	if err := o.completeFlags(); err != nil {
		return err
	}
	if o.agent, err = transfer.AgentFromEnv(); err != nil {
		return err
	}
	if o.DryRun != "none" {
		// A dry run needs no cluster: only the namespace of the kubeconfig.
		ns, _, err := kernel.ClientsOf(getter).Namespace()
		if err != nil {
			return fmt.Errorf("namespace: %w", err)
		}
		o.Namespace = ns
		return nil
	}
	return kernel.Connect(getter, &o.Connection)
}

// completeFlags parses -i and -o as fly does: an input's PATH is a glob
// that must name one directory; -o yaml|json is the dry run's format.
func (o *ExecuteOptions) completeFlags() error {
	for _, f := range o.InputFlags {
		name, pattern, ok := strings.Cut(f, "=")
		if !ok || name == "" || pattern == "" {
			return cmderr.Usagef("invalid input pair '%s' (must be name=path)", f)
		}
		matches, err := filepath.Glob(pattern)
		if err != nil {
			return cmderr.Usagef("failed to expand path '%s': %v", pattern, err)
		}
		switch len(matches) {
		case 0:
			return cmderr.Usagef("path '%s' does not exist", pattern)
		case 1:
		default:
			return cmderr.Usagef("path '%s' resolves to multiple entries: %s", pattern, strings.Join(matches, ", "))
		}
		abs, err := filepath.Abs(matches[0])
		if err != nil {
			return err
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			return cmderr.Usagef("%s not a folder", matches[0])
		}
		o.inputs = append(o.inputs, inputFlag{name: name, path: abs})
	}
	for _, f := range o.OutputFlags {
		if f == "yaml" || f == "json" {
			o.format = f
			continue
		}
		name, p, ok := strings.Cut(f, "=")
		if !ok || name == "" || p == "" {
			return cmderr.Usagef("invalid output pair '%s' (must be name=path; with --dry-run, -o yaml or -o json prints the objects)", f)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		o.outputs = append(o.outputs, outputFlag{name: name, path: abs})
	}
	// fly's implicit input: one named like the current directory comes
	// from it when no -i gives it.
	if wd, err := o.Getwd(); err == nil {
		base := filepath.Base(wd)
		for _, in := range o.config.Inputs {
			if in.Name == base && !slices.ContainsFunc(o.inputs, func(f inputFlag) bool { return f.name == base }) {
				o.inputs = append(o.inputs, inputFlag{name: base, path: wd, implicit: true})
			}
		}
	}
	return nil
}

// maxSecretBytes is the most a Secret's data may hold (the API server's
// limit, keys and values together).
const maxSecretBytes = 1 << 20

// paramKey is what a Secret's key may hold.
var paramKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// Validate checks the flags against the task file; it calls no API and
// touches no file (preflight does, in Run).
func (o *ExecuteOptions) Validate() error {
	switch o.DryRun {
	case "none", "client":
	case "server":
		return cmderr.Usagef("--dry-run=server: only --dry-run=client is supported (it needs no cluster)")
	default:
		return cmderr.Usagef("--dry-run %q: want none or client", o.DryRun)
	}
	if o.InputsFrom != "" || len(o.InputMappings) > 0 {
		return cmderr.Usagef("-j/--inputs-from and -m/--input-mapping take a job's inputs from Concourse's API, which a cluster does not have: " +
			"give each input with -i NAME=PATH (kubectl concourse download -j PIPELINE/JOB -s STEP PATH fetches one from a build)")
	}
	if o.format != "" && o.DryRun == "none" {
		return cmderr.Usagef("-o %s prints the objects of a dry run: add --dry-run=client, or give outputs as -o NAME=PATH", o.format)
	}
	if o.Background && len(o.outputs) > 0 {
		return cmderr.Usagef("background execution cannot withstand outputs")
	}
	if o.Timeout <= 0 || o.PendingTimeout <= 0 {
		return cmderr.Usagef("--timeout and --pending-timeout must be positive")
	}
	if err := kernel.ValidateHelperImage(o.HelperImage); err != nil {
		return err
	}
	for _, tag := range o.Tags {
		if tag == "" || strings.ContainsAny(tag, "/ ") {
			return cmderr.Usagef("--tag %q: a worker tag is a label name under tags.concourse-ci.org/", tag)
		}
	}
	c := o.config
	declared := map[string]Input{}
	for _, in := range c.Inputs {
		declared[in.Name] = in
	}
	given := map[string]bool{}
	for _, f := range o.inputs {
		if _, ok := declared[f.name]; !ok {
			return cmderr.Usagef("unknown input `%s`", f.name)
		}
		given[f.name] = true
	}
	for _, in := range c.Inputs {
		if !given[in.Name] && !in.Optional {
			return cmderr.Usagef("missing required input `%s`", in.Name)
		}
	}
	return nil
}

// preflight checks, before anything is created, what Validate cannot: that
// each output can land where -o puts it (tried: it creates a probe
// directory, which Validate must not), and that Kubernetes can run what the
// task file asks (its params as a Secret's keys, its user, its image). Run
// calls it first. Its errors are not usage errors unless they are an -o's.
func (o *ExecuteOptions) preflight() error {
	c := o.config
	outputs := map[string]bool{}
	for _, out := range c.Outputs {
		outputs[out.Name] = true
	}
	wd, err := o.Getwd()
	if err != nil {
		// Without it, no output could be checked against the directory
		// the user stands in.
		return fmt.Errorf("find the current directory: %w", err)
	}
	for _, f := range o.outputs {
		if !outputs[f.name] {
			return cmderr.Usagef("unknown output '%s'", f.name)
		}
		// An output replaces its path whole: never the directory the user
		// stands in or an input comes from.
		if within(wd, f.path) {
			return cmderr.Usagef("-o %s=%s would replace %s, which holds the current directory", f.name, f.path, f.path)
		}
		for _, in := range o.inputs {
			if within(in.path, f.path) || within(f.path, in.path) {
				return cmderr.Usagef("-o %s=%s would replace input %s (%s)", f.name, f.path, in.name, in.path)
			}
		}
		if err := writableOutput(f); err != nil {
			return err
		}
	}
	size := 0
	for k, v := range c.Params {
		if !paramKey.MatchString(k) {
			return fmt.Errorf("param %q: a Kubernetes Secret's key (how params reach the task) holds letters, digits, '-', '_' and '.' only", k)
		}
		size += len(k) + len(v)
	}
	if size > maxSecretBytes {
		return fmt.Errorf("the params hold %d bytes, more than the %d a Kubernetes Secret (how params reach the task) can: pass large data as an input instead", size, maxSecretBytes)
	}
	if c.Run.User != "" {
		if _, ok := runAsUser(c.Run.User); !ok {
			return fmt.Errorf("run.user %q: Kubernetes runs a container as a numeric user id; give a number or root", c.Run.User)
		}
	}
	if _, err := o.image(); err != nil {
		return err
	}
	return nil
}

// warnings are what Validate lets pass but the user should know.
func (o *ExecuteOptions) warnings() []string {
	var w []string
	if c := o.config; c.Platform != "linux" && (len(o.inputs) > 0 || len(o.outputs) > 0) {
		w = append(w, fmt.Sprintf("platform %s: the inputs and outputs move through helper containers of image %s, which must run on %s nodes (--helper-image)",
			c.Platform, o.HelperImage, c.Platform))
	}
	return w
}

// writableOutput checks, before anything is created, that an output can
// land at its path: the path is a directory or absent (an output is a
// directory, which must never replace a file), and its parent a directory
// this user may create entries in (tried, not guessed from modes: ACLs, a
// read-only mount, root).
func writableOutput(f outputFlag) error {
	if fi, err := os.Lstat(f.path); err == nil && !fi.IsDir() {
		return cmderr.Usagef("-o %s=%s: %s exists and is not a directory (an output is one); remove it or choose another path", f.name, f.path, f.path)
	}
	parent := filepath.Dir(f.path)
	if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
		return cmderr.Usagef("-o %s=%s: %s is not a directory to land it in", f.name, f.path, parent)
	}
	probe, err := os.MkdirTemp(parent, ".kubectl-concourse-probe-")
	if err != nil {
		return fmt.Errorf("-o %s=%s cannot be written: %w", f.name, f.path, errors.Unwrap(err))
	}
	return os.Remove(probe)
}

// within says whether p is dir or lies below it.
func within(p, dir string) bool {
	if p == "" || dir == "" {
		return false
	}
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// image is the task's image: --image, else its image_resource's.
func (o *ExecuteOptions) image() (string, error) {
	if o.Image != "" {
		return o.Image, nil
	}
	c := o.config
	ir := c.ImageResource
	switch {
	case ir != nil:
		switch ir.Type {
		case "registry-image", "docker-image":
		default:
			return "", fmt.Errorf("image_resource of type %q names no image a pod can run: give one with --image", ir.Type)
		}
		repo, _ := ir.Source["repository"].(string)
		if repo == "" {
			return "", errors.New("image_resource has no source.repository: give the image with --image")
		}
		if digest := ir.Version["digest"]; digest != "" {
			return repo + "@" + digest, nil
		}
		if tag := fmt.Sprint(ir.Source["tag"]); ir.Source["tag"] != nil && tag != "" {
			return repo + ":" + tag, nil
		}
		return repo, nil
	case c.RootfsURI != "":
		return rootfsImage(c.RootfsURI)
	}
	return "", errors.New("the task names no image (no image_resource): give one with --image")
}

// rootfsImage reads a rootfs_uri as Concourse's workers do for the one
// scheme that names an image: docker://[REGISTRY]/REPOSITORY[#TAG], as in
// docker:///busybox#1.36. Other schemes name a directory on a worker.
func rootfsImage(uri string) (string, error) {
	rest, ok := strings.CutPrefix(uri, "docker://")
	if !ok {
		return "", fmt.Errorf("rootfs_uri (%s) names a worker's directory, which no pod can run: give the image with --image (docker:///IMAGE names one)", uri)
	}
	repo, tag, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "#")
	if repo == "" {
		return "", fmt.Errorf("rootfs_uri (%s) names no image: want docker:///IMAGE[#TAG]", uri)
	}
	if tag != "" {
		return repo + ":" + tag, nil
	}
	return repo, nil
}

// plan decides the build under buildID (nextBuildID's: the newest one-off
// build has the highest id, as hijack and watch expect).
func (o *ExecuteOptions) plan(team, buildID string) oneOff {
	c := o.config
	c.Run.Args = append(append([]string(nil), c.Run.Args...), o.Args...)
	params := map[string]string{}
	for k, v := range c.Params {
		if env, ok := o.Getenv(k); ok {
			v = env // fly: a local variable named like a param overrides it
		}
		params[k] = v
	}
	c.Params = params
	image, _ := o.image()
	b := oneOff{Namespace: o.Namespace, Team: team, BuildID: buildID,
		Image: image, Config: c, Privileged: o.Privileged, Tags: o.Tags, Timeout: o.Timeout, HelperImage: o.HelperImage,
		Kept: o.Background || o.Keep}
	if o.Image == "" {
		b.PullAuth = imageAuth(c.ImageResource)
	}
	for _, f := range o.inputs {
		for _, in := range c.Inputs {
			if in.Name == f.name {
				b.Inputs = append(b.Inputs, input{Name: f.name, Local: f.path, Remote: artifactPath(workingDir, in.Name, in.Path)})
			}
		}
	}
	for _, f := range o.outputs {
		for _, out := range c.Outputs {
			if out.Name == f.name {
				b.Outputs = append(b.Outputs, output{Name: f.name, Remote: artifactPath(workingDir, out.Name, out.Path), Local: f.path})
			}
		}
	}
	return b
}

// transferSettings are upload's and download's defaults.
func (o *ExecuteOptions) transferSettings(p *transfer.Progress, warnf func(string, ...any)) transfer.Settings {
	s := transfer.DefaultSettings(warnf)
	s.IncludeIgnored, s.Progress, s.Agent = o.IncludeIgnored, p, o.agent
	return s
}
