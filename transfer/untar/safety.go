package untar

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// errUnsafe marks an archive entry refused because it could write, or make a
// later writer write, outside the destination. Such an entry fails the whole
// transfer: a hostile archive never lands.
var errUnsafe = errors.New("unsafe entry")

// EntryPath turns a tar entry name into a path relative to the transfer's
// top entry, which the archive must name as prefix (the remote base name).
// "" is the top entry itself. Names are never repaired: an absolute name or
// a ".." component is refused, because no honest tar emits them.
func EntryPath(name, prefix string) (string, error) {
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

// terminalEscaper neutralises what a name from the container could do to
// a terminal (ESC starts a control sequence, CR overwrites the line), as
// k8s.io/cli-runtime's printers.EscapeTerminal does, which this package
// does not import: it would bring client-go into every fuzzing build.
var terminalEscaper = strings.NewReplacer("\x1b", "^[", "\r", `\r`)

func escape(s string) string {
	return terminalEscaper.Replace(s)
}
