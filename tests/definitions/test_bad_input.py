"""The bad-input corpus: every file gets exit 1, file:line messages, no traceback, and zero API calls."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from metrics_sync.definitions.yaml_reader import parse_yaml_text
from metrics_sync.emulator import EmulatorApp, Store
from tests.conftest import FIXTURES, ROOT, TOKEN, run_cli
from tests.faults import FaultTransport

INVALID = FIXTURES / "invalid"
CASES = sorted(p for p in INVALID.iterdir() if p.suffix != ".expected")
ENV = {"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": "http://127.0.0.1:8765"}


def test_the_corpus_is_large_enough() -> None:
    files = [p for p in INVALID.rglob("*") if p.is_file() and p.suffix != ".expected"]
    assert len(files) >= 40


@pytest.mark.parametrize("command", ["plan", "apply"])
@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_bad_input_makes_no_api_call(case: Path, command: str) -> None:
    app = EmulatorApp(Store(["shop", "shop2"]), token=TOKEN)
    args = ["apply", "--auto-approve"] if command == "apply" else ["plan"]
    result = run_cli(*args, case.name, env=ENV, cwd=INVALID, transport=FaultTransport(app))
    expected = [line for line in case.with_name(case.stem + ".expected").read_text().splitlines()
                if not line.startswith("Found ")]
    assert result.code == 1
    assert "Traceback" not in result.out + result.err
    for line in expected:
        if ": warning: " not in line:
            assert line in result.err.splitlines()
    assert result.err.splitlines()[-1].endswith("nothing was changed in LaunchDarkly")
    assert "[api]" not in result.err
    if command == "apply":
        assert app.stats.total == 0
    else:  # at most plan's early read of a metrics list (started while the definitions are read), cut off
        assert set(app.stats.requests) <= {"GET /api/v2/metrics/{projectKey}"} and app.stats.total <= 1
    assert not app.stats.writes


def bad_tree(root: Path) -> dict[str, str]:
    """Bad inputs made at test time (they cannot live in git): name -> expected message fragment."""
    root.mkdir()
    (root / "big.yaml").write_bytes(b"project: shop\nmetrics: []\n" + b"# padding\n" * 600_000)
    (root / "loop").mkdir()
    (root / "loop" / "ok.yaml").write_text("project: shop\nmetrics: []\n")
    (root / "loop" / "again").symlink_to(root / "loop")
    (root / "dangling.yaml").symlink_to(root / "nowhere.yaml")
    (root / "unreadable.yaml").write_text("project: shop\nmetrics: []\n")
    (root / "unreadable.yaml").chmod(0)
    return {
        "big.yaml": "big.yaml: file is 6,000,026 bytes, over the 5,242,880-byte limit; hint: split it into several "
                    "files, or raise maxFileBytes in the config",
        "loop": "symbolic link loop; folder skipped",
        "dangling.yaml": "dangling.yaml: broken symbolic link",
        "unreadable.yaml": "unreadable.yaml: cannot read file: Permission denied",
    }


def test_bad_files_made_at_test_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = bad_tree(tmp_path / "bad")
    if os.geteuid() == 0:  # root reads anything: simulate the permission error instead
        real = os.open

        def open_file(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if Path(path).name == "unreadable.yaml":
                raise PermissionError(13, "Permission denied", str(path))
            return real(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", open_file)
    app = EmulatorApp(Store(["shop"]), token=TOKEN)
    result = run_cli("plan", *expected, env=ENV, cwd=tmp_path / "bad", transport=FaultTransport(app))
    assert result.code == 1 and "Traceback" not in result.err
    for fragment in expected.values():
        assert fragment in result.err
    assert app.stats.total == 0


def test_the_size_limit_is_configurable(tmp_path: Path) -> None:
    (tmp_path / "metrics-sync.yaml").write_text("maxFileBytes: 100\n")
    (tmp_path / "m.yaml").write_text("project: shop\nmetrics: []\n" + "# x\n" * 30)
    result = run_cli("validate", "m.yaml", cwd=tmp_path)
    assert result.code == 1
    assert result.out.splitlines()[0] == ("m.yaml: file is 146 bytes, over the 100-byte limit; hint: split it into "
                                          "several files, or raise maxFileBytes in the config")


def test_alias_bombs_are_bounded_in_time_and_memory() -> None:
    levels = ["a: &a [" + ", ".join(['"lol"'] * 10) + "]"]
    for i in range(1, 12):  # 10^12 values if expanded
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    text = "\n".join(levels) + "\nmetrics: []\n"
    tracemalloc.start()
    started = time.perf_counter()
    doc, problems = parse_yaml_text(text, "bomb.yaml")
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert doc is None and "alias bomb" in (problems[0].hint or "")
    assert peak < 50 * 1024 * 1024 and elapsed < 10  # generous bounds: the budget stops it long before


def test_deep_nesting_is_a_clean_error() -> None:
    _, problems = parse_yaml_text("metrics: " + "[" * 5000 + "]" * 5000 + "\n", "deep.yaml")
    assert problems and problems[0].file == "deep.yaml" and problems[0].line is not None
    _, block = parse_yaml_text("metrics:\n" + "".join("  " * i + "- \n" for i in range(1, 200)), "deep2.yaml")
    assert block and "nesting" in block[0].message


def test_unsafe_yaml_tags_are_refused_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"project: shop\nmetrics: !!python/object/apply:os.system [\"touch {marker}\"]\n"
    _, problems = parse_yaml_text(text, "evil.yaml")
    assert [p.message for p in problems] == ["unsupported YAML tag !!python/object/apply:os.system"]
    assert not marker.exists()


def test_a_fifo_among_the_definitions_is_refused_not_read(tmp_path: Path) -> None:
    # A FIFO has size 0 and its read blocks until a writer comes: validate must neither wait nor read it.
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "shop.yaml").write_text("project: shop\nmetrics: []\n")
    os.mkfifo(tmp_path / "metrics" / "pipe.yaml")
    started = time.monotonic()
    child = subprocess.run([sys.executable, "-m", "metrics_sync", "validate"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert time.monotonic() - started < 10
    assert child.returncode == 1 and "Traceback" not in child.stderr
    assert "metrics/pipe.yaml: not a regular file (a FIFO, socket or device); not read; hint: definitions are " \
           "regular YAML files; remove it or rename it" in child.stdout, child.stdout
