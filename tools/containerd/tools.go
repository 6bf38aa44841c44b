//go:build tools

// Package tools pins containerd, built into bin/ by `make cluster` for the
// test cluster's real nodes (containerd, ctr, containerd-shim-runc-v2). It
// is its own module so that containerd builds with the dependency versions
// its release was tested with, not the ones the control plane needs.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
