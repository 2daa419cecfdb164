PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test fuzz lint fmt bench clean image-test soak screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -qq -e '.[test,dev]'
	touch $@ $(VENV)/.installed-run

# The demo needs callmon alone: a few seconds quicker to install on a fresh clone.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -qq -e .
	touch $@

demo: $(VENV)/.installed-run
	$(BIN)/callmon demo

test: $(VENV)/.installed
	$(BIN)/pytest -q

# The property tests with 100,000 examples each (`make test` runs 150): minutes, not seconds.
fuzz: $(VENV)/.installed
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -q -p no:cacheprovider tests/test_fuzz.py

lint: $(VENV)/.installed
	$(BIN)/ruff check monitor tests bench
	$(BIN)/ruff format --check monitor tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile deploy/ci/postgres/Containerfile
	shellcheck .ci/run deploy/*.sh deploy/ci/*.sh deploy/ci/postgres/entrypoint.sh

# The container image and the compose files as users run them (podman; see deploy/ci/podman.sh).
image-test: $(VENV)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" deploy/test-image.sh
	PATH="$(CURDIR)/$(BIN):$$PATH" deploy/test-compose.sh

fmt: $(VENV)/.installed
	$(BIN)/ruff check --fix monitor tests bench
	$(BIN)/ruff format monitor tests bench

# The daemon as deployed (no test or dev tools) for the start-up and memory figures.
.venv-run/.installed: pyproject.toml $(shell find monitor -name '*.py')
	$(PYTHON) -m venv .venv-run
	.venv-run/bin/pip install -qq .
	touch $@

bench: $(VENV)/.installed .venv-run/.installed
	$(BIN)/python bench/tracker_bench.py
	$(BIN)/python bench/requests_bench.py
	$(BIN)/python bench/rules_bench.py
	$(BIN)/python bench/delivery_bench.py
	$(BIN)/python bench/store_bench.py
	$(BIN)/python bench/history_bench.py
	CALLMON=.venv-run/bin/callmon $(BIN)/python bench/goals.py

# A month of a 200-door building in half an hour, on SQLite, then on two replicas on PostgreSQL,
# with faults on a schedule (about an hour in all): prints figures, exits 1 when a goal is missed.
soak: $(VENV)/.installed
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) .venv-run build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# The README's screenshots of the status page (Debian's chromium, headless).
screenshots: $(VENV)/.installed
	$(BIN)/python docs/screenshots.py
