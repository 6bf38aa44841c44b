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
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "probe" {
		return
	}
	if len(os.Args) != 3 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: kubectl-concourse-agent serve PATH | probe")
		os.Exit(2)
	}
	if os.Args[2] != "" { // "": a copy kept in a warm cache, which stays for the next run
		os.Remove(os.Args[2])
	}
	if err := agent.Serve(os.Stdin, os.Stdout, agent.Options{Stderr: os.Stderr}); err != nil {
		fmt.Fprintf(os.Stderr, "kubectl-concourse-agent: %v\n", err)
		os.Exit(1)
	}
}
