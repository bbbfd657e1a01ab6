# Every target a developer runs is the one CI runs (.ci/run calls `make test`).
SHELL := /bin/bash
VENV := .venv/bin
BUN := node_modules/.bin/bun
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup run check test test-ts test-py bench bench-quick

setup:
	@bash scripts/setup.sh

## Serve the example FastAPI app on $(HOST):$(PORT).
run: setup
	$(VENV)/saltare examples.hello:app --host $(HOST) --port $(PORT)

## Type checks and linters: tsc, biome, mypy (strict), ruff.
check: setup
	node_modules/.bin/tsc --noEmit -p tsconfig.json
	node_modules/.bin/biome check src
	$(VENV)/mypy
	$(VENV)/ruff check python tests bench examples
	$(VENV)/ruff format --check python tests bench examples

test-ts: setup
	$(BUN) test src

test-py: setup
	$(VENV)/pytest

## Everything CI runs.
test: check test-ts test-py

bench: setup
	$(VENV)/python -m bench --mode full

bench-quick: setup
	$(VENV)/python -m bench --mode quick
