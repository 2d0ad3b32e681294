"""A missing or broken dependency is an install problem: the command says which package and how to install
metrics-sync with its dependencies, never "internal error, please report". Each case runs in a subprocess
whose interpreter cannot import the dependency (the real console command without a dependency is in
tests/test_action.py)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import ROOT

EXAMPLES = str(ROOT / "examples" / "metrics")


def run_python(code: str, cwd: Path, *extra_path: Path) -> subprocess.CompletedProcess[str]:
    path = [str(p) for p in extra_path]
    script = f"import sys; sys.path[:0] = {path!r}\n{code}"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, check=False,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})


def test_a_missing_dependency_is_named_with_how_to_install(tmp_path: Path) -> None:
    result = run_python("sys.modules['yaml'] = None\nfrom metrics_sync.cli.launch import main\n"
                        f"sys.exit(main(['validate', {EXAMPLES!r}]))", tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("metrics-sync cannot start: the package `yaml` (PyYAML) is not installed; "
                                    "install metrics-sync with its dependencies: `pip install .`"), result.stderr
    assert "requirements.lock" in result.stderr and "internal error" not in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1


def test_python_dash_m_reports_it_too(tmp_path: Path) -> None:
    result = run_python("import runpy\nsys.modules['yaml'] = None\n"
                        f"sys.argv = ['metrics-sync', 'validate', {EXAMPLES!r}]\n"
                        "runpy.run_module('metrics_sync', run_name='__main__')", tmp_path)
    assert result.returncode == 1
    assert "metrics-sync cannot start: the package `yaml` (PyYAML) is not installed" in result.stderr


def test_a_dependency_imported_only_by_a_command_is_reported_too(tmp_path: Path) -> None:
    """deepdiff is imported when a plan is compared, not at start: the lazy import is an install problem too."""
    result = run_python("from metrics_sync.cli.launch import main\nimport metrics_sync.cli.main as m\n"
                        "def fail(*a, **k):\n    import deepdiff_is_gone_for_this_test  # noqa\n"
                        "m.COMMANDS['validate'].run = fail\nsys.exit(main(['validate']))", tmp_path)
    assert result.returncode == 1
    assert "the package `deepdiff_is_gone_for_this_test` (deepdiff_is_gone_for_this_test) is not installed" \
        in result.stderr
    assert "internal error" not in result.stderr


def test_a_broken_compiled_dependency_says_it_cannot_be_loaded(tmp_path: Path) -> None:
    fake = tmp_path / "fake" / "yaml"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "raise ImportError('_yaml.so: undefined symbol: _Py_Thing', name='yaml')\n")
    result = run_python("from metrics_sync.cli.launch import main\n"
                        f"sys.exit(main(['validate', {EXAMPLES!r}]))", tmp_path, tmp_path / "fake")
    assert result.returncode == 1
    assert result.stderr.startswith("metrics-sync cannot start: the package `yaml` (PyYAML) cannot be loaded "
                                    "(_yaml.so: undefined symbol: _Py_Thing); install"), \
        result.stderr


def test_debug_lets_the_traceback_through(tmp_path: Path) -> None:
    result = run_python("import os\nos.environ['METRICS_SYNC_DEBUG'] = '1'\nsys.modules['yaml'] = None\n"
                        "from metrics_sync.cli.launch import main\nsys.exit(main(['validate']))", tmp_path)
    assert result.returncode == 1 and "Traceback" in result.stderr and "ModuleNotFoundError" in result.stderr


def test_the_console_command_and_python_dash_m_start_through_the_launcher() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"metrics-sync": "metrics_sync.cli.launch:main"}
    assert "from metrics_sync.cli.launch import main" in (ROOT / "metrics_sync" / "__main__.py").read_text()
    # The launcher imports only the standard library at the top, so it loads with every dependency missing.
    launcher = (ROOT / "metrics_sync" / "cli" / "launch.py").read_text()
    top_level = [line for line in launcher.splitlines() if line.startswith(("import ", "from "))]
    assert top_level == ["from __future__ import annotations", "import os", "import sys",
                         "from collections.abc import Sequence"]


def test_validate_works_without_the_http_client(tmp_path: Path) -> None:
    # validate is offline: it must not even import httpx (50 ms of a small run's 140 ms, measured), so a
    # module it shares with plan must not pull the LaunchDarkly client in at import time.
    result = run_python("sys.modules['httpx'] = None\nfrom metrics_sync.cli.launch import main\n"
                        f"sys.exit(main(['validate', {EXAMPLES!r}]))", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK:")
