package execute

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Vars are the values of a task file's ((vars)), looked up as fly does:
// the flags first (-v as strings, -y as YAML; a later flag wins), then the
// -l files, a later file winning over an earlier one.
type Vars struct {
	flags map[string]*yaml.Node
	files []map[string]*yaml.Node // in the order given
}

// AddString is -v NAME=VALUE.
func (v *Vars) AddString(name, value string) {
	v.set(name, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
}

// AddYAML is -y NAME=YAML.
func (v *Vars) AddYAML(name, value string) error {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(value), &doc); err != nil {
		return fmt.Errorf("-y %s: %w", name, err)
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
	if len(doc.Content) > 0 {
		n = doc.Content[0]
	}
	v.set(name, n)
	return nil
}

func (v *Vars) set(name string, n *yaml.Node) {
	if v.flags == nil {
		v.flags = map[string]*yaml.Node{}
	}
	v.flags[name] = n
}

// AddFile is -l FILE: a YAML map of vars.
func (v *Vars) AddFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("-l: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("-l %s: %w", path, err)
	}
	m := map[string]*yaml.Node{}
	if len(doc.Content) > 0 {
		top := resolveAlias(doc.Content[0])
		if top.Kind != yaml.MappingNode {
			return fmt.Errorf("-l %s: want a map of vars, not a %s", path, kindName(top))
		}
		for i := 0; i+1 < len(top.Content); i += 2 {
			m[top.Content[i].Value] = top.Content[i+1]
		}
	}
	v.files = append(v.files, m)
	return nil
}

func (v Vars) lookup(name string) (*yaml.Node, bool) {
	if n, ok := v.flags[name]; ok {
		return n, true
	}
	for i := len(v.files) - 1; i >= 0; i-- {
		if n, ok := v.files[i][name]; ok {
			return n, true
		}
	}
	return nil, false
}

// varPattern is fly's ((var)) syntax: an optional source, a name, and
// dotted fields (quoted where they hold dots).
var (
	varPattern         = regexp.MustCompile(`\(\((([-/\.\w\pL]+\:)?[-/\.:@"\w\pL]+)\)\)`)
	varPatternAnchored = regexp.MustCompile(`\A` + varPattern.String() + `\z`)
)

// interpolate replaces every ((var)) in the tree under n, in keys and
// values: a value that is only a var takes the var's YAML value (a map
// stays a map), a var inside a longer string takes its text. It reports
// every var that no flag or file defines.
func interpolate(n *yaml.Node, v Vars, p *problems) {
	undefined := map[string]bool{}
	interpolateNode(n, v, p, undefined)
	if len(undefined) > 0 {
		names := make([]string, 0, len(undefined))
		for name := range undefined {
			names = append(names, name)
		}
		sort.Strings(names)
		p.add(0, "undefined vars: %s (give them with -v, -y or -l)", strings.Join(names, ", "))
	}
}

func interpolateNode(n *yaml.Node, v Vars, p *problems, undefined map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode, yaml.MappingNode:
		for _, c := range n.Content {
			interpolateNode(c, v, p, undefined)
		}
		return
	case yaml.ScalarNode:
	default:
		return
	}
	if n.Tag != "!!str" || !strings.Contains(n.Value, "((") {
		return
	}
	if m := varPatternAnchored.FindStringSubmatch(n.Value); m != nil {
		val, ok := resolveVar(m[1], v, p, n.Line)
		if !ok {
			undefined[m[1]] = true
			return
		}
		line, col := n.Line, n.Column
		*n = *deepCopy(val)
		n.Line, n.Column = line, col
		return
	}
	out := n.Value
	for _, m := range varPattern.FindAllStringSubmatch(n.Value, -1) {
		val, ok := resolveVar(m[1], v, p, n.Line)
		if !ok {
			undefined[m[1]] = true
			continue
		}
		if val.Kind != yaml.ScalarNode {
			p.add(n.Line, "cannot interpolate non-primitive value (a %s) from var: %s", kindName(val), m[1])
			continue
		}
		out = strings.ReplaceAll(out, m[0], val.Value)
	}
	n.Value = out
}

// resolveVar looks up name (name.field.field, fields quoted when they hold
// dots) and walks into its fields.
func resolveVar(ref string, v Vars, p *problems, line int) (*yaml.Node, bool) {
	if i := strings.Index(ref, ":"); i >= 0 && !strings.Contains(ref[:i], `"`) {
		p.add(line, "((%s)): var sources come from Concourse's credential managers, which execute does not reach; give the value with -v, -y or -l", ref)
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str"}, true
	}
	parts := splitRef(ref)
	n, ok := v.lookup(parts[0])
	if !ok {
		return nil, false
	}
	for _, field := range parts[1:] {
		n = resolveAlias(n)
		if n.Kind != yaml.MappingNode {
			p.add(line, "cannot access field '%s' of non-map value from var: %s", field, ref)
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str"}, true
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == field {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			p.add(line, "missing field '%s' in var: %s", field, ref)
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str"}, true
		}
		n = next
	}
	return resolveAlias(n), true
}

// splitRef splits a.b."c.d" into a, b, c.d.
func splitRef(ref string) []string {
	var parts []string
	var cur strings.Builder
	quoted := false
	for _, r := range ref {
		switch {
		case r == '"':
			quoted = !quoted
		case r == '.' && !quoted:
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	return append(parts, cur.String())
}

func deepCopy(n *yaml.Node) *yaml.Node {
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		c.Content[i] = deepCopy(child)
	}
	return &c
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "map"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "value"
	}
	return "document"
}
