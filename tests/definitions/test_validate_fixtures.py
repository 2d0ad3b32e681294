"""Every schema and semantic rule has a failing fixture with its exact expected output.

A case is `fixtures/invalid/<name>.yaml` (or a folder `<name>/`) plus `<name>.expected`: the exact
stdout of `metrics-sync validate <name>` run from the fixtures folder, summary line included.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FIXTURES, run_cli

INVALID = FIXTURES / "invalid"
CASES = sorted(p for p in INVALID.iterdir() if p.suffix != ".expected")


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_invalid_fixture_reports_exact_lines(case: Path) -> None:
    expected = case.with_name(case.stem + ".expected").read_text(encoding="utf-8")
    result = run_cli("validate", case.name, cwd=INVALID)
    assert result.out == expected
    assert result.code == 1
    assert "Traceback" not in result.out + result.err


def test_every_fixture_has_an_expectation() -> None:
    for case in CASES:
        assert case.with_name(case.stem + ".expected").is_file(), case


def test_one_run_reports_every_problem_of_every_file() -> None:
    names = ["enum-fields.yaml", "not-utf8.yaml", "tag-rules.yaml", "many-mistakes.yaml"]
    combined = run_cli("validate", *names, cwd=INVALID)
    expected: list[str] = []
    for name in names:
        text = (INVALID / name).with_suffix(".expected").read_text(encoding="utf-8")
        expected.extend(line for line in text.splitlines() if not line.startswith("Found "))
    lines = combined.out.splitlines()
    assert lines[:-1] == sorted(expected, key=lambda line: (line.split(":")[0], *map(int, line.split(":")[1:3])))
    assert lines[-1] == "Found 25 errors (7 metrics in 4 files read)."
    assert combined.code == 1


def test_a_multi_error_file_reports_all_its_errors() -> None:
    result = run_cli("validate", "many-mistakes.yaml", cwd=INVALID)
    errors = [line for line in result.out.splitlines() if line.startswith("many-mistakes.yaml:")
              and ": warning: " not in line]
    assert len(errors) == 17
    assert len({line.split(" (at ")[0].split(": ", 1)[1] for line in errors}) >= 15  # distinct mistakes
