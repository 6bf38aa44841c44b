package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"

	"k8s.io/cli-runtime/pkg/printers"
)

// gitFiles lists what `fly execute` uploads from a git work tree: tracked
// files minus deleted ones plus untracked files that git's standard
// excludes (.gitignore files, .git/info/exclude, core.excludesFile) do not
// ignore. It asks git itself rather than a gitignore library: docs/
// benchmarks.md has the measurement (git is faster on large trees, and
// equal to git by definition). Paths are slash separated and relative to
// dir; an empty work tree gives an empty, non-nil list.
//
// Outside a work tree it returns errNotWorkTree, and without git an error
// that is exec.ErrNotFound: fly then uploads everything. Any other failure
// (git refusing the tree, as "dubious ownership" does) is returned: fly
// would upload everything, .git and ignored secrets included, without a
// word; we say so instead.
func gitFiles(ctx context.Context, dir string) ([]string, error) {
	tracked, err := gitLsFiles(ctx, dir)
	if err != nil {
		return nil, err
	}
	deleted, err := gitLsFiles(ctx, dir, "--deleted")
	if err != nil {
		return nil, err
	}
	others, err := gitLsFiles(ctx, dir, "--others", "--exclude-standard")
	if err != nil {
		return nil, err
	}
	gone := map[string]bool{}
	for _, f := range deleted {
		gone[f] = true
	}
	files := []string{}
	seen := map[string]bool{}
	for _, f := range append(tracked, others...) {
		if !gone[f] && !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	sort.Strings(files)
	return files, nil
}

// gitReason is the line of git's stderr that says why it failed (the
// "fatal:" one; hints follow it), else its last line.
func gitReason(stderr string) string {
	lines := strings.Split(stderr, "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "fatal: ") || strings.HasPrefix(l, "error: ") {
			return l
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}

// errNotWorkTree: the directory is in no git work tree.
var errNotWorkTree = errors.New("not in a git work tree")

func gitLsFiles(ctx context.Context, dir string, args ...string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"ls-files", "-z"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANGUAGE=") // git's words, to tell "not a repository" apart
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if errors.Is(err, exec.ErrNotFound) {
		return nil, err
	}
	if err != nil && ctx.Err() != nil {
		// git was killed because the user interrupted: that is the error,
		// not git's "signal: killed".
		return nil, context.Cause(ctx)
	}
	if err != nil {
		msg := string(bytes.TrimSpace(stderr.Bytes()))
		if strings.Contains(msg, "not a git repository") {
			return nil, errNotWorkTree
		}
		return nil, fmt.Errorf("%s in %s: %w: %s", strings.Join(cmd.Args, " "), dir, err, printers.EscapeTerminal(gitReason(msg)))
	}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	return files, nil
}
