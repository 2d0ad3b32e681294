"""The CLI's own promises: common options before or after the command, help and version on the injected
stdout, every path taken from the injected working directory, and a crash report instead of a traceback."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from metrics_sync import __version__
from metrics_sync.output import views
from tests.conftest import ROOT, TOKEN, run_cli

ENV = {"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": "http://127.0.0.1:8765"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples" / "metrics", tmp_path / "metrics")
    return tmp_path


def test_common_options_before_or_after_the_command(repo: Path) -> None:
    before = run_cli("--no-color", "validate", cwd=repo)
    after = run_cli("validate", "--no-color", cwd=repo)
    assert before.code == after.code == 0
    assert before.out == after.out == "OK: 8 metrics and 2 metric groups in 2 files valid.\n"
    (repo / "other.yaml").write_text("project: elsewhere\n")
    assert run_cli("--config", "other.yaml", "validate", "metrics/storefront.yaml", cwd=repo).code == 0


def test_api_options_only_on_commands_that_call_launchdarkly(repo: Path) -> None:
    refused = run_cli("-v", "validate", cwd=repo)
    assert refused.code == 1
    assert refused.err == ("error: --verbose is only for commands that call LaunchDarkly "
                           "(plan, apply, export, health, doctor), not `validate`\n")
    assert run_cli("validate", "-v", cwd=repo).code == 1  # not an option of validate at all
    assert "--verbose" not in run_cli("validate", "--help").out
    assert "--verbose" in run_cli("plan", "--help").out
    assert "--base-url" in run_cli("export", "--help").out


def test_help_and_version_go_to_the_injected_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    version = run_cli("--version")
    assert (version.code, version.out) == (0, f"metrics-sync {__version__}\n")
    helped = run_cli("--help")
    assert helped.code == 0 and "validate" in helped.out and "emulator" in helped.out
    assert run_cli("apply", "--help").out.startswith("usage: metrics-sync apply")
    assert capsys.readouterr() == ("", "")  # nothing reached the process's own streams


@pytest.mark.parametrize(("command", "formats"), [("validate", views.PROBLEMS), ("plan", views.PLAN),
                                                  ("show", views.PLAN), ("apply", views.APPLY), ("refs", views.REFS)])
def test_every_format_a_command_offers_has_its_view(command: str, formats: Mapping[str, object]) -> None:
    offered = re.search(r"--format \{([^}]*)\}", run_cli(command, "--help").out)
    assert offered and offered[1].split(",") == list(formats)


def test_every_path_is_taken_from_the_injected_working_directory(repo: Path, tmp_path_factory:
                                                                  pytest.TempPathFactory) -> None:
    # The process runs elsewhere (the autouse fixture's empty folder); the CLI's cwd is `repo`.
    assert Path.cwd() != repo
    (repo / "conf").mkdir()
    (repo / "conf" / "settings.yaml").write_text("project: shop\npaths: [../metrics]\n")
    from metrics_sync.emulator import EmulatorApp, Store

    transport = httpx.WSGITransport(app=EmulatorApp(Store(["shop"]), token=TOKEN))
    planned = run_cli("plan", "--config", "conf/settings.yaml", "--out", "saved.json", cwd=repo, env=ENV,
                      transport=transport)
    assert planned.code == 0, planned.err
    assert (repo / "saved.json").is_file()
    assert run_cli("apply", "--plan", "saved.json", "metrics", cwd=repo, env=ENV, transport=transport).code == 0
    assert not list(Path.cwd().iterdir())  # nothing was written where the process happens to be


def test_an_unexpected_error_writes_a_crash_report_without_the_token(repo: Path, tmp_path: Path) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise ZeroDivisionError(f"a bug that mentions {TOKEN}")

    reports = tmp_path / "reports"
    reports.mkdir()
    result = run_cli("plan", "--project", "shop", cwd=repo, env={**ENV, "TMPDIR": str(reports)},
                     transport=httpx.MockTransport(broken))
    assert result.code == 1
    first, second = result.err.splitlines()
    assert first == "internal error: ZeroDivisionError: a bug that mentions [redacted]"
    (report,) = reports.iterdir()
    assert second == (f"a crash report is in {report}; please report this at "
                      "https://github.com/metrics-sync/metrics-sync/issues and attach the report (it holds no token)")
    text = report.read_text()
    assert text.startswith(f"metrics-sync {__version__} crash report\n")
    assert "command: metrics-sync plan --project shop" in text
    assert "Traceback (most recent call last)" in text and "ZeroDivisionError" in text
    assert TOKEN not in text and TOKEN not in result.err
    assert oct(report.stat().st_mode & 0o777) == oct(0o600)


def test_debug_variable_lets_the_traceback_through(repo: Path) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise ZeroDivisionError("boom")

    with pytest.raises(ZeroDivisionError):
        run_cli("plan", "--project", "shop", cwd=repo, env={**ENV, "METRICS_SYNC_DEBUG": "1"},
                transport=httpx.MockTransport(broken))


def test_the_process_working_directory_is_the_tests_own() -> None:
    assert Path.cwd() != ROOT and not os.listdir(Path.cwd())


def test_garbage_collector_is_never_paused_around_network_calls_and_always_restored(repo: Path) -> None:
    import gc

    from metrics_sync.emulator import EmulatorApp, Store

    inner = httpx.WSGITransport(app=EmulatorApp(Store(["shop"]), token=TOKEN))
    seen: list[tuple[str, bool]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        # HTTP objects form cycles: only the collector frees them
        seen.append((f"{request.method} {request.url.path}", gc.isenabled()))
        return inner.handle_request(request)

    for args in (("plan",), ("apply", "--auto-approve"), ("plan", "--detailed-exitcode")):
        result = run_cli(*args, "--project", "shop", cwd=repo, env=ENV, transport=httpx.MockTransport(handler))
        assert result.code == 0, result.err
    # The one exception: plan's early read of the metrics list (bounded: cli/early_read.py) may go while the
    # definitions are read with the collector paused.
    assert seen and all(enabled for call, enabled in seen if call != "GET /api/v2/metrics/shop")
    assert any(call != "GET /api/v2/metrics/shop" for call, _ in seen)
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_plan_that_fails_after_reading_the_definitions_leaves_nothing_frozen(repo: Path) -> None:
    """plan freezes its definitions out of the collector's sight once read; a failure after that (here: no
    token, found only when the client is made) must not leave them frozen nor the collector paused."""
    import gc

    env = {k: v for k, v in ENV.items() if k != "LD_ACCESS_TOKEN"}
    result = run_cli("plan", "--project", "shop", cwd=repo, env=env)
    assert result.code != 0 and "LD_ACCESS_TOKEN" in result.err
    assert gc.isenabled() and gc.get_freeze_count() == 0
