"""A plan file costs what a real plan of its size costs to read: a file of nothing but `{}` is refused before it
is parsed, in a fraction of a second, with memory of the order of its size (issue: 64 MB of `{}` cost 3.25 GB
and 42 s)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metrics_sync.core.errors import PlanError
from metrics_sync.planning import planfile
from tests.conftest import ROOT

# Runs `metrics-sync show FILE` in a child process and prints its peak resident memory last.
# (VmHWM, not getrusage: ru_maxrss keeps the high-water mark of the forking test process across exec.)
MEASURED = """import re, sys
from metrics_sync.cli.main import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status:
    sys.stderr.write("peak-rss-kb " + re.search(r"VmHWM:\\s+(\\d+)", status.read()).group(1) + "\\n")
sys.exit(code)
"""


def _show(path: Path) -> tuple[int, str, float, float]:
    started = time.monotonic()
    child = subprocess.run([sys.executable, "-c", MEASURED, "show", str(path)], capture_output=True, text=True,
                           timeout=120, cwd=path.parent, env={**os.environ, "PYTHONPATH": str(ROOT)})
    elapsed = time.monotonic() - started
    *lines, peak = child.stderr.splitlines()
    return child.returncode, "\n".join(lines), elapsed, int(peak.split()[1]) / 1024


@pytest.mark.parametrize("megabytes, says", [
    (64, "is larger than 32 MB; not a plan file"),
    (30, "is not a plan file: it has 20,971,520 JSON brackets and separators, more than a plan of 0 changes needs; "
         "it was not parsed (a plan file is applied only as plan wrote it; run plan again)"),
])
def test_a_file_of_empty_objects_is_refused_before_it_is_parsed(tmp_path: Path, megabytes: int, says: str) -> None:
    path = tmp_path / "plan.json"
    path.write_bytes(b"[" + b"{}," * (megabytes * 1024 * 1024 // 3 - 1) + b"{}]")
    code, err, elapsed, peak_mb = _show(path)
    assert code == 1 and "Traceback" not in err and err.count("\n") == 0
    assert says in err, err
    assert elapsed < 10 and peak_mb < 150, (elapsed, peak_mb)  # the file's bytes, once


def test_values_are_bounded_by_what_the_changes_need(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    # Ten changes may have 100,000 + 20,000 marks; this file has 10 "action"s and 60,000 empty lists (2 marks each).
    path.write_text(json.dumps({"formatVersion": 1, "x": [{"action": "create"}] * 10 + [[]] * 60_000}))
    with pytest.raises(PlanError, match=r"it has 120,03\d JSON brackets and separators, more than a plan of 10 "
                                        r"changes needs"):
        planfile.read(path)
    path.write_text(json.dumps({"formatVersion": 1, "x": [{"action": "create"}] * 10 + [[]] * 50_000}))
    with pytest.raises(PlanError, match="is not a valid plan file"):  # within the bound: parsed, then checked
        planfile.read(path)
