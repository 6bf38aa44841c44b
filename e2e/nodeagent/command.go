package nodeagent

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/images"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// containerCommand applies Kubernetes' rules for a container's argv: command
// replaces the image's Entrypoint (and drops its Cmd), args replace Cmd, and
// $(VAR) references expand from the container's environment.
func containerCommand(c *corev1.Container, img images.Config, env []string) []string {
	var argv []string
	switch {
	case len(c.Command) > 0:
		argv = append(argv, c.Command...)
		argv = append(argv, c.Args...)
	case len(c.Args) > 0:
		argv = append(append(argv, img.Entrypoint...), c.Args...)
	default:
		argv = append(append(argv, img.Entrypoint...), img.Cmd...)
	}
	if len(c.Command) == 0 && len(c.Args) == 0 {
		// The image's own defaults are not subject to expansion.
		return argv
	}
	mapping := expansion.MappingFuncFor(envMap(env))
	for i := range argv {
		argv[i] = expansion.Expand(argv[i], mapping)
	}
	return argv
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func envLookup(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// errCommandNotFound is a command that does not exist in the container;
// exec fails with it, in runc's words.
type errCommandNotFound struct {
	name     string
	withPath bool // name has a slash: no $PATH search was done
}

func (e errCommandNotFound) Error() string {
	if e.withPath {
		return fmt.Sprintf("exec: %q: no such file or directory", e.name)
	}
	return fmt.Sprintf("exec: %q: executable file not found in $PATH", e.name)
}

// lookPath resolves argv0 the way execvp would inside the container's root
// filesystem, returning the path as the container sees it. Symlinks are
// resolved within rootfs, so a hostile link cannot point the check outside.
func lookPath(rootfs, argv0 string, env []string) (string, error) {
	if argv0 == "" {
		return "", errCommandNotFound{name: argv0}
	}
	if strings.Contains(argv0, "/") {
		if !isExecutable(rootfs, argv0) {
			return "", errCommandNotFound{name: argv0, withPath: true}
		}
		return argv0, nil
	}
	search, ok := envLookup(env, "PATH")
	if !ok {
		search = defaultPath
	}
	for _, dir := range filepath.SplitList(search) {
		if dir == "" || !path.IsAbs(dir) {
			continue
		}
		candidate := path.Join(dir, argv0)
		if isExecutable(rootfs, candidate) {
			return candidate, nil
		}
	}
	return "", errCommandNotFound{name: argv0}
}

func isExecutable(rootfs, p string) bool {
	host, err := securejoin.SecureJoin(rootfs, p)
	if err != nil {
		return false
	}
	fi, err := os.Stat(host)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
