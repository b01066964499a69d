# Warren's developer entry points. `make` alone lists them; every target
# carrying a `## description` is listed by `make help`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO      ?= go
MODULE  := github.com/warren-orchestrator/warren
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X $(MODULE)/cmd/warren/cli.Version=$(VERSION) -X $(MODULE)/cmd/warren/cli.Commit=$(COMMIT)

# -race stays on: the edges (dispatcher, agent, raft wiring) are where the
# goroutines live, and today it costs ~50 s once on a cold build cache and a
# few seconds after. Long seeded sim sweeps belong in `make sim`, not here, so
# `make test` stays well inside CI's budget. Override with TEST_FLAGS=-count=1.
TEST_FLAGS ?= -count=1 -race

# -count=6 gives benchstat enough samples for a confidence interval.
BENCH_TIME  ?= 1s
BENCH_COUNT ?= 6
BENCH_OUT   ?= bench/results/latest.txt

# Labelled suites run through the Ginkgo CLI at the version pinned in go.mod:
# `go test ./... -args -ginkgo.label-filter=...` would fail every package
# whose tests are plain `testing` ones (they reject the unknown flag).
GINKGO       ?= $(GO) run github.com/onsi/ginkgo/v2/ginkgo
GINKGO_FLAGS ?= -r --keep-going --timeout=1h

# go_test_pkgs runs `go test $(2) PACKAGES $(3)` on the packages matching
# $(1), or says that none exist yet: go test fails on a pattern that matches
# no package, and bench/ and sim/ fill in over later issues.
define go_test_pkgs
pkgs="$$($(GO) list -e $(1) 2>/dev/null)"; \
if [ -z "$$pkgs" ]; then echo "$@: no Go packages match $(1) yet; nothing to run"; \
else $(GO) test $(2) $$pkgs $(3); fi
endef

.PHONY: help build demo demo-stop test bench sim chaos integ e2e lint fmt ci clean

help: ## Show this list
	@echo "Usage: make TARGET"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build bin/warren with version and commit stamped in
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/warren ./cmd/warren

demo: build ## Start a 3-manager cluster on loopback, deploy a service, kill -9 the leader
	bash scripts/demo.sh

demo-stop: ## Stop the cluster `make demo` started
	bash scripts/demo-stop.sh

test: ## Run every test suite (all Ginkgo suites, via go test)
	$(GO) test $(TEST_FLAGS) ./...

bench: ## Run the benchmarks in bench/, output to bench/results/latest.txt
	@$(call go_test_pkgs,./bench/...,-run '^$$' -bench . -benchmem -benchtime=$(BENCH_TIME) -count=$(BENCH_COUNT),| { mkdir -p $(dir $(BENCH_OUT)) && tee $(BENCH_OUT); })

sim: ## Run the simulator's specs: every scenario for a few seeds, the broken variants
	$(GO) test -count=1 ./sim/...

# CHAOS_RUNS seeds of every scenario, each run twice to prove it replays bit
# for bit; then RAFT_RUNS seeds of the consensus scenarios on real raft
# (tier B). Prints the failing seeds with the command that replays each.
CHAOS_RUNS ?= 200
RAFT_RUNS  ?= 20
RAFT_SCENARIOS := scenarios/leader-failover.yaml scenarios/partition.yaml scenarios/chaos.yaml

chaos: build ## Run every scenario for CHAOS_RUNS seeds (determinism checked), then on real raft
	./bin/warren sim scenarios/*.yaml --runs $(CHAOS_RUNS) --check-determinism --quiet
	./bin/warren sim --consensus raft $(RAFT_SCENARIOS) --runs $(RAFT_RUNS) --quiet

integ: ## Run the specs labelled "integ" (real bbolt, raft, containerd)
	$(GINKGO) $(GINKGO_FLAGS) --label-filter=integ

e2e: ## Run the specs labelled "e2e" (several hosts in network namespaces)
	$(GINKGO) $(GINKGO_FLAGS) --label-filter=e2e

lint: ## Check formatting (gofmt) and run go vet
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; echo "run: make fmt"; exit 1; fi
	$(GO) vet ./...

fmt: ## Format all Go files in place
	gofmt -w .

ci: ## What CI runs: install dependencies, lint, test, chaos
	bash ci/install-deps.sh
	$(MAKE) lint
	$(MAKE) test
	$(MAKE) chaos

clean: ## Remove bin/ and cached test results
	rm -rf bin
	$(GO) clean -testcache
