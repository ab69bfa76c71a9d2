# Everyday commands. `make test` is the test command CI runs (see .ci/run and the README).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: install test test-unit test-integration lint format typecheck demo stack stack-down stack-status clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed ## create the virtualenv with meterstream and its test/dev tools

test: $(VENV)/.installed ## all tests: unit, doctests and integration (starts Kafka, PostgreSQL, MinIO)
	$(PY) -m pytest

test-unit: $(VENV)/.installed ## pure tests only, no services
	$(PY) -m pytest -m "not integration"

test-integration: $(VENV)/.installed ## integration tests only
	$(PY) -m pytest -m integration

lint: $(VENV)/.installed ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

demo: $(VENV)/.installed ## the whole pipeline locally without Docker, with a live view (Ctrl-C stops it)
	$(BIN)/meterstream demo

stack: $(VENV)/.installed ## the services locally without Docker: Kafka, PostgreSQL, MinIO; topics created
	$(BIN)/meterstream dev services up
	$(BIN)/meterstream topics create

stack-down: $(VENV)/.installed
	$(BIN)/meterstream dev services down

stack-status: $(VENV)/.installed
	$(BIN)/meterstream dev services status

clean:
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
