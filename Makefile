# kubectl-concourse. `make help` lists the targets.
GO      ?= go
BIN     := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
PKG     := github.com/kubectl-concourse/kubectl-concourse
LDFLAGS := -s -w -X $(PKG)/cli.version=$(VERSION) -X $(PKG)/cli.commit=$(COMMIT) -X $(PKG)/cli.date=$(DATE)

# The test cluster's control plane, built from modules at this version.
K8S_VERSION := v1.37.2
K8S_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
               -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37
CONTROL_PLANE := $(BIN)/etcd $(BIN)/kube-apiserver $(BIN)/kube-controller-manager $(BIN)/kube-scheduler $(BIN)/kubectl

.PHONY: help build cluster test unit e2e FORCE

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build bin/kubectl-concourse
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/kubectl-concourse ./cmd/kubectl-concourse

cluster: $(CONTROL_PLANE) $(BIN)/testcluster $(BIN)/pause ## build the test cluster (control plane from modules, node agent, kubectl)

# Control-plane binaries are rebuilt only when the e2e module's pins change:
# a cold build takes minutes, and bin/ is kept between runs.
$(BIN)/etcd: e2e/go.mod e2e/go.sum
	cd e2e && $(GO) build -o $@ go.etcd.io/etcd/server/v3
$(BIN)/kube-%: e2e/go.mod e2e/go.sum
	cd e2e && $(GO) build -ldflags "$(K8S_LDFLAGS)" -o $@ k8s.io/kubernetes/cmd/kube-$*
$(BIN)/kubectl: e2e/go.mod e2e/go.sum e2e/cmd/kubectl/main.go
	cd e2e && $(GO) build -ldflags "$(K8S_LDFLAGS)" -o $@ ./cmd/kubectl
$(BIN)/testcluster: FORCE
	cd e2e && $(GO) build -o $@ ./cmd/testcluster
# The distroless image's only binary: static, it runs chrooted with no libc.
$(BIN)/pause: FORCE
	cd e2e && CGO_ENABLED=0 $(GO) build -o $@ ./cmd/pause

test: unit e2e ## run unit and end-to-end tests

unit: ## unit tests of the plugin
	$(GO) test -count=1 ./...

e2e: build cluster ## end-to-end tests on the test cluster
	cd e2e && $(GO) test -count=1 -timeout 40m ./...
