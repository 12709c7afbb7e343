# lockflow: the README names `make demo` and `make test`; .ci/run calls `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo up test test-unit services-up services-down services-status lint schemas bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

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

## Install everything, start Kafka, PostgreSQL, Redis and MariaDB, and run the whole suite.
test: install services-up
	eval "$$(bash scripts/services.sh env)" && $(BIN)/pytest -q -p no:cacheprovider tests

test-unit: install
	$(BIN)/pytest -q tests/unit

lint: install
	$(BIN)/ruff check libs services tests bench scripts
	$(BIN)/mypy libs services

schemas: install
	$(BIN)/python -m lockflow.common.schema_export schemas

bench: install services-up
	eval "$$(bash scripts/services.sh env)" && $(BIN)/python bench/pipeline.py
