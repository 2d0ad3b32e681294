# Two commands on a fresh machine: `make demo` and `make test`. Both create/update .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test stress lint bench clean

# Re-install whenever the project's metadata changes.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

# The linters are part of the tests: CI runs `make test`, so it enforces them.
test: $(STAMP)
	$(VENV)/bin/ruff check metrics_sync tests benchmarks examples
	$(VENV)/bin/mypy
	$(PY) -m pytest

# A longer soak of the fault-injection tests: every fault with 25 random seeds.
stress: $(STAMP)
	METRICS_SYNC_STRESS_SEEDS=25 $(PY) -m pytest tests/apply/test_faults.py tests/planning/test_properties.py -q

lint: $(STAMP)
	$(VENV)/bin/ruff check metrics_sync tests benchmarks examples
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
