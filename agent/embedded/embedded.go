// Package embedded holds the agent's binaries (cmd/kubectl-concourse-agent)
// for the architectures the plugin can start it on, gzipped. They are
// committed, built by `make agent`, and `make agent-check` (part of `make
// lint`) rebuilds them and fails when they differ: so `go install`, which
// runs no make, installs a plugin whose agent matches its source.
package embedded

import (
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io"
	"strings"
	"sync"
)

//go:embed kubectl-concourse-agent-linux-*.gz
var binaries embed.FS

// Arch is the GOARCH of the agent that runs on a machine, as `uname -m`
// names it, or "" when there is none.
func Arch(machine string) string {
	switch m := strings.TrimSpace(machine); {
	case m == "x86_64" || m == "amd64":
		return "amd64"
	case m == "aarch64" || m == "arm64" || strings.HasPrefix(m, "armv8"):
		return "arm64"
	}
	return ""
}

// Gzipped is the agent for goarch, gzipped.
func Gzipped(goarch string) ([]byte, error) {
	b, err := binaries.ReadFile("kubectl-concourse-agent-linux-" + goarch + ".gz")
	if err != nil {
		return nil, fmt.Errorf("no agent for linux/%s", goarch)
	}
	return b, nil
}

var (
	mu  sync.Mutex
	raw = map[string][]byte{}
)

// Binary is the agent for goarch, ready to run. It is decompressed once.
func Binary(goarch string) ([]byte, error) {
	mu.Lock()
	defer mu.Unlock()
	if b, ok := raw[goarch]; ok {
		return b, nil
	}
	gz, err := Gzipped(goarch)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	raw[goarch] = b
	return b, nil
}
