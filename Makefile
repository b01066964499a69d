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

.PHONY: help build up down demo demo-stop test bench sim chaos integ e2e lint fmt ci clean

help: ## Show this list
	@echo "Usage: make TARGET"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build bin/warren with version and commit stamped in
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/warren ./cmd/warren

up: ## The main job: a one-node cluster running a demo service in real containers (root; installs what is missing)
	bash scripts/up.sh

down: ## Remove what `make up` deployed and stop its node
	bash scripts/down.sh

demo: build ## Start a 3-manager cluster on loopback (simulated containers), deploy a service, kill -9 the leader
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
# (tier B), and FAILPOINT_RUNS more on bin/warren-failpoints: the same
# binary with the failpoint markers of backends/raft rewritten by
# failpoint-toolexec at compile time (sources are never touched; its own
# GOCACHE), each hit delayed, failed or crashed as the seed decides. The
# two real raft sweeps run side by side (each uses about one core; the
# model runs use both, and so does a cold failpoint build). Prints the failing seeds
# with the command that replays each, and the hits of every failpoint; a
# failpoint no run passed fails the target (were the markers rewritten?).
CHAOS_RUNS     ?= 200
RAFT_RUNS      ?= 20
FAILPOINT_RUNS ?= 20
RAFT_SCENARIOS := scenarios/leader-failover.yaml scenarios/partition.yaml scenarios/chaos.yaml
FAILPOINT_TOOLEXEC := $(CURDIR)/bin/tools/failpoint-toolexec
FAILPOINT_GOCACHE  ?= $(shell $(GO) env GOCACHE)-failpoints
FAILPOINT_LOG      := bin/warren-failpoints.log

# The tool's version is the library's in go.mod, so markers and rewriter agree.
$(FAILPOINT_TOOLEXEC): go.mod
	GOBIN=$(CURDIR)/bin/tools $(GO) install github.com/pingcap/failpoint/failpoint-toolexec@$$($(GO) list -m -f '{{.Version}}' github.com/pingcap/failpoint)

chaos: build $(FAILPOINT_TOOLEXEC) ## Run every scenario for CHAOS_RUNS seeds (determinism checked), then on real raft, with failpoints too
	GOCACHE=$(FAILPOINT_GOCACHE) $(GO) build -toolexec=$(FAILPOINT_TOOLEXEC) -ldflags '$(LDFLAGS)' -o bin/warren-failpoints ./cmd/warren
	./bin/warren sim scenarios/*.yaml --runs $(CHAOS_RUNS) --check-determinism --quiet
	@echo "./bin/warren-failpoints sim --consensus raft --failpoints $(RAFT_SCENARIOS) --runs $(FAILPOINT_RUNS) > $(FAILPOINT_LOG)"
	@./bin/warren-failpoints sim --consensus raft --failpoints $(RAFT_SCENARIOS) --runs $(FAILPOINT_RUNS) \
		> $(FAILPOINT_LOG) 2>&1 & fp=$$!; \
	trap 'kill $$fp 2>/dev/null || true' EXIT; \
	echo "./bin/warren sim --consensus raft $(RAFT_SCENARIOS) --runs $(RAFT_RUNS) --quiet"; \
	plain=0; ./bin/warren sim --consensus raft $(RAFT_SCENARIOS) --runs $(RAFT_RUNS) --quiet || plain=$$?; \
	failed=0; wait $$fp || failed=$$?; \
	grep -v ' pass (' $(FAILPOINT_LOG) | sed 's/^/failpoints: /' || true; \
	if [ $$failed -ne 0 ]; then echo "failpoints: replay a seed with ./bin/warren-failpoints sim --consensus raft --failpoints FILE --seed N (full log: $(FAILPOINT_LOG))"; fi; \
	sed -n '/acted on: /{s/.*acted on: //;s/: .*//;p}' $(FAILPOINT_LOG) | tr ';' '\n' | awk ' \
		NF >= 2 && $$1 == "beforeStoreLogs" { runs++ } \
		NF >= 2 { name = $$1; seen[name] = 1; hits[name] += $$2; \
			for (i = 3; i < NF; i++) { n = $$i; kind = $$(i + 1); gsub(/[^0-9]/, "", n); gsub(/[^a-z]/, "", kind); if (n != "") did[name, kind] += n } } \
		END { total = 0; zero = ""; \
			for (name in seen) { total += hits[name]; if (hits[name] == 0) zero = zero " " name; \
				printf "failpoint %-18s %8d hits, %5d delayed, %3d crashed, %4d failed\n", name, hits[name], did[name, "delayed"], did[name, "crashed"], did[name, "failed"] | "sort" } \
			close("sort"); printf "failpoints: %d hits in %d runs\n", total, runs; \
			if (total == 0) { print "chaos: the failpoint build hit no failpoint: were its markers rewritten by failpoint-toolexec?"; exit 1 } \
			if (zero != "") { print "chaos: no run passed failpoint" zero; exit 1 } }'; \
	if [ $$plain -ne 0 ] || [ $$failed -ne 0 ]; then exit 1; fi

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
