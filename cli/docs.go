package cli

import (
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/util/homedir"
)

// NewCmdRootForDocs returns the root command as the reference pages
// (docs/reference, `make docs`) describe it: no generation date, and defaults
// computed from the machine (the home directory in --cache-dir) written as
// $HOME, so that the pages are the same wherever they are generated.
func NewCmdRootForDocs() *cobra.Command {
	root := NewCmdRoot(genericiooptions.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard})
	root.DisableAutoGenTag = true
	home := homedir.HomeDir()
	if home == "" || home == string(filepath.Separator) {
		return root
	}
	unhome := func(f *pflag.Flag) {
		if f.DefValue == home || strings.HasPrefix(f.DefValue, home+string(filepath.Separator)) {
			f.DefValue = "$HOME" + strings.TrimPrefix(f.DefValue, home)
		}
	}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.PersistentFlags().VisitAll(unhome)
		c.Flags().VisitAll(unhome)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return root
}
