//go:build linux

// Command kubectl-concourse-agent is the plugin's in-container agent
// (package agent). The launcher runs it as `kubectl-concourse-agent serve
// PATH`, PATH being where it was written: it removes that file first, so
// nothing of it stays in the container (PATH is "" for the copy a warm
// cache keeps, in the plugin's own claim). `probe` exits 0 at once: the
// launcher's test of whether a directory lets it run.
package main

import (
	"fmt"
	"os"

	"github.com/kubectl-concourse/kubectl-concourse/agent"
	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "probe" {
		return
	}
	if len(os.Args) != 3 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: kubectl-concourse-agent serve PATH | probe")
		os.Exit(2)
	}
	// Hashed before its file goes (a kept copy, "", is read through
	// /proc/self/exe).
	self, err := selfDigest(os.Args[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubectl-concourse-agent: %v\n", err)
		os.Exit(1)
	}
	if os.Args[2] != "" { // "": a copy kept in a warm cache, which stays for the next run
		os.Remove(os.Args[2])
	}
	if err := agent.Serve(os.Stdin, os.Stdout, agent.Options{Stderr: os.Stderr, Self: self}); err != nil {
		fmt.Fprintf(os.Stderr, "kubectl-concourse-agent: %v\n", err)
		os.Exit(1)
	}
}

// selfDigest is the SHA-256 (hex) of the file at path, or of the running
// executable when path is "": the plugin compares it with the binary it
// sent, which the launcher wrote having checked only its size.
func selfDigest(path string) (string, error) {
	if path == "" {
		path = "/proc/self/exe"
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sum, err := protocol.ContentSHA256(f)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return sum, nil
}
