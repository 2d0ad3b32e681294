"""The entry point of the `metrics-sync` command and of `python -m metrics_sync`: start the CLI, and report a
missing or broken dependency as the install problem it is.

A copy of metrics-sync installed without its dependencies (`pip install --no-deps` of the wheel, a venv
that lost a package, a compiled library built for another Python) fails on its first import of PyYAML,
jsonschema, jsonschema-rs, httpx or deepdiff. That is not a bug to report but an install to repair: this
module names the package and how to install metrics-sync with its dependencies. It imports only the
standard library at the top, so it runs even when every dependency is missing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

# The import name of each dependency → the name it is installed by (pyproject.toml's dependencies).
DISTRIBUTIONS = {"yaml": "PyYAML", "jsonschema": "jsonschema", "jsonschema_rs": "jsonschema-rs", "httpx": "httpx",
                 "deepdiff": "deepdiff"}
INSTALL_HINT = ("install metrics-sync with its dependencies: `pip install .` in a clone of metrics-sync (without "
                "--no-deps), or, pinned by hash as the GitHub Action does, `pip install --require-hashes -r "
                "requirements.lock` then `pip install --no-deps .`")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from metrics_sync.cli.main import main as run
    except ImportError as exc:
        return _install_problem(exc)
    try:
        return run(argv)
    except ImportError as exc:  # a command's own (lazy) import; cli/main.py lets these through
        return _install_problem(exc)


def _install_problem(exc: ImportError) -> int:
    if os.environ.get("METRICS_SYNC_DEBUG"):
        raise exc
    sys.stderr.write(install_message(exc) + "\n")
    return 1


def install_message(exc: ImportError) -> str:
    """One line: which package is missing or cannot be loaded, and how to install metrics-sync properly."""
    module = exc.name or ""
    top = module.split(".")[0]
    if top == "metrics_sync":
        what = f"its own module `{_printable(module)}` cannot be loaded ({_printable(str(exc))})"
    else:
        package = f"`{_printable(top)}` ({_distribution(top)})" if top else "a package it needs"
        missing = isinstance(exc, ModuleNotFoundError) and module == top
        what = (f"the package {package} is not installed" if missing
                else f"the package {package} cannot be loaded ({_printable(str(exc))})")
    return f"metrics-sync cannot start: {what}; {INSTALL_HINT}"


def _distribution(module: str) -> str:
    if module in DISTRIBUTIONS:
        return DISTRIBUTIONS[module]
    from importlib.metadata import packages_distributions

    names = packages_distributions().get(module)
    return names[0] if names else module


def _printable(text: str) -> str:
    # The text comes from the environment (paths, a loader's message): one line, no control characters.
    return "".join(c if c.isprintable() else "?" for c in text)[:300]
