// Package embedded holds the agent's binaries (cmd/kubectl-concourse-agent)
// for the architectures the plugin can start it on. They are committed,
// built by `make agent`, and `make agent-check` (part of `make lint`)
// rebuilds them and fails when they differ: so `go install`, which runs no
// make, installs a plugin whose agent matches its source.
//
// They are embedded as they run, not compressed: a launch sends one from
// the plugin's memory, where gunzipping it cost 40 ms on the launch's
// critical path (stdlib gzip, 3.6 MB, on the 2-core test machine; the
// whole launch took 80). Release archives compress them anyway.
package embedded

import (
	"crypto/sha256"
	_ "embed" // the agents' binaries
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// The binaries are []byte variables, not an embed.FS: FS.ReadFile copies
// the file onto the heap (3.6 MB a launch), where these are the
// executable's own pages, read in only as a launch sends them.
var (
	//go:embed kubectl-concourse-agent-linux-amd64
	agentAMD64 []byte
	//go:embed kubectl-concourse-agent-linux-arm64
	agentARM64 []byte

	binaries = map[string][]byte{"amd64": agentAMD64, "arm64": agentARM64}
)

// machines are the names `uname -m` gives the machines each agent runs
// on; arm64's also runs on any armv8 (armv8l, armv8b).
var machines = map[string][]string{
	"amd64": {"x86_64", "amd64"},
	"arm64": {"aarch64", "arm64"},
}

// Arch is the GOARCH of the agent that runs on a machine, as `uname -m`
// names it, or "" when there is none.
func Arch(machine string) string {
	m := strings.TrimSpace(machine)
	for goarch, names := range machines {
		if slices.Contains(names, m) {
			return goarch
		}
	}
	if strings.HasPrefix(m, "armv8") {
		return "arm64"
	}
	return ""
}

// Machines are the names `uname -m` gives the machines the agent for
// goarch runs on (Arch's exact matches).
func Machines(goarch string) []string {
	return machines[goarch]
}

// Binary is the agent for goarch, ready to run. The slice is the
// embedded data itself: callers must not modify it.
func Binary(goarch string) ([]byte, error) {
	b, ok := binaries[goarch]
	if !ok {
		return nil, fmt.Errorf("no agent for linux/%s", goarch)
	}
	return b, nil
}

var digests sync.Map // goarch -> func() (string, error)

// Digest is the SHA-256 of the agent for goarch (hex): the running agent
// reports its own, and a copy kept in a warm cache runs only when its
// content is this. Worked out once per process.
func Digest(goarch string) (string, error) {
	f, _ := digests.LoadOrStore(goarch, sync.OnceValues(func() (string, error) {
		b, err := Binary(goarch)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:]), nil
	}))
	return f.(func() (string, error))()
}
