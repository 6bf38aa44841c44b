package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReferenceIsCurrent fails when docs/reference differs from the commands:
// a flag, a command or a help text changed without `make docs`.
func TestReferenceIsCurrent(t *testing.T) {
	fresh := t.TempDir()
	if err := generate(fresh); err != nil {
		t.Fatal(err)
	}
	want := readPages(t, fresh)
	got := readPages(t, filepath.Join("..", "..", "docs", "reference"))
	for name, page := range want {
		switch committed, ok := got[name]; {
		case !ok:
			t.Errorf("docs/reference/%s is missing: run `make docs`", name)
		case committed != page:
			t.Errorf("docs/reference/%s is stale: run `make docs`", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("docs/reference/%s documents no command: run `make docs`", name)
		}
	}
}

func TestGenerateTwiceIsStable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kubectl_concourse_gone.md"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := generate(dir); err != nil {
		t.Fatal(err)
	}
	first := readPages(t, dir)
	if _, ok := first["kubectl_concourse_gone.md"]; ok {
		t.Error("a page of a command that does not exist was kept")
	}
	for _, name := range []string{"kubectl_concourse.md", "kubectl_concourse_version.md", "kubectl_concourse_completion_bash.md"} {
		if _, ok := first[name]; !ok {
			t.Errorf("no page %s", name)
		}
	}
	t.Setenv("HOME", "/elsewhere")
	if err := generate(dir); err != nil {
		t.Fatal(err)
	}
	for name, page := range readPages(t, dir) {
		if first[name] != page {
			t.Errorf("%s changed with $HOME", name)
		}
	}
}

func readPages(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pages[filepath.Base(f)] = string(data)
	}
	return pages
}
