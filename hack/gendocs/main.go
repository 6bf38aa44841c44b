// Command gendocs writes one Markdown reference page per kubectl concourse
// command from the cobra command tree (`make docs` runs it on docs/reference).
// Pages of commands that no longer exist are removed; the package's test fails
// when the committed pages differ from what this program writes.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra/doc"

	"github.com/kubectl-concourse/kubectl-concourse/cli"
)

const header = "<!-- Generated from the cobra commands by `make docs` (hack/gendocs). Do not edit. -->\n\n"

func main() {
	dir := "docs/reference"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := generate(dir); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
}

// generate replaces every page in dir with freshly generated ones.
func generate(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	prepend := func(string) string { return header }
	link := func(name string) string { return name }
	return doc.GenMarkdownTreeCustom(cli.NewCmdRootForDocs(), dir, prepend, link)
}
