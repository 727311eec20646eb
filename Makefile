# dpio-operator — every set-up step a fresh machine needs lives here.
#   make demo     the sandbox + the operator + the examples, status shown as it evolves
#   make test     everything CI runs: lint, types, layers, unit, simulator and sandbox tests
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON      ?= python3
UV_VERSION  := 0.13.9
CACHE       ?= $(HOME)/.cache/dpio-sandbox
UV          := $(CACHE)/tools/uv-$(UV_VERSION)/bin/uv
VENV        := .venv
PY          := $(VENV)/bin/python
SANDBOX     := PYTHONPATH=sandbox $(PY) -m dpio_sandbox

export UV_PYTHON := $(shell command -v $(PYTHON))
export UV_PYTHON_DOWNLOADS := never

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(UV):
	@echo ">> installing uv $(UV_VERSION) into $(dir $(UV))"
	@$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(CACHE)/tools/uv-$(UV_VERSION) uv==$(UV_VERSION)

# --compile-bytecode, as the image does (UV_COMPILE_BYTECODE=1): without .pyc files every
# operator start compiles pyVmomi's 1.4 MB type tables from source (1 s, and a peak RSS of 145
# instead of 76 MiB at import; docs/benchmarks.md, "Memory"), and nothing writes them later
# where PYTHONDONTWRITEBYTECODE is set.
$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	@echo ">> syncing $(VENV) from uv.lock"
	@$(UV) sync --frozen --quiet --compile-bytecode
	@touch $@

.PHONY: venv
venv: $(VENV)/.synced ## Create .venv with the pinned dependencies (uv.lock)

.PHONY: lint
lint: venv ## ruff, mypy --strict, import-linter layer contracts, gofmt/go vet
	$(VENV)/bin/ruff check operator sandbox tests bench
	$(VENV)/bin/ruff format --check operator sandbox tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	@cd sandbox/vcsim && test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	@cd sandbox/govc && test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	cd sandbox/vcsim && go vet ./...
	@cd sandbox/gitops && test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	@# The same flags as the cached build (dpio_sandbox.build), so vet reuses its compiled packages;
	@# argo-cd v3.6 needs Go 1.27, which GOTOOLCHAIN=auto fetches through the module proxy.
	cd sandbox/gitops && CGO_ENABLED=0 GOTOOLCHAIN=$${GOTOOLCHAIN:-auto} go vet -trimpath ./...

.PHONY: fmt
fmt: venv ## Format Python and Go sources
	$(VENV)/bin/ruff check --fix operator sandbox tests bench
	$(VENV)/bin/ruff format operator sandbox tests bench
	cd sandbox/vcsim && gofmt -w .
	cd sandbox/govc && gofmt -w .
	cd sandbox/gitops && gofmt -w .

.PHONY: test-unit
test-unit: venv ## Pure unit tests only (no sandbox)
	$(VENV)/bin/pytest -m "not sandbox" tests

.PHONY: test-go
test-go: ## Go tests of the vSphere simulator
	cd sandbox/vcsim && go test -count=1 ./...

.PHONY: test
test: lint test-go ## Everything CI runs (builds the sandbox binaries on first use, cached in ~/.cache/dpio-sandbox)
	$(VENV)/bin/pytest -m "not faults" tests bench/tests

.PHONY: chart-lint
chart-lint: venv ## helm lint --strict, template and schema tests of charts/dpio-operator; hadolint on the Dockerfile
	$(VENV)/bin/pytest tests/integration/chart/test_chart.py tests/unit/test_dockerfile.py

.PHONY: test-faults
test-faults: venv ## The fault-injection suite (SIGKILLs, vCenter outages, API server restarts), 3 runs
	for i in 1 2 3; do $(MAKE) --no-print-directory test-faults-once || exit 1; done

.PHONY: test-faults-once
test-faults-once: venv ## One run of the fault-injection suite
	$(VENV)/bin/pytest -m faults tests/faults

# Tests CI leaves out while a known bug makes them fail (named in docs/guarantees.md, "Not
# proven"); test-faults and test-faults-once still run them. None at the moment.
FAULTS_KNOWN_FAILING :=

.PHONY: test-faults-ci
test-faults-ci: venv ## One run of the fault-injection suite, without known failures if any (CI, after make test)
	@$(if $(FAULTS_KNOWN_FAILING),echo ">> fault suite once; left out as known to fail (docs/guarantees.md): $(FAULTS_KNOWN_FAILING)",true)
	$(VENV)/bin/pytest -m faults tests/faults $(addprefix --deselect ,$(FAULTS_KNOWN_FAILING))

.PHONY: bench
bench: venv ## The performance targets of docs/design.md, measured (tables on stdout, JSON in .bench/)
	PYTHONPATH=sandbox:. $(PY) -m bench $(BENCH_ARGS)

.PHONY: demo
demo: venv ## The sandbox, the operator and the examples/, with their status as it evolves
	$(SANDBOX) demo

.PHONY: sandbox
sandbox: venv ## Start etcd, kube-apiserver, kube-controller-manager and dpio-vcsim; writes .sandbox/env. NODE=1: a node too (root)
	$(if $(filter 1,$(NODE)),sandbox/node/install-tools.sh)
	$(SANDBOX) up $(if $(filter 1,$(NODE)),--node)

.PHONY: cluster
cluster: image ## make image, then make sandbox NODE=1: the sandbox with a node, the image imported into its containerd
	$(MAKE) --no-print-directory sandbox NODE=1

.PHONY: sandbox-down
sandbox-down: venv ## Stop everything the sandbox started (with a node: its mounts, network namespaces and cgroups too)
	$(SANDBOX) down

.PHONY: clean
clean: ## Remove local state (not the binary cache)
	-$(SANDBOX) down
	rm -rf .sandbox .mypy_cache .ruff_cache .pytest_cache

.PHONY: crds
crds: venv ## Regenerate crds/ and docs/api.md from the pydantic models
	$(PY) -m dpio.api.crd --out crds/
	cp crds/*.yaml charts/dpio-operator/files/crds/
	$(PY) -m dpio.api.docs --out docs/api.md

.PHONY: run
run: venv ## The operator in the foreground against the sandbox (CRDs and vCenter Secret applied first)
	$(SANDBOX) install
	set -a; . .sandbox/env; set +a; \
	  DPIO_NAMESPACE=dpio-system DPIO_VCENTER_SECRET=vcenter \
	  $(PY) -m dpio.handlers.main --standalone --liveness http://127.0.0.1:8080/healthz

.PHONY: image
image: venv ## Build the operator image (localhost/dpio-operator:VERSION) with podman; installs podman from Debian first
	sandbox/image/install-tools.sh
	PYTHONPATH=sandbox $(PY) -m dpio_sandbox.image build

.PHONY: image-run
image-run: image ## The image against the sandbox (as `make run`), with the chart's security settings, until Ctrl-C
	PYTHONPATH=sandbox $(PY) -m dpio_sandbox.image run
