# Every target creates .venv when it is missing and installs what it needs; nothing else is assumed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint bench soak fmt clean screenshots

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# One stamp per extra, rebuilt when pyproject.toml changes.
$(VENV)/.installed-%: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[$*]'
	touch $@

demo: $(VENV)/.installed-local
	$(VENV)/bin/cairn demo

test: $(VENV)/.installed-test
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: $(VENV)/.installed-lint
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(VENV)/.installed-bench
	$(PY) -m bench $(BENCH_ARGS)

# Four workers under overlapping faults, then a check that nothing was lost (tests/soak/):
# a two-minute profile by default, SOAK_ARGS=--full for ten minutes. Needs PostgreSQL.
soak: $(VENV)/.installed-test
	$(PY) -m tests.soak $(SOAK_ARGS)

# The README's pictures of the Cairn UI (docs/screenshots/*.png), from a real run in Chromium.
screenshots: $(VENV)/.installed-test
	$(PY) -m tests.ui.screenshots docs/screenshots

clean:
	rm -rf $(VENV) .cairn .pytest_cache .mypy_cache .ruff_cache
