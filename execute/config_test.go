package execute

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseTaskConfigValidation(t *testing.T) {
	const file = `image_resource: {type: registry-image, source: {repository: golang}}
ouputs:
- name: out
inputs:
- path: src
- name: ok
caches:
- path: c1
  ttl: 500ms
- path: c2
  ttl: forever
container_limits: {cpu: lots, memory: 2 bananas}
run: {path: go, args: [test, 3]}
extra: 1
`
	_, err := ParseTaskConfig("task.yml", []byte(file), Vars{})
	ce, ok := err.(*ConfigError)
	if !ok {
		t.Fatalf("ParseTaskConfig() = %v, want a ConfigError", err)
	}
	want := []string{
		"line 2: unknown fields: ouputs, extra",
		"line 5: input in position 0 is missing a name",
		"line 9: cache ttl must be at least 1s, got '500ms'",
		`line 11: invalid cache ttl 'forever': time: invalid duration "forever"`,
		"line 12: cpu limit must be an integer",
		"line 12: could not parse container memory limit",
		"line 13: run.args[1] must be a string (quote 3)",
		"missing 'platform'",
	}
	if !reflect.DeepEqual(ce.Problems, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(ce.Problems, "\n"), strings.Join(want, "\n"))
	}
	if !strings.HasPrefix(err.Error(), "task.yml: invalid task configuration:\n  line 2: ") {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestParseTaskConfigFields(t *testing.T) {
	const file = `---
platform: linux
image_resource:
  type: registry-image
  source: {repository: golang, tag: "1.26"}
  version: {digest: "sha256:abc"}
container_limits: {cpu: 512, memory: 1GB}
params:
  BIG: 123456789012345678901234567890
  FLOAT: 1.50
  YES: yes
  QUOTED: "yes"
  NONE:
  EMPTY: ""
  MAP: {b: 1, a: [x, true]}
  TEXT: hello
run:
  path: sh
  args: [-c, echo hi]
  dir: src
  user: root
inputs:
- {name: src}
- {name: cache, optional: true, path: ../../c}
outputs: [{name: out}]
caches: [{path: .gocache, ttl: 1h}]
`
	c, err := ParseTaskConfig("task.yml", []byte(file), Vars{})
	if err != nil {
		t.Fatal(err)
	}
	wantParams := map[string]string{
		"BIG": "1.2345678901234568e+29", "FLOAT": "1.5", "YES": "true", "QUOTED": "yes",
		"NONE": "", "EMPTY": "", "MAP": `{"a":["x",true],"b":1}`, "TEXT": "hello",
	}
	if !reflect.DeepEqual(c.Params, wantParams) {
		t.Errorf("params = %v\nwant %v", c.Params, wantParams)
	}
	if *c.Limits.CPU != 512 || *c.Limits.Memory != 1<<30 {
		t.Errorf("limits = %d, %d", *c.Limits.CPU, *c.Limits.Memory)
	}
	if c.Run.Path != "sh" || !reflect.DeepEqual(c.Run.Args, []string{"-c", "echo hi"}) || c.Run.Dir != "src" || c.Run.User != "root" {
		t.Errorf("run = %+v", c.Run)
	}
	if len(c.Inputs) != 2 || !c.Inputs[1].Optional || c.Inputs[1].Path != "../../c" || c.Caches[0].TTL != time.Hour {
		t.Errorf("inputs %+v caches %+v", c.Inputs, c.Caches)
	}
	if got := artifactPath("/tmp/build/b1dda4c3", "cache", "../../c"); got != "/tmp/build/b1dda4c3/c" {
		t.Errorf("artifactPath drops '..' as Concourse does: got %s", got)
	}
	if c.ImageResource.Version["digest"] != "sha256:abc" || c.ImageResource.Source["tag"] != "1.26" {
		t.Errorf("image_resource = %+v", c.ImageResource)
	}
}

func TestParseTaskConfigVars(t *testing.T) {
	dir := t.TempDir()
	first, second := filepath.Join(dir, "1.yml"), filepath.Join(dir, "2.yml")
	os.WriteFile(first, []byte("repo: from-first\ntag: t1\nfromfile: f\n"), 0o644)
	os.WriteFile(second, []byte("tag: t2\n"), 0o644)
	var v Vars
	v.AddString("repo", "from-flag")
	if err := v.AddYAML("src", "{repository: nested, tag: x}"); err != nil {
		t.Fatal(err)
	}
	if err := v.AddYAML("n", "42"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{first, second} {
		if err := v.AddFile(f); err != nil {
			t.Fatal(err)
		}
	}
	const file = `platform: linux
image_resource: {type: registry-image, source: ((src))}
params:
  R: ((repo))
  T: ((tag))
  N: ((n))
  IN: prefix-((n))-((fromfile))
  FIELD: ((src.repository))
`
	c, err := ParseTaskConfig("t.yml", []byte(file), v)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"R": "from-flag", "T": "t2", "N": "42", "IN": "prefix-42-f", "FIELD": "nested"}
	if !reflect.DeepEqual(c.Params, want) {
		t.Errorf("params = %v, want %v", c.Params, want)
	}
	if c.ImageResource.Source["repository"] != "nested" {
		t.Errorf("a whole-value var keeps its map: %v", c.ImageResource.Source)
	}
	_, err = ParseTaskConfig("t.yml", []byte("platform: ((os))\nparams: {A: ((x)), B: x((src))}\n"), v)
	if err == nil || !strings.Contains(err.Error(), "undefined vars: os, x") || !strings.Contains(err.Error(), "cannot interpolate non-primitive value (a map) from var: src") {
		t.Errorf("ParseTaskConfig() = %v", err)
	}
}

// The cases atc's own task tests pin (atc/task_test.go), and YAML 1.1's
// integer forms that fly's yaml.v2 reads.
func TestParamsCoerceNumbersAsFly(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"1059262", "1059262"},
		{"18446744073709551615", "18446744073709551615"},
		{"1.8446744e+19", "18446744000000000000"},
		{`"1.8446744e+19"`, "1.8446744e+19"},
		{"1059262.123123123", "1059262.123123123"},
		{"1e3", "1000"},
		{"-0.000001", "-0.000001"},
		{"1e21", "1e+21"},
		{"0x1F", "31"},
		{"[1.50, 2]", "[1.5,2]"},
	}
	for _, tt := range tests {
		c, err := ParseTaskConfig("t.yml", []byte("platform: linux\nrun: {path: a/file}\nparams:\n  P: "+tt.yaml+"\n"), Vars{})
		if err != nil {
			t.Fatalf("%s: %v", tt.yaml, err)
		}
		if got := c.Params["P"]; got != tt.want {
			t.Errorf("param %s = %q, want %q", tt.yaml, got, tt.want)
		}
	}
}
