# The two README commands are `make dev` (the demo) and `make test` (everything CI runs).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCAL := .local
export PYTHONPATH := operator

.PHONY: test lint unit e2e chaos control-plane promtool helm kstatus cluster cluster-down dev dev-spark dev-down docs bench clean lock release

# Three install sets, one stamp each, so each target installs what it runs and no more (issue 19):
# the demo's (the package and its emulator extra: about 80 MB), the spark demo's (plus pyspark),
# and the tests' (plus the test extra: pyspark, the kubernetes client, the SDK, linters; about
# 960 MB). Each set implies the demo's.
DEV_SET := $(VENV)/.installed-dev
SPARK_SET := $(VENV)/.installed-spark
TEST_SET := $(VENV)/.installed-test

$(DEV_SET): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e ".[emulator]"
	touch $@

$(SPARK_SET): $(DEV_SET)
	$(BIN)/python -m pip install --quiet -e ".[emulator,spark]"
	touch $@

$(TEST_SET): $(DEV_SET)
	$(BIN)/python -m pip install --quiet -e ".[emulator,test]"
	touch $@

## Build (or reuse from ~/.cache/dli-operator) kube-apiserver and etcd from the Go module proxy
## (hack/build-tools.sh: every Go tool shares that script and cache).
control-plane:
	hack/build-tools.sh control-plane >/dev/null

lint: $(TEST_SET)
	$(BIN)/ruff check operator tests hack bench
	$(BIN)/ruff format --check operator tests hack bench
	$(BIN)/mypy
	$(BIN)/lint-imports

## promtool for the alert tests (tests/integration/test_monitoring.py), built once and cached
## like the control plane: building it inside a test would outlast pytest's timeout.
promtool:
	hack/build-tools.sh promtool >/dev/null

## helm for the chart tests (tests/unit/test_chart.py, tests/e2e: test_chart, test_helm_install) and kstatus
## for the health tests (tests/integration/test_kstatus.py): built before pytest starts, like
## promtool, so no Go build runs inside a test's timeout.
helm:
	hack/build-tools.sh helm >/dev/null

kstatus:
	hack/build-tools.sh kstatus >/dev/null

## Everything CI runs: lint, types, layers, unit, integration and end-to-end tests.
## Two pytest processes (pytest-xdist), each with its own control plane, a test file at a time:
## the end-to-end tests mostly wait (polls, Leases, settle periods), so two at once use the two
## cores the serial suite left idle (docs/development.md). A file stays on one worker, as its
## fixtures expect. The chaos short form runs after, alone: its Stranded column times queues,
## and beside a second process one pause-resume run saw a 65 s wait on a machine at load 2+.
## `make test PYTEST_WORKERS=0` runs the rest serially too.
PYTEST_WORKERS ?= 2
PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile

# Timed alone too: tests/e2e/test_operator_handover.py, whose Stranded check also times a queue
# in the rate limiter (beside a second process, one run saw a job wait 45 s where 21 s were
# announced, 2026-12-06), and tests/e2e/test_shard_leases.py, whose 3 s Leases must be seen to
# expire within 10 s (beside a second process, once not: 2026-12-06; alone, 11 s a run).
ALONE := tests/chaos tests/e2e/test_operator_handover.py tests/e2e/test_shard_leases.py

test: $(TEST_SET) control-plane promtool helm kstatus lint
	$(BIN)/pytest $(PARALLEL) $(addprefix --ignore=,$(ALONE))
	$(BIN)/pytest $(ALONE)

unit: $(TEST_SET) promtool helm kstatus
	$(BIN)/pytest tests/unit tests/client tests/integration

e2e: $(TEST_SET) control-plane promtool helm
	$(BIN)/pytest $(PARALLEL) tests/e2e

## The chaos suite at full scale (docs/reliability.md); `make test` runs its short form.
## Figures go to .local/chaos/full.json; the table in docs/reliability.md is rewritten from them.
chaos: $(TEST_SET) control-plane
	DLI_CHAOS_SCALE=full $(BIN)/pytest tests/chaos -m chaos -s
	$(BIN)/python tests/chaos/report.py $(LOCAL)/chaos/full.json --update docs/reliability.md

cluster: $(DEV_SET) control-plane
	$(BIN)/dli-operator cluster up --workdir $(LOCAL)/cluster --kubeconfig $(LOCAL)/kubeconfig

cluster-down: $(DEV_SET)
	$(BIN)/dli-operator cluster down --workdir $(LOCAL)/cluster

## The demo: control plane, CRD, emulator, operator and an example job, all in the background.
dev: $(DEV_SET) control-plane
	hack/dev.sh up

## The demo on the emulator's spark back end: examples/pyspark-pi.yaml computes Pi for real
## (pyspark from the spark extra, Java 17+ from the system; docs/emulator.md).
dev-spark: $(SPARK_SET) control-plane
	SPARK=1 hack/dev.sh up

dev-down: $(DEV_SET)
	hack/dev.sh down

## Regenerate the generated docs and copies: README tables, docs/api.md, the chart's CRDs,
## version, rules and values table (hack/render_docs.py).
docs: $(TEST_SET)
	$(BIN)/python hack/render_docs.py

## Scale benchmark (docs/benchmarks.md): its own control plane, emulator and operator.
bench: $(TEST_SET) control-plane
	$(BIN)/python bench/scale.py

clean: dev-down
	rm -rf $(LOCAL) $(VENV)

## Pin the image's dependencies with their hashes (requirements/*.lock; the Dockerfile installs
## only these, with pip --require-hashes). uv keeps existing pins; `make lock UPGRADE=--upgrade`.
LOCK := $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 --python-platform linux \
	--custom-compile-command "make lock" $(UPGRADE)
lock: $(TEST_SET)
	$(LOCK) pyproject.toml -o requirements/operator.lock
	$(LOCK) pyproject.toml --extra emulator -o requirements/emulator.lock
	$(LOCK) requirements/build.in -o requirements/build.lock

## Release artifacts in dist/: the wheel, the sdist and the packaged chart, all of the version in
## operator/dli_operator/__init__.py (docs/releasing.md). Refuses stale generated files.
release: $(TEST_SET)
	$(BIN)/pytest -q -p no:cacheprovider tests/unit/test_generated.py tests/unit/test_packaging.py
	rm -rf dist
	$(BIN)/uv build --quiet --out-dir dist
	"$$(hack/build-tools.sh helm)/helm" package deploy/helm/dli-operator --destination dist
	ls -l dist
