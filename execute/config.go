package execute

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// TaskConfig is fly's task configuration (atc.TaskConfig), as a task file
// gives it and fly reads it: the same fields, the same defaults, the same
// validation.
type TaskConfig struct {
	Platform      string
	RootfsURI     string
	ImageResource *ImageResource
	Limits        ContainerLimits
	Params        map[string]string // coerced as fly coerces them
	Run           RunConfig
	Inputs        []Input
	Outputs       []Output
	Caches        []Cache
}

// ImageResource is the task's image_resource.
type ImageResource struct {
	Type    string
	Source  map[string]any
	Version map[string]string
}

// ContainerLimits are container_limits: CPU shares and memory bytes.
type ContainerLimits struct {
	CPU    *uint64
	Memory *uint64
}

// RunConfig is the task's run.
type RunConfig struct {
	Path string
	Args []string
	Dir  string
	User string
}

// Input is one of the task's inputs.
type Input struct {
	Name, Path string
	Optional   bool
}

// Output is one of the task's outputs.
type Output struct {
	Name, Path string
}

// Cache is one of the task's caches.
type Cache struct {
	Path string
	TTL  time.Duration
}

// problems collects what is wrong with a task file, to be reported
// together, each with its line when the YAML gives one.
type problems struct {
	list []problem
}

type problem struct {
	line int
	msg  string
}

func (p *problems) add(line int, format string, a ...any) {
	p.list = append(p.list, problem{line, fmt.Sprintf(format, a...)})
}

// ConfigError is every problem of one task file.
type ConfigError struct {
	File     string
	Problems []string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s: invalid task configuration:\n  %s", e.File, strings.Join(e.Problems, "\n  "))
}

func (p *problems) err(file string) error {
	if len(p.list) == 0 {
		return nil
	}
	// In file order; what belongs to no line (a missing field) last.
	at := func(pr problem) int {
		if pr.line == 0 {
			return 1 << 30
		}
		return pr.line
	}
	sort.SliceStable(p.list, func(i, j int) bool { return at(p.list[i]) < at(p.list[j]) })
	e := &ConfigError{File: file}
	for _, pr := range p.list {
		if pr.line > 0 {
			e.Problems = append(e.Problems, fmt.Sprintf("line %d: %s", pr.line, pr.msg))
		} else {
			e.Problems = append(e.Problems, pr.msg)
		}
	}
	return e
}

// ParseTaskConfig reads a task file: its ((vars)) resolved from vars,
// then fly's schema checked, every problem reported together with file's
// name and the line of each. The task's own params are coerced as fly does.
func ParseTaskConfig(file string, data []byte, vars Vars) (TaskConfig, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return TaskConfig{}, fmt.Errorf("%s: %w", file, err)
	}
	p := &problems{}
	if len(doc.Content) == 0 {
		p.add(0, "the file is empty")
		return TaskConfig{}, p.err(file)
	}
	top := resolveAlias(doc.Content[0])
	interpolate(top, vars, p)
	if top.Kind != yaml.MappingNode {
		p.add(top.Line, "a task configuration is a map, not a %s", kindName(top))
		return TaskConfig{}, p.err(file)
	}
	c := taskConfig(top, p)
	if c.Platform == "" {
		p.add(0, "missing 'platform'")
	}
	return c, p.err(file)
}

// taskConfig reads the fields of a task configuration, atc.TaskConfig's;
// the fields it does not know are one problem, at the first of them.
func taskConfig(top *yaml.Node, p *problems) TaskConfig {
	var c TaskConfig
	var unknown []string
	unknownLine := 0
	eachEntry(top, func(key string, k, v *yaml.Node) {
		switch key {
		case "platform":
			c.Platform = str(v, "platform", p)
		case "rootfs_uri":
			c.RootfsURI = str(v, "rootfs_uri", p)
		case "image_resource":
			c.ImageResource = imageResource(v, p)
		case "container_limits":
			c.Limits = limits(v, p)
		case "params":
			c.Params = params(v, p)
		case "run":
			c.Run = run(v, p)
		case "inputs":
			c.Inputs = inputList(v, p)
		case "outputs":
			c.Outputs = outputList(v, p)
		case "caches":
			c.Caches = cacheList(v, p)
		default:
			unknown = append(unknown, key)
			if unknownLine == 0 {
				unknownLine = k.Line
			}
		}
	}, p, "the task configuration")
	if len(unknown) > 0 {
		p.add(unknownLine, "unknown fields: %s", strings.Join(unknown, ", "))
	}
	return c
}

// inputList reads inputs: each a name, its path and whether it is optional.
func inputList(n *yaml.Node, p *problems) []Input {
	var ins []Input
	eachItem(n, "inputs", p, func(i int, n *yaml.Node) {
		var in Input
		eachEntry(n, func(key string, k, v *yaml.Node) {
			switch key {
			case "name":
				in.Name = str(v, "inputs[].name", p)
			case "path":
				in.Path = str(v, "inputs[].path", p)
			case "optional":
				in.Optional = boolean(v, "inputs[].optional", p)
			default:
				p.add(k.Line, "unknown field %q in input in position %d", key, i)
			}
		}, p, fmt.Sprintf("input in position %d", i))
		if in.Name == "" {
			p.add(n.Line, "input in position %d is missing a name", i)
		}
		ins = append(ins, in)
	})
	return ins
}

// outputList reads outputs: each a name and its path.
func outputList(n *yaml.Node, p *problems) []Output {
	var outs []Output
	eachItem(n, "outputs", p, func(i int, n *yaml.Node) {
		var out Output
		eachEntry(n, func(key string, k, v *yaml.Node) {
			switch key {
			case "name":
				out.Name = str(v, "outputs[].name", p)
			case "path":
				out.Path = str(v, "outputs[].path", p)
			default:
				p.add(k.Line, "unknown field %q in output in position %d", key, i)
			}
		}, p, fmt.Sprintf("output in position %d", i))
		if out.Name == "" {
			p.add(n.Line, "output in position %d is missing a name", i)
		}
		outs = append(outs, out)
	})
	return outs
}

// cacheList reads caches: each a path and its ttl.
func cacheList(n *yaml.Node, p *problems) []Cache {
	var caches []Cache
	eachItem(n, "caches", p, func(i int, n *yaml.Node) {
		var cache Cache
		eachEntry(n, func(key string, k, v *yaml.Node) {
			switch key {
			case "path":
				cache.Path = str(v, "caches[].path", p)
			case "ttl":
				cache.TTL = cacheTTL(v, p)
			default:
				p.add(k.Line, "unknown field %q in cache in position %d", key, i)
			}
		}, p, fmt.Sprintf("cache in position %d", i))
		if cache.Path == "" {
			p.add(n.Line, "cache in position %d is missing a path", i)
		}
		caches = append(caches, cache)
	})
	return caches
}

// cacheTTL reads a cache's ttl, a duration of at least a second, as fly
// checks it.
func cacheTTL(n *yaml.Node, p *problems) time.Duration {
	ttl := str(n, "caches[].ttl", p)
	d, err := time.ParseDuration(ttl)
	switch {
	case err != nil:
		p.add(n.Line, "invalid cache ttl '%s': %v", ttl, err)
	case d < time.Second:
		p.add(n.Line, "cache ttl must be at least 1s, got '%s'", ttl)
	}
	return d
}

func eachEntry(n *yaml.Node, fn func(key string, k, v *yaml.Node), p *problems, what string) {
	n = resolveAlias(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.add(n.Line, "%s must be a map, not a %s", what, kindName(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		if k.Tag == "!!merge" {
			eachEntry(v, fn, p, what)
			continue
		}
		fn(k.Value, k, v)
	}
}

func eachItem(n *yaml.Node, what string, p *problems, fn func(i int, item *yaml.Node)) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.add(n.Line, "%s must be a list, not a %s", what, kindName(n))
		return
	}
	for i, item := range n.Content {
		fn(i, resolveAlias(item))
	}
}

// str reads a string field; as in fly (YAML to JSON to a Go string), a
// number or a boolean there is an error, and null is empty.
func str(n *yaml.Node, what string, p *problems) string {
	if n.Kind != yaml.ScalarNode {
		p.add(n.Line, "%s must be a string, not a %s", what, kindName(n))
		return ""
	}
	switch n.Tag {
	case "!!str":
		return n.Value
	case "!!null":
		return ""
	}
	p.add(n.Line, "%s must be a string (quote %s)", what, n.Value)
	return ""
}

// yaml11Bools are the booleans of YAML 1.1, which fly's YAML reader (and so
// Concourse) speaks: "yes" is true there.
var yaml11Bools = map[string]bool{
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true, "true": true, "True": true, "TRUE": true,
	"on": true, "On": true, "ON": true,
	"n": false, "N": false, "no": false, "No": false, "NO": false, "false": false, "False": false, "FALSE": false,
	"off": false, "Off": false, "OFF": false,
}

// isBool: a plain (unquoted, untagged) scalar that YAML 1.1 reads as a
// boolean.
func isBool(n *yaml.Node) (value, ok bool) {
	quotedOrTagged := yaml.SingleQuotedStyle | yaml.DoubleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle | yaml.TaggedStyle
	if n.Kind != yaml.ScalarNode || n.Style&quotedOrTagged != 0 || n.Tag != "!!bool" && n.Tag != "!!str" {
		return false, false
	}
	v, ok := yaml11Bools[n.Value]
	return v, ok
}

func boolean(n *yaml.Node, what string, p *problems) bool {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return false
	}
	v, ok := isBool(n)
	if !ok {
		p.add(n.Line, "%s must be true or false, not %s", what, n.Value)
	}
	return v
}

func imageResource(n *yaml.Node, p *problems) *ImageResource {
	ir := &ImageResource{}
	eachEntry(n, func(key string, k, v *yaml.Node) {
		switch key {
		case "type":
			ir.Type = str(v, "image_resource.type", p)
		case "source":
			if m, ok := value(v).(map[string]any); ok {
				ir.Source = m
			} else if !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
				p.add(v.Line, "image_resource.source must be a map")
			}
		case "version":
			ir.Version = map[string]string{}
			eachEntry(v, func(key string, _, v *yaml.Node) { ir.Version[key] = coerce(v) }, p, "image_resource.version")
		case "name", "params", "tags":
			// Concourse's own image check uses them; a pod's image does not.
		default:
			p.add(k.Line, "unknown field %q in image_resource", key)
		}
	}, p, "image_resource")
	if ir.Type == "" {
		p.add(n.Line, "image_resource is missing a type")
	}
	return ir
}

// memoryPattern is fly's: bytes, or K, M, G with an optional i and B, all
// binary (1024-based).
var memoryPattern = regexp.MustCompile(`(?i)^([0-9]+)(([KMG])(i)?B?)?$`)

func limits(n *yaml.Node, p *problems) ContainerLimits {
	var l ContainerLimits
	eachEntry(n, func(key string, k, v *yaml.Node) {
		switch key {
		case "cpu":
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				return
			}
			f, err := strconv.ParseFloat(v.Value, 64)
			if v.Kind != yaml.ScalarNode || (v.Tag != "!!int" && v.Tag != "!!float") || err != nil || f < 0 {
				p.add(v.Line, "cpu limit must be an integer")
				return
			}
			shares := uint64(f)
			l.CPU = &shares
		case "memory":
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				return
			}
			bytes, err := parseMemory(v)
			if err != nil {
				p.add(v.Line, "%v", err)
				return
			}
			l.Memory = &bytes
		default:
			p.add(k.Line, "unknown field %q in container_limits", key)
		}
	}, p, "container_limits")
	return l
}

func parseMemory(n *yaml.Node) (uint64, error) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		f, err := strconv.ParseFloat(n.Value, 64)
		if err == nil && f >= 0 {
			return uint64(f), nil
		}
	}
	m := memoryPattern.FindStringSubmatch(n.Value)
	if n.Kind != yaml.ScalarNode || m == nil {
		return 0, errors.New("could not parse container memory limit")
	}
	v, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		return 0, errors.New("could not parse container memory limit")
	}
	switch strings.ToUpper(m[3]) {
	case "K":
		v <<= 10
	case "M":
		v <<= 20
	case "G":
		v <<= 30
	}
	return v, nil
}

func params(n *yaml.Node, p *problems) map[string]string {
	m := map[string]string{}
	eachEntry(n, func(key string, _, v *yaml.Node) { m[key] = coerce(v) }, p, "params")
	return m
}

// coerce turns a param's value into fly's string (atc.CoercedString):
// strings as they are, numbers as fly's conversion writes them (number),
// null as empty, booleans as true or false, maps and lists as JSON.
func coerce(n *yaml.Node) string {
	n = resolveAlias(n)
	if n.Kind == yaml.ScalarNode {
		if b, ok := isBool(n); ok {
			return strconv.FormatBool(b)
		}
		switch n.Tag {
		case "!!null":
			return ""
		case "!!int", "!!float":
			if num, ok := number(n); ok {
				return string(num)
			}
		}
		return n.Value
	}
	b, err := json.Marshal(value(n))
	if err != nil {
		return ""
	}
	return string(b)
}

// value decodes a node into Go values as fly's YAML-to-JSON path does, with
// numbers as that path writes them (number).
func value(n *yaml.Node) any {
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = value(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, len(n.Content))
		for i, c := range n.Content {
			l[i] = value(c)
		}
		return l
	}
	if b, ok := isBool(n); ok {
		return b
	}
	switch n.Tag {
	case "!!null":
		return nil
	case "!!int", "!!float":
		if num, ok := number(n); ok {
			return num
		}
	}
	return n.Value
}

// number is a YAML number as fly's YAML-to-JSON conversion writes it
// (sigs.k8s.io/yaml over yaml.v2, then atc.CoercedString): an integer that
// fits 64 bits as its decimal digits, any other number through a float64
// as encoding/json formats one, so that 1.8446744e+19 becomes
// 18446744000000000000 and 1.50 becomes 1.5, as atc's task tests pin. ok is
// false for what JSON has no number for (.inf, .nan).
func number(n *yaml.Node) (json.Number, bool) {
	plain := strings.ReplaceAll(n.Value, "_", "")
	if i, err := strconv.ParseInt(plain, 0, 64); err == nil {
		return json.Number(strconv.FormatInt(i, 10)), true
	}
	if u, err := strconv.ParseUint(plain, 0, 64); err == nil {
		return json.Number(strconv.FormatUint(u, 10)), true
	}
	f, err := strconv.ParseFloat(plain, 64)
	if err != nil {
		return "", false
	}
	b, err := json.Marshal(f)
	if err != nil {
		return "", false
	}
	return json.Number(b), true
}

func run(n *yaml.Node, p *problems) RunConfig {
	var r RunConfig
	eachEntry(n, func(key string, k, v *yaml.Node) {
		switch key {
		case "path":
			r.Path = str(v, "run.path", p)
		case "args":
			eachItem(v, "run.args", p, func(i int, a *yaml.Node) {
				r.Args = append(r.Args, str(a, fmt.Sprintf("run.args[%d]", i), p))
			})
		case "dir":
			r.Dir = str(v, "run.dir", p)
		case "user":
			r.User = str(v, "run.user", p)
		default:
			p.add(k.Line, "unknown field %q in run", key)
		}
	}, p, "run")
	return r
}

// artifactPath is where an input, output or cache lives in the working
// directory, as Concourse places it (atc/exec/task_step.go): its path, else
// its name; an absolute path as it is, a relative one with every ".."
// removed, under the working directory.
func artifactPath(workingDir, name, p string) string {
	if p == "" {
		p = name
	}
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join(workingDir, strings.ReplaceAll(p, "..", ""))
}
