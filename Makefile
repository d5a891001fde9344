# The two commands of the quickstart: `make serve` and `make test`. Everything else is detail.
SHELL := /bin/bash
PYTHON ?= python3
# The uv pin has one home, the dev group in pyproject.toml (and so uv.lock); bootstrapping reads it.
UV_VERSION := $(shell sed -n 's/^[[:space:]]*"uv==\([0-9.]*\)".*/\1/p' pyproject.toml)
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
DIR ?= ./packages
PORT ?= 8080
export UV_PYTHON_DOWNLOADS := never

.PHONY: screenshots bench setup synth bootstrap deploy diff destroy serve dev test lint typecheck unit e2e clean

.tools/bin/uv:
	@test -n "$(UV_VERSION)" || { echo 'no "uv==X.Y.Z" in the dev group of pyproject.toml' >&2; exit 1; }
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: uv.lock pyproject.toml | $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv)
	$(UV) sync --locked --all-extras --quiet
	touch $@

node_modules/.installed: package.json package-lock.json .venv/.synced
	PATH="$(CURDIR)/.venv/bin:$$PATH" npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: .venv/.synced node_modules/.installed ## install everything (locked): .venv, and the pinned CDK CLI

# The pinned CDK CLI on Node 24 from the venv. Context: -c skypi:domainName=... (see infra/config.py).
CDK := PATH="$(CURDIR)/.venv/bin:$$PATH" CDK_DISABLE_CLI_TELEMETRY=true node_modules/.bin/cdk
synth: setup ## synthesize the CloudFormation template into cdk.out (offline)
	$(CDK) synth --quiet $(CDK_ARGS)

bootstrap: setup ## once per AWS account and region: the CDK's staging bucket and roles
	$(CDK) bootstrap $(CDK_ARGS)

deploy: setup ## deploy the stack with your AWS credentials, then print what to paste
	$(CDK) deploy $(CDK_ARGS)

diff: setup ## what a deploy would change
	$(CDK) diff $(CDK_ARGS)

destroy: setup ## delete the stack (the buckets stay unless -c skypi:retainData=false)
	$(CDK) destroy $(CDK_ARGS)

# Only what serving needs (the package and its runtime dependencies, no CDK, Node or test tools);
# --inexact keeps whatever `make setup` already installed in .venv.
.venv/.serving: uv.lock pyproject.toml | $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv)
	$(UV) sync --locked --no-default-groups --inexact --quiet
	touch $@

serve: .venv/.serving ## run the index over $(DIR) on port $(PORT); extra flags: ARGS=--private
	.venv/bin/skypi serve $(DIR) --port $(PORT) --create $(ARGS)

dev: setup ## the AWS data path on this machine (moto S3/SQS, indexer Lambda, API) on $(PORT)
	.venv/bin/skypi dev --port $(PORT)

bench: setup ## measure skypi beside pypiserver and nginx (minutes; never part of test): docs/benchmarks.md
	.venv/bin/python bench/run.py $(BENCH_ARGS)

screenshots: setup ## the README's pictures of the pages, from a real skypi serve (docs/images/)
	.venv/bin/python scripts/screenshots.py

lint: setup
	.venv/bin/ruff check functions tests infra bench scripts
	.venv/bin/ruff format --check functions tests infra bench scripts
	.venv/bin/lint-imports --no-cache --no-logo  # the layers contract: .importlinter

typecheck: setup
	.venv/bin/mypy

unit: setup
	.venv/bin/pytest -q -m "not e2e"

e2e: setup
	.venv/bin/pytest -q -m e2e

test: setup lint typecheck ## every check and every test tier
	.venv/bin/pytest -q --doctest-modules functions/skypi tests

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
