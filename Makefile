# The two commands of the quickstart: `make serve` and `make test`. Everything else is detail.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
DIR ?= ./packages
PORT ?= 8080
export UV_PYTHON_DOWNLOADS := never

.PHONY: setup serve dev test lint typecheck unit e2e clean

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: uv.lock pyproject.toml | $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv)
	$(UV) sync --locked --all-extras --quiet
	touch $@

setup: .venv/.synced ## install everything (locked) into .venv

serve: setup ## run the index over $(DIR) on port $(PORT)
	.venv/bin/skypi serve $(DIR) --port $(PORT)

dev: setup ## the AWS data path on this machine (moto S3/SQS, indexer Lambda, API) on $(PORT)
	.venv/bin/skypi dev --port $(PORT)

lint: setup
	.venv/bin/ruff check functions tests
	.venv/bin/ruff format --check functions tests

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
