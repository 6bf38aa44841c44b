//go:build tools

// Package tools pins krew's own binaries, built into bin/ by `make krew`:
// the e2e test installs the plugin with the real krew and checks the manifest
// with the validator krew-index runs. This module is separate because krew
// v0.4.3 needs Kubernetes libraries far older than the plugin's.
package tools

import (
	_ "sigs.k8s.io/krew/cmd/krew"
	_ "sigs.k8s.io/krew/cmd/validate-krew-manifest"
)
