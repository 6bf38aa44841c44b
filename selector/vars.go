package selector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// InstanceVars are a pipeline instance's vars, as a JSON object decodes.
type InstanceVars map[string]any

// ParseInstanceVars parses fly's `k:v,k2:v2` form (the middle part of
// `-j PIPELINE/k:v/JOB`). Keys are dotted paths whose segments may be
// double-quoted (`"a.b".c`); values are YAML, so `n:1` is a number and
// `n:"1"` a string; a comma inside quotes, braces or brackets does not end a value.
func ParseInstanceVars(s string) (InstanceVars, error) {
	vars := InstanceVars{}
	for rest := s; ; {
		colon, ok := findUnquoted(rest, `"`, func(r rune) bool { return r == ':' })
		if !ok {
			return nil, fmt.Errorf("instance vars %q: want KEY:VALUE[,KEY:VALUE...]", s)
		}
		path, err := parseVarPath(rest[:colon])
		if err != nil {
			return nil, err
		}
		rest = rest[colon+1:]
		raw := rest
		comma, more := findUnquoted(rest, `"'`, outsideYAML(','))
		if more {
			raw, rest = rest[:comma], rest[comma+1:]
		}
		value, err := decodeYAML(raw)
		if err != nil {
			return nil, fmt.Errorf("instance var %q: %w", strings.Join(path, "."), err)
		}
		if err := vars.set(path, value); err != nil {
			return nil, err
		}
		if !more {
			return vars, nil
		}
	}
}

// InstanceVarsFromQuery reads instance vars from a Concourse web URL's
// query: `vars={...}` and `vars.PATH=JSON` as the web UI writes them, or the
// older `instance_vars={...}`. It returns nil when the query has none.
func InstanceVarsFromQuery(q url.Values) (InstanceVars, error) {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	// Sorted so that `vars={...}` is applied before the `vars.k` patches.
	sort.Strings(keys)
	var vars InstanceVars
	for _, k := range keys {
		var path []string
		switch {
		case k == "vars" || k == "instance_vars":
		case strings.HasPrefix(k, "vars."):
			p, err := parseVarPath(strings.TrimPrefix(k, "vars."))
			if err != nil {
				return nil, fmt.Errorf("url query %q: %w", k, err)
			}
			path = p
		default:
			continue
		}
		value, err := decodeJSON([]byte(q.Get(k)))
		if err != nil {
			return nil, fmt.Errorf("url query %q: %w", k, err)
		}
		if vars == nil {
			vars = InstanceVars{}
		}
		if path == nil {
			obj, ok := value.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("url query %q: want a JSON object", k)
			}
			for name, v := range obj {
				vars[name] = v
			}
			continue
		}
		if err := vars.set(path, value); err != nil {
			return nil, err
		}
	}
	return vars, nil
}

// ParseInstanceVarsJSON reads the instance-vars annotation.
func ParseInstanceVarsJSON(s string) (InstanceVars, error) {
	v, err := decodeJSON([]byte(s))
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok && v != nil {
		return nil, errors.New("instance vars are not a JSON object")
	}
	return obj, nil
}

// Equal compares two sets of instance vars; no vars and {} are the same.
func (v InstanceVars) Equal(o InstanceVars) bool {
	if len(v) == 0 || len(o) == 0 {
		return len(v) == len(o)
	}
	return reflect.DeepEqual(map[string]any(v), map[string]any(o))
}

// String renders the vars as fly does in `-j PIPELINE/VARS/JOB`: sorted
// dotted paths, JSON values.
func (v InstanceVars) String() string {
	var pairs []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, val := range m {
			key := k
			if strings.ContainsAny(k, `.:,/ "`) {
				key = `"` + k + `"`
			}
			if prefix != "" {
				key = prefix + "." + key
			}
			if sub, ok := val.(map[string]any); ok && len(sub) > 0 {
				walk(key, sub)
				continue
			}
			b, _ := json.Marshal(val) // values came from JSON; they marshal
			pairs = append(pairs, key+":"+string(b))
		}
	}
	walk("", v)
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

func (v InstanceVars) set(path []string, value any) error {
	m := map[string]any(v)
	for i, seg := range path[:len(path)-1] {
		next, ok := m[seg]
		if !ok {
			sub := map[string]any{}
			m[seg], m = sub, sub
			continue
		}
		sub, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("instance var %q is both a value and an object", strings.Join(path[:i+1], "."))
		}
		m = sub
	}
	m[path[len(path)-1]] = value
	return nil
}

// parseVarPath splits a dotted var path; a double-quoted segment may hold dots.
func parseVarPath(s string) ([]string, error) {
	var path []string
	for rest := s; ; {
		var seg string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("var path %q: unterminated quote", s)
			}
			seg, rest = rest[1:end+1], rest[end+2:]
			if rest != "" && !strings.HasPrefix(rest, ".") {
				return nil, fmt.Errorf("var path %q: want '.' after a quoted segment", s)
			}
		} else {
			dot := strings.IndexByte(rest, '.')
			if dot < 0 {
				dot = len(rest)
			}
			seg, rest = rest[:dot], rest[dot:]
		}
		if seg == "" {
			return nil, fmt.Errorf("var path %q: empty segment", s)
		}
		path = append(path, seg)
		if rest == "" {
			return path, nil
		}
		rest = rest[1:]
		if rest == "" {
			return nil, fmt.Errorf("var path %q: empty segment", s)
		}
	}
}

// findUnquoted returns the index of the first rune outside quotes (any of
// quotes) for which stop is true.
func findUnquoted(s, quotes string, stop func(rune) bool) (int, bool) {
	var open rune
	for i, r := range s {
		switch {
		case open != 0:
			if r == open {
				open = 0
			}
		case stop(r):
			return i, true
		case strings.ContainsRune(quotes, r):
			open = r
		}
	}
	return 0, false
}

// outsideYAML stops at sep unless it is inside a YAML flow mapping or sequence.
func outsideYAML(sep rune) func(rune) bool {
	depth := 0
	return func(r rune) bool {
		switch r {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case sep:
			return depth == 0
		}
		return false
	}
}

func decodeYAML(s string) (any, error) {
	j, err := yaml.YAMLToJSON([]byte(s))
	if err != nil {
		return nil, err
	}
	return decodeJSON(j)
}

// decodeJSON decodes one JSON value; numbers stay float64 so that values from
// flags, URLs and annotations compare alike.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}
