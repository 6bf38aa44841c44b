# kubectl-concourse. `make help` lists the targets.
GO      ?= go
BIN     := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
PKG     := github.com/kubectl-concourse/kubectl-concourse
LDFLAGS := -s -w -X $(PKG)/cli.version=$(VERSION) -X $(PKG)/cli.commit=$(COMMIT) -X $(PKG)/cli.date=$(DATE)

# Release archives: `make release VERSION=vX.Y.Z` packs every platform into
# $(DIST); PLATFORMS=linux/amd64,... narrows it (default: the six .krew.yaml lists).
DIST      ?= $(CURDIR)/dist
PLATFORMS ?=
# Pinned linters and tools, fetched through the Go module proxy only.
STATICCHECK_VERSION := v0.8.2
STATICCHECK         := $(BIN)/staticcheck-$(STATICCHECK_VERSION)/staticcheck
LINT_MODULES        := . e2e

# The test cluster's control plane, built from modules at this version.
K8S_VERSION := v1.37.2
K8S_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
               -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37
CONTROL_PLANE := $(BIN)/etcd $(BIN)/kube-apiserver $(BIN)/kube-controller-manager $(BIN)/kube-scheduler $(BIN)/kubectl
# A real node: the kubelet (e2e module) and containerd (tools/containerd), with
# Debian's runc and CNI plugins (.ci/run installs them).
REAL_NODE := $(BIN)/kubelet $(BIN)/containerd $(BIN)/containerd-shim-runc-v2 $(BIN)/ctr

.PHONY: help build agent agent-check cluster test unit fuzz e2e release lint docs bench krew demo FORCE

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# Built as a release builds it (static, -trimpath): the e2e tests run what
# ships, and a cold CI compiles the plugin's packages once for the three
# (make build, the e2e tests' own build, TestKrew's linux/amd64 release).
build: ## build bin/kubectl-concourse (and put its completion helper beside it)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/kubectl-concourse ./cmd/kubectl-concourse
	install -m 0755 kubectl_complete-concourse $(BIN)/

# The in-container agent, for every architecture the plugin starts it on, is
# committed in agent/embedded (docs/architecture.md "The in-container agent"):
# reproducible (no paths, no build id, GOAMD64/GOARM64 pinned), as it runs:
# a launch sends it straight from the plugin's memory, with nothing to unpack.
AGENT_ARCHS    := amd64 arm64
AGENT_DIR      ?= agent/embedded
AGENT_LDFLAGS  := -s -w -buildid=
agent: ## build the in-container agent (linux/amd64, linux/arm64) into agent/embedded; commit the result
	@mkdir -p $(AGENT_DIR)
	@set -e; for a in $(AGENT_ARCHS); do \
		GOOS=linux GOARCH=$$a GOAMD64=v1 GOARM64=v8.0 CGO_ENABLED=0 GOFLAGS= \
			$(GO) build -trimpath -ldflags '$(AGENT_LDFLAGS)' -o $(AGENT_DIR)/kubectl-concourse-agent-linux-$$a ./cmd/kubectl-concourse-agent; \
		echo "agent: linux/$$a $$(wc -c <$(AGENT_DIR)/kubectl-concourse-agent-linux-$$a) bytes"; \
	done

agent-check: ## rebuild the agent and fail if it differs from the committed binaries
	@rm -rf $(BIN)/agent-check
	@$(MAKE) --no-print-directory agent AGENT_DIR=$(BIN)/agent-check
	@status=0; for a in $(AGENT_ARCHS); do \
		f=kubectl-concourse-agent-linux-$$a; \
		cmp -s agent/embedded/$$f $(BIN)/agent-check/$$f || { \
			echo "agent-check: agent/embedded/$$f differs from its source (built with $$($(GO) env GOVERSION)): run make agent and commit it"; status=1; }; \
	done; exit $$status

cluster: $(CONTROL_PLANE) $(REAL_NODE) $(BIN)/testcluster $(BIN)/pause ## build the test cluster (control plane and kubelet from modules, containerd, node agent, kubectl)

# Control-plane binaries are rebuilt only when the e2e module's pins change:
# a cold build takes minutes, and bin/ is kept between runs.
$(BIN)/etcd: e2e/go.mod e2e/go.sum
	cd e2e && $(GO) build -o $@ go.etcd.io/etcd/server/v3
$(BIN)/kube-%: e2e/go.mod e2e/go.sum
	cd e2e && $(GO) build -ldflags "$(K8S_LDFLAGS)" -o $@ k8s.io/kubernetes/cmd/kube-$*
$(BIN)/kubelet: e2e/go.mod e2e/go.sum
	cd e2e && $(GO) build -ldflags "$(K8S_LDFLAGS)" -o $@ k8s.io/kubernetes/cmd/kubelet
# containerd from its own module, so that it builds with the dependencies its
# release pins; rebuilt only when that module changes. no_btrfs: no btrfs
# headers needed (the nodes use overlayfs).
$(BIN)/containerd $(BIN)/containerd-shim-runc-v2 $(BIN)/ctr: tools/containerd/go.mod tools/containerd/go.sum
	cd tools/containerd && $(GO) build -tags no_btrfs \
		-ldflags "-X github.com/containerd/containerd/v2/version.Version=$$($(GO) list -m -f '{{.Version}}' github.com/containerd/containerd/v2 | sed 's/^v//')" \
		-o $@ github.com/containerd/containerd/v2/cmd/$(notdir $@)
$(BIN)/kubectl: e2e/go.mod e2e/go.sum e2e/cmd/kubectl/main.go
	cd e2e && $(GO) build -ldflags "$(K8S_LDFLAGS)" -o $@ ./cmd/kubectl
$(BIN)/testcluster: FORCE
	cd e2e && $(GO) build -o $@ ./cmd/testcluster
# The distroless image's only binary: static, it runs chrooted with no libc.
$(BIN)/pause: FORCE
	cd e2e && CGO_ENABLED=0 $(GO) build -o $@ ./cmd/pause

test: unit fuzz e2e ## run unit tests, a short fuzzing of hostile input, and end-to-end tests

unit: ## unit tests of the plugin
	$(GO) test -count=1 ./...

# A short fuzzing run of the code that reads hostile input: every CI run explores
# new inputs on top of the seed corpus that `unit` already replays. The tar
# extractor and the LZO decoder are leaf packages of the standard library only
# (transfer/untar with treeroot, transfer/lzo), so their fuzz builds
# instrument nothing else. The budgets
# are counts of runs (about 10-20 s each on the CI machine), not durations: with
# a duration, Go 1.26's fuzz coordinator can report its own deadline as a
# failure (`context deadline exceeded`, no failing input: golang/go#75804,
# fixed in Go 1.27), which a loaded machine hits. Each new interesting input is
# minimized for FUZZ_MINIMIZE runs only: at 2 s each, minimizing took 75 of
# FuzzExtract's 86 s from an empty cache, for a corpus a CI clone does not keep
# (a crasher is still written to testdata/fuzz, minimized as far as that goes).
FUZZ_MINIMIZE ?= 100x
FUZZ_EXTRACT ?= 10000x
FUZZ_LZO ?= 40000x
FUZZ_ENCODE ?= 60000x
FUZZ_FRAME ?= 20000x
fuzz: ## fuzz the tar extractor, the LZO decoder, the label encoding and the agent's frame reader (FUZZ_EXTRACT, FUZZ_LZO, FUZZ_ENCODE, FUZZ_FRAME runs)
	$(GO) test -run '^$$' -fuzz '^FuzzExtract$$' -fuzztime $(FUZZ_EXTRACT) -fuzzminimizetime $(FUZZ_MINIMIZE) ./transfer/untar
	$(GO) test -run '^$$' -fuzz '^FuzzLZO1XDecompress$$' -fuzztime $(FUZZ_LZO) -fuzzminimizetime $(FUZZ_MINIMIZE) ./transfer/lzo
	$(GO) test -run '^$$' -fuzz '^FuzzEncode$$' -fuzztime $(FUZZ_ENCODE) -fuzzminimizetime $(FUZZ_MINIMIZE) ./selector/labelenc
	$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(FUZZ_FRAME) -fuzzminimizetime $(FUZZ_MINIMIZE) ./agent/frame

# The tests run on real nodes too where the machine can (TESTCLUSTER_REAL_NODES:
# docs/test-cluster.md); the first line says whether it can.
e2e: build cluster ## end-to-end tests on the test cluster (agent and real nodes)
	@$(BIN)/testcluster check
	cd e2e && $(GO) test -count=1 -timeout 40m -parallel 8 ./...

release: ## cross-compile and pack dist/ archives and checksums.txt: make release VERSION=vX.Y.Z
	$(GO) run ./hack/release -version "$(VERSION)" -date "$(DATE)" -dist "$(DIST)" -ldflags "$(LDFLAGS)" \
		$(if $(PLATFORMS),-platforms "$(PLATFORMS)")

# Every check runs, so one run lists every finding; the target fails if any did.
lint: $(STATICCHECK) agent-check ## gofmt, go vet and staticcheck on the plugin and e2e modules, and agent-check
	@status=0; \
	unformatted=$$(find . -path ./.git -prune -o -path ./.cache -prune -o -name '*.go' -print | xargs gofmt -l); \
	if [ -n "$$unformatted" ]; then echo "gofmt: not formatted:"; echo "$$unformatted"; status=1; fi; \
	for m in $(LINT_MODULES); do \
		echo "lint: $$m"; \
		(cd $$m && $(GO) vet ./...) || status=1; \
		(cd $$m && $(STATICCHECK) ./...) || status=1; \
	done; \
	exit $$status

# Installed under a versioned directory, so that changing the pin rebuilds it.
$(STATICCHECK):
	GOBIN=$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

docs: ## regenerate docs/reference from the commands (a unit test fails when it is stale)
	$(GO) run ./hack/gendocs docs/reference

# krew and krew-index's manifest validator, from their own module (tools/krew):
# the krew e2e test installs the release through them. krew is named as the
# plugin it is (kubectl-krew) because the validator calls `kubectl krew`.
krew: $(BIN)/kubectl-krew $(BIN)/validate-krew-manifest ## build krew and validate-krew-manifest (v0.4.3) into bin/
$(BIN)/kubectl-krew: tools/krew/go.mod tools/krew/go.sum
	cd tools/krew && $(GO) build -o $@ sigs.k8s.io/krew/cmd/krew
$(BIN)/validate-krew-manifest: tools/krew/go.mod tools/krew/go.sum
	cd tools/krew && $(GO) build -o $@ sigs.k8s.io/krew/cmd/validate-krew-manifest

demo: build cluster ## start the test cluster, seed a Concourse installation and tour every command (leaves the cluster running)
	hack/demo.sh

# ---- Benchmarks: THE LEAD EXTENDS THIS LIST ------------------------------------
# One make target per benchmark program; each prints its own figures (and the
# ratios its issue asks for). Add a `bench-<name>:` target below and its name
# here, e.g. BENCHES += bench-hijack.
BENCHES := bench-hijack bench-artifacts bench-views bench-execute

bench: build cluster ## run every benchmark listed in BENCHES; each prints its figures
	@if [ -z "$(strip $(BENCHES))" ]; then echo "bench: no benchmark listed in BENCHES (Makefile)"; exit 1; fi
	@set -e; for b in $(BENCHES); do echo "== $$b"; $(MAKE) --no-print-directory $$b; done

# The programs in e2e/bench/<name> start their own test cluster.
.PHONY: $(BENCHES)
$(BENCHES): bench-%:
	cd e2e && $(GO) run ./bench/$*
