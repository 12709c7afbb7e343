# lockflow: the README names `make demo` and `make test`; .ci/run calls `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install lock demo up test test-unit services-up services-down services-status lint schemas bench ui ui-deps client

install: $(VENV)/.installed

# uv installs the workspace (every service and library, editable) from uv.lock; it is itself installed
# with pip into a folder of its own, so `make` needs nothing but Python 3.11 on a fresh machine.
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never
export UV_SYSTEM_CERTS := 1
MEMBERS := $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
# Bytecode: compiled once at install, and written as modules are imported. A shell that sets
# PYTHONDONTWRITEBYTECODE (this machine's does) would otherwise make every process compile every module
# it imports again: 10 s of each start here, and the suite starts hundreds of processes.
unexport PYTHONDONTWRITEBYTECODE

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) uv.lock pyproject.toml $(MEMBERS)
	$(UV) sync -q --all-packages --locked --compile-bytecode --python $(PYTHON)
	$(BIN)/python -m compileall -q -j 0 src libs services
	touch $@

## Lock every version again after a pyproject.toml changed (commit uv.lock with it).
lock: $(UV)
	$(UV) lock --python $(PYTHON)

## Run the bundled sample through every stage on embedded defaults (no services needed).
demo: install
	$(BIN)/lockflow run --yes

## Serve the API with every service in one process (embedded).
up: install
	$(BIN)/lockflow up

services-up:
	bash scripts/services.sh up

services-down:
	bash scripts/services.sh down

services-status:
	bash scripts/services.sh status

## The web UI's tools: Node packages exactly as package-lock.json pins them (npm ci), and Debian's
## chromium for Playwright (no browser download works here). Only `make test` and `make ui` need them:
## the built UI is committed inside the gateway's package, so running lockflow needs no Node.
UI_DIST := services/gateway/src/lockflow/gateway/ui_dist

ui-deps: frontend/node_modules/.installed
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

frontend/node_modules/.installed: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $@

## Build the UI into the gateway's package (commit the result) and record its sources' hash.
ui: install ui-deps
	cd frontend && npm run build
	$(BIN)/python scripts/ui_source_hash.py > $(UI_DIST)/SOURCE.sha256

## Regenerate the UI's typed API client from the app's OpenAPI (after an API change; then make ui).
client: install ui-deps
	$(BIN)/python scripts/ui_openapi.py > frontend/openapi.json
	cd frontend && npx --no-install openapi-typescript openapi.json -o src/api/schema.d.ts

## Install everything, start Kafka, PostgreSQL, Redis and MariaDB, and run the whole suite.
test: install services-up ui-deps
	eval "$$(bash scripts/services.sh env)" && $(BIN)/pytest -q -p no:cacheprovider -n 2 --dist worksteal --durations=30 tests

test-unit: install
	$(BIN)/pytest -q tests/unit

lint: install
	$(BIN)/ruff check src libs services tests bench scripts
	MYPYPATH=$$(ls -d src libs/*/src services/*/src | paste -sd:) $(BIN)/mypy --explicit-package-bases src libs/*/src services/*/src
	$(BIN)/python scripts/packages.py check

schemas: install
	$(BIN)/python -m lockflow.common.schema_export schemas

bench: install services-up
	eval "$$(bash scripts/services.sh env)" && $(BIN)/python bench/pipeline.py
