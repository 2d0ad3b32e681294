# Two commands on a fresh machine: `make demo` and `make test`. Both create/update .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test stress lint bench lock clean

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
	@# The HTML catalogue's browser tests need Debian's chromium: installed here when missing, as root with apt-get
	@# (a clean Debian 12 has no package lists yet: update first). Without it they skip, or fail when CI is set.
	@if ! command -v chromium >/dev/null; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			echo "make test: installing chromium (apt-get) for the browser tests"; \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
				chromium; } || { echo "make test: apt-get could not install chromium (its message is above)" >&2; exit 1; }; \
		else \
			echo "make test: no chromium, and only root with apt-get installs it: browser tests skip (fail in CI)" >&2; \
		fi; \
	fi
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

# requirements.lock: the runtime dependencies (and the build backend) the GitHub Action installs, pinned with
# the hashes of every platform's files. Regenerate after changing the dependencies in pyproject.toml, and commit
# it; tests/test_ci.py checks that it covers them.
lock: $(STAMP)
	$(PY) -m pip install --quiet 'pip-tools>=7.4'
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --upgrade --generate-hashes --allow-unsafe --strip-extras --build-deps-for wheel \
		--no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
		--output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
