package artifacts

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// maxLinkHops bounds symlink chains during resolution, as the kernel's
// MAXSYMLINKS (40) does, so a loop is reported instead of followed forever.
const maxLinkHops = 40

// errUnsafe marks an archive entry refused because it could write, or make a
// later writer write, outside the destination. Such an entry fails the whole
// transfer: a hostile archive never lands.
var errUnsafe = errors.New("unsafe entry")

// entryPath turns a tar entry name into a path relative to the transfer's
// top entry, which the archive must name as prefix (the remote base name).
// "" is the top entry itself. Names are never repaired: an absolute name or
// a ".." component is refused, because no honest tar emits them.
func entryPath(name, prefix string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: empty name or NUL byte in %q", errUnsafe, name)
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: absolute path %q", errUnsafe, name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("%w: %q has a \"..\" component", errUnsafe, name)
		}
	}
	clean := path.Clean(name)
	switch {
	case clean == prefix:
		return "", nil
	case strings.HasPrefix(clean, prefix+"/"):
		return clean[len(prefix)+1:], nil
	default:
		return "", fmt.Errorf("%w: %q is not under %q", errUnsafe, name, prefix)
	}
}

// resolveInTree follows target as the kernel would from the directory of the
// symlink at rel, through the symlinks in links (tree-relative names to
// targets), and fails when any step leaves the tree: an absolute target, a
// ".." above the top, or a chain whose later links climb out of a directory
// an earlier link entered. A dangling target inside the tree is accepted.
func resolveInTree(links map[string]string, rel, target string) error {
	if path.IsAbs(target) {
		return fmt.Errorf("%w: symlink %q points to absolute path %q", errUnsafe, rel, target)
	}
	var stack []string
	if dir := path.Dir(rel); dir != "." {
		stack = strings.Split(dir, "/")
	}
	todo := strings.Split(target, "/")
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return fmt.Errorf("%w: symlink %q -> %q leads outside the destination", errUnsafe, rel, target)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, c)
		next, ok := links[strings.Join(stack, "/")]
		if !ok {
			continue
		}
		if hops++; hops > maxLinkHops {
			return fmt.Errorf("%w: symlink %q -> %q: too many levels of symlinks", errUnsafe, rel, target)
		}
		if path.IsAbs(next) {
			return fmt.Errorf("%w: symlink %q -> %q passes through a symlink to absolute path %q", errUnsafe, rel, target, next)
		}
		stack = stack[:len(stack)-1]
		todo = append(strings.Split(next, "/"), todo...)
	}
	return nil
}
