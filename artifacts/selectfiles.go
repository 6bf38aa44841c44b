package artifacts

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

// gitFiles lists what `fly execute` uploads from a git work tree: tracked
// files minus deleted ones plus untracked files that git's standard
// excludes (.gitignore files, .git/info/exclude, core.excludesFile) do not
// ignore. It asks git itself rather than a gitignore library: docs/
// benchmarks.md has the measurement (git is faster on large trees, and
// equal to git by definition). ok is false when dir is not in a work tree
// or git is missing, and then everything is uploaded, as fly does.
// Paths are slash separated and relative to dir.
func gitFiles(ctx context.Context, dir string) (files []string, ok bool) {
	tracked, err := gitLsFiles(ctx, dir)
	if err != nil {
		return nil, false
	}
	deleted, err := gitLsFiles(ctx, dir, "--deleted")
	if err != nil {
		return nil, false
	}
	others, err := gitLsFiles(ctx, dir, "--others", "--exclude-standard")
	if err != nil {
		return nil, false
	}
	gone := map[string]bool{}
	for _, f := range deleted {
		gone[f] = true
	}
	seen := map[string]bool{}
	for _, f := range append(tracked, others...) {
		if !gone[f] && !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	sort.Strings(files)
	return files, true
}

func gitLsFiles(ctx context.Context, dir string, args ...string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"ls-files", "-z"}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	return files, nil
}
