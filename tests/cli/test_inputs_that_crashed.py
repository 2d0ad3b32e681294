"""Inputs a fuzz of the command line, the environment, the config and the definitions found crashing
("internal error", or a traceback from the crash handler itself): each is now a one-line error at its place."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import TOKEN, run_cli

ENV = {"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": "http://127.0.0.1:9"}


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


METRIC = "metrics:\n  - key: a\n    name: {name}\n    kind: custom\n    eventKey: a\n    isNumeric: false\n"


@pytest.mark.parametrize("name, message", [
    ("2024-01-01", "4:11: `name` must be text; got a date (2024-01-01)"),
    ("!!binary aGVsbG8=", "4:11: `name` must be text; got binary data"),
    ("9" * 5000, "4:11: `99999999999999999999…` is a number too long to read"),
])
def test_a_value_json_has_no_type_for_is_a_located_problem(tmp_path: Path, name: str, message: str) -> None:
    path = _write(tmp_path, "m.yaml", "project: shop\n" + METRIC.format(name=name))
    result = run_cli("validate", str(path), cwd=tmp_path)
    assert result.code == 1 and result.err == ""
    assert f"m.yaml:{message}" in result.out


@pytest.mark.parametrize("text, message", [
    ("project: shop\ndefaults:\n  tags: [[x]]\n" + METRIC.format(name="A"), "`tags[0]` must be text; got a list"),
    ("project: shop\n" + METRIC.format(name="A") + "metricGroups:\n  - key: g\n    name: G\n    kind: funnel\n"
     "    metrics: true\n", "`metrics` must be a list; got a boolean (true)"),
])
def test_a_definition_of_the_wrong_shape_is_reported_not_merged(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, "m.yaml", text)
    result = run_cli("validate", str(path), cwd=tmp_path)
    assert result.code == 1 and result.err == ""
    assert message in result.out


@pytest.mark.parametrize("config, message", [
    ("maxFileBytes: 9223372036854775808\n", "`maxFileBytes` must be a positive whole number up to 1,073,741,824"),
    ("maxFileBytes: " + "9" * 5000 + "\n", "is a number too long to read"),
    ("codeRefs:\n  paths: [../loop]\n", "`../loop` cannot be resolved (a symbolic link loop"),
    ('codeRefs:\n  paths: ["a\\0b"]\n', "cannot be resolved (a symbolic link loop, or a character no path may hold)"),
])
def test_a_config_value_that_crashed_is_a_config_error(tmp_path: Path, config: str, message: str) -> None:
    repo = tmp_path / "repo"
    _write(repo, "metrics/m.yaml", "project: shop\n" + METRIC.format(name="A"))
    _write(repo, "metrics-sync.yaml", config)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    result = run_cli("validate", "metrics", cwd=repo)
    assert result.code == 1 and "internal error" not in result.err
    assert message in result.err
    assert len(result.err.splitlines()) == 1


def test_a_token_with_undecodable_bytes_is_refused_and_never_crashes_the_crash_report(tmp_path: Path) -> None:
    """A token read from the environment may hold bytes that are not UTF-8 (Python keeps them as surrogates):
    redacting it once raised from the error handler itself."""
    path = _write(tmp_path, "m.yaml", "project: shop\n" + METRIC.format(name="A"))
    assert run_cli("validate", str(path), cwd=tmp_path, env={"LD_ACCESS_TOKEN": "api-\udcff"}).code == 0
    result = run_cli("plan", str(path), cwd=tmp_path, env={"LD_ACCESS_TOKEN": "api-\udcff",
                                                            "LD_BASE_URL": "http://127.0.0.1:9"})
    assert result.code == 1
    assert result.err == ("error: LD_ACCESS_TOKEN holds characters that are not ASCII; it was not sent (set "
                          "LD_ACCESS_TOKEN to the API access token exactly, with nothing around it)\n")


def test_a_crash_report_takes_arguments_that_are_not_utf8(tmp_path: Path) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise ZeroDivisionError("a bug")

    reports = tmp_path / "reports"
    reports.mkdir()
    path = _write(tmp_path, "m.yaml", "project: shop\n" + METRIC.format(name="A"))
    result = run_cli("plan", str(path), "--target", "x\udcff", cwd=tmp_path,
                     env={**ENV, "TMPDIR": str(reports)}, transport=httpx.MockTransport(broken))
    assert result.code == 1
    assert result.err.startswith("internal error: ZeroDivisionError: a bug\na crash report is in ")
    (report,) = reports.iterdir()
    assert "x\\udcff" in report.read_text()


@pytest.mark.parametrize("base_url, message", [
    ("https://xn--.com", "error: base URL 'https://xn--.com' is not an http(s) URL"),
    ("https://a..b", "the host name 'a..b' is not a valid DNS name"),
])
def test_a_host_that_is_no_dns_name_is_an_error(tmp_path: Path, base_url: str, message: str) -> None:
    path = _write(tmp_path, "m.yaml", "project: shop\n" + METRIC.format(name="A"))
    result = run_cli("plan", str(path), cwd=tmp_path, env={"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": base_url})
    assert result.code == 1 and "internal error" not in result.err
    assert message in result.err


@pytest.mark.parametrize("ref", ["a\nmetrics: 5", "\x1b[31m", " "])
def test_export_refuses_a_schema_ref_that_is_not_one_printable_line(tmp_path: Path, ref: str) -> None:
    result = run_cli("export", "--project", "shop", "--out", "-", "--schema-ref", ref, cwd=tmp_path, env=ENV)
    assert result.code == 1  # (2 means "changes" for plan: cli-contract.md)
    assert result.err.startswith("error: --schema-ref must be a path or URL on one line, without control characters")


def test_export_into_a_folder_that_cannot_be_made_is_an_error(tmp_path: Path, emulator: object) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    transport = httpx.WSGITransport(app=emulator)  # type: ignore[arg-type]
    result = run_cli("export", "--project", "shop", "--out", "loop/sub", cwd=tmp_path, env=ENV, transport=transport)
    assert result.code == 1 and "internal error" not in result.err
    assert result.err.startswith("error: cannot create the folder ")
