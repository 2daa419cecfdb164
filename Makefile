PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint fmt bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/callmon demo

test: $(VENV)/.installed
	$(BIN)/pytest -q

lint: $(VENV)/.installed
	$(BIN)/ruff check monitor tests bench
	$(BIN)/ruff format --check monitor tests bench
	$(BIN)/mypy

fmt: $(VENV)/.installed
	$(BIN)/ruff check --fix monitor tests bench
	$(BIN)/ruff format monitor tests bench

bench: $(VENV)/.installed
	$(BIN)/python bench/tracker_bench.py
	$(BIN)/python bench/requests_bench.py
	$(BIN)/python bench/rules_bench.py
	$(BIN)/python bench/delivery_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
