"""`metrics-sync validate` through the CLI: formats, exit codes, and usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from metrics_sync import __version__
from tests.conftest import FIXTURES, ROOT, run_cli

INVALID = FIXTURES / "invalid"


def test_json_format_is_versioned_and_complete() -> None:
    result = run_cli("validate", "--format", "json", "numeric-needs-unit-and-success-criteria.yaml", cwd=INVALID)
    payload = json.loads(result.out)
    assert result.code == 1
    assert payload["formatVersion"] == 1 and payload["valid"] is False
    assert payload["errors"] == 2 and payload["warnings"] == 0
    assert payload["problems"][1] == {
        "file": "numeric-needs-unit-and-success-criteria.yaml",
        "line": 3,
        "column": 5,
        "severity": "error",
        "message": "missing required field `unit`",
        "path": "metrics[0]",
        "hint": "numeric metrics need `unit` (for example USD or ms)",
    }


def test_github_format_prints_annotations() -> None:
    result = run_cli("validate", "--format", "github", "unknown-kind.yaml", cwd=INVALID)
    assert result.out.splitlines()[0] == (
        "::error file=unknown-kind.yaml,line=5,col=11,title=metrics-sync::`kind` must be one of custom, "
        "pageview, click, trace; got a string ('custon') (at metrics[0].kind); hint: did you mean `custom`?"
    )
    assert result.code == 1


def test_warnings_alone_do_not_fail(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        "project: shop\nmetrics:\n  - key: a\n    name: A\n    kind: custom\n    eventKey: a\n"
        "    randomizationUnits: [user]\n"
    )
    result = run_cli("validate", "m.yaml", cwd=tmp_path)
    assert result.code == 0
    assert result.out.splitlines() == [
        "m.yaml:7:5: warning: `randomizationUnits` is deprecated (at metrics[0].randomizationUnits); "
        "hint: rename `randomizationUnits` to `analysisUnits` (LaunchDarkly deprecated the old name)",
        "OK: 1 metric in 1 file valid with 1 warning.",
    ]


def test_project_from_flag_and_config(tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "m.yaml").write_text(
        "metrics:\n  - key: a\n    name: A\n    kind: custom\n    eventKey: a\n")
    assert run_cli("validate", cwd=tmp_path).code == 1
    assert run_cli("validate", "--project", "shop", cwd=tmp_path).code == 0
    (tmp_path / "metrics-sync.yaml").write_text("project: shop\n")
    assert run_cli("validate", cwd=tmp_path).code == 0


def test_default_path_is_metrics_folder(tmp_path: Path) -> None:
    result = run_cli("validate", cwd=tmp_path)
    assert result.code == 1
    assert result.out.splitlines()[0] == "metrics: no such file or folder"


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "metrics-sync.yaml").write_text("project: shop\nprojcet: x\n")
    result = run_cli("validate", cwd=tmp_path)
    assert result.code == 1
    assert result.err == ("error: metrics-sync.yaml:2:1: unknown setting `projcet` (known: baseUrl, codeRefs, "
                          "maxFileBytes, ownershipTag, paths, project, protectRunningExperiments) (did you mean "
                          "`project`?)\n")


def test_usage_errors_exit_1_not_2() -> None:
    result = run_cli("validate", "--format", "xml")
    assert result.code == 1
    assert "invalid choice: 'xml'" in result.err
    assert run_cli().code == 1
    assert run_cli("frobnicate").code == 1


def test_version_and_module_entry_point() -> None:
    proc = subprocess.run([sys.executable, "-m", "metrics_sync", "--version"],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0
    assert proc.stdout == f"metrics-sync {__version__}\n"


def test_schema_command_prints_the_schema_or_its_path() -> None:
    printed = run_cli("schema")
    assert printed.code == 0
    assert json.loads(printed.out) == json.loads((ROOT / "schemas" / "metrics.schema.json").read_text())
    path = run_cli("schema", "--path")
    assert path.out == f"{ROOT / 'schemas' / 'metrics.schema.json'}\n"
