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
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
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

// Binary is the agent for goarch, ready to run: a reader that gunzips it
// as it is read, and its size. It is never held whole in memory: a
// launch streams it into the exec as it is decompressed, which costs the
// plugin no more than gzip's window, where a decompressed copy cost 3.5 MB
// and, while it grew, as much again.
func Binary(goarch string) (io.Reader, int64, error) {
	gz, err := Gzipped(goarch)
	if err != nil {
		return nil, 0, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, 0, err
	}
	// A gzip stream ends with its input's size modulo 2^32 (ISIZE): the
	// binary is far smaller.
	return zr, int64(binary.LittleEndian.Uint32(gz[len(gz)-4:])), nil
}

var digests sync.Map // goarch -> func() (string, error)

// Digest is the SHA-256 of the agent for goarch, ready to run (hex): a
// copy kept in a warm cache runs only when its content is this. Worked
// out once per process.
func Digest(goarch string) (string, error) {
	f, _ := digests.LoadOrStore(goarch, sync.OnceValues(func() (string, error) {
		r, _, err := Binary(goarch)
		if err != nil {
			return "", err
		}
		return protocol.ContentSHA256(r)
	}))
	return f.(func() (string, error))()
}
