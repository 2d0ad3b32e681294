"""Ctrl-C as users press it: real signals to a real `python -m metrics_sync` process, against an emulator on
loopback that is slow on purpose. The first interrupt stops new work and the run reports; the second ends the
process at once; exit 130 and never a traceback either way."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest

from metrics_sync.cli import signals
from metrics_sync.cli.main import main
from metrics_sync.core.cancel import Cancelled
from metrics_sync.core.runtime import Runtime
from metrics_sync.emulator import EmulatorApp, Store
from tests.conftest import ENV, ROOT, TOKEN, Shop, run_cli, served

FIRST = "Interrupted: starting nothing new; finishing what is in flight (interrupt again to exit now)."
SECOND = ("Interrupted again: exiting now; what was in flight may or may not have been done (running the command "
          "again is safe).")
CHANGES = 10  # examples/metrics: 8 metrics and 2 metric groups


class SlowEmulator(EmulatorApp):
    """The emulator, holding each request of the given methods for `seconds` before serving it; `entered`
    is set as the first such request arrives."""

    def __init__(self, store: Store, methods: set[str], seconds: float) -> None:
        super().__init__(store, token=TOKEN)
        self.methods, self.seconds = methods, seconds
        self.entered = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") in self.methods:
            self.entered.set()
            time.sleep(self.seconds)
        return super().__call__(environ, start_response)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "examples", root, ignore=shutil.ignore_patterns("*.py", "github"))
    return root


def start(repo: Path, url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": url, "NO_COLOR": "1"}
    env.pop("METRICS_SYNC_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "metrics_sync", *args], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def interrupt(proc: subprocess.Popen[str]) -> None:
    """Send SIGINT and wait until the process says it heard it: two signals sent before the handler runs
    would count as one."""
    assert proc.stderr is not None
    proc.send_signal(signal.SIGINT)
    assert proc.stderr.readline() == FIRST + "\n"


def entered(app: SlowEmulator, proc: subprocess.Popen[str]) -> None:
    assert app.entered.wait(20), f"no request arrived: {proc.poll()}, {proc.communicate(timeout=5)}"


@pytest.mark.slow
def test_one_interrupt_during_apply_finishes_what_is_in_flight_and_reports_the_rest(repo: Path) -> None:
    store = Store(["shop"])
    app = SlowEmulator(store, {"POST", "PATCH"}, seconds=1.0)
    with served(app) as url:
        proc = start(repo, url, "apply", "--auto-approve")
        entered(app, proc)
        interrupt(proc)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err
    assert [line for line in err.splitlines() if not line.startswith("… ")] == []  # only progress lines after
    summary = re.fullmatch(r"Apply interrupted: (\d+) created, 0 updated, 0 archived, 0 failed, (\d+) not started\.",
                           out.splitlines()[-1])
    assert summary, out
    created, not_started = int(summary[1]), int(summary[2])
    assert 0 < created < CHANGES and created + not_started == CHANGES
    # Every change is accounted for, line by line, and what LaunchDarkly holds is what the summary says.
    assert out.count("  + created ") == created
    assert out.count("  . skipped ") == not_started
    assert "apply was interrupted" in out
    # The interrupt came during the first phase (metrics): no metric group was started.
    assert len(store.snapshot_metrics("shop")) == created


@pytest.mark.slow
def test_a_second_interrupt_ends_apply_at_once_even_with_requests_in_flight(repo: Path) -> None:
    app = SlowEmulator(Store(["shop"]), {"POST", "PATCH"}, seconds=6.0)  # far longer than the bound below
    with served(app) as url:
        proc = start(repo, url, "apply", "--auto-approve")
        entered(app, proc)
        interrupt(proc)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        code = proc.wait(timeout=10)
        took = time.monotonic() - sent
        out, err = proc.communicate(timeout=5)
    assert code == 130, err
    assert took < 1.0, f"the process took {took:.2f} s to end after the second interrupt"
    assert err == SECOND + "\n"  # the first line was read by interrupt()
    assert "Traceback" not in out
    assert "Apply interrupted" not in out  # it did not wait to report


@pytest.mark.slow
def test_an_interrupted_plan_exits_130_with_one_line_and_saves_nothing(repo: Path) -> None:
    app = SlowEmulator(Store(["shop"]), {"GET"}, seconds=1.0)
    with served(app) as url:
        proc = start(repo, url, "plan", "--out", "saved.json")
        entered(app, proc)
        interrupt(proc)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out == ""  # no plan shown
    assert re.fullmatch(r"error: interrupted( while [^;\n]+)?; nothing more was started \(running the command "
                        r"again is safe\)\n", err), err
    assert not (repo / "saved.json").exists()


# In-process: the handlers themselves, and the error mapping.


def test_the_handlers_cancel_then_exit_and_are_removed_afterwards() -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    stderr = io.StringIO()
    runtime = Runtime(stdout=io.StringIO(), stderr=stderr, stdin=io.StringIO(), environ={}, cwd=Path.cwd())
    exits: list[int] = []
    with signals.interrupts(runtime, exit_now=exits.append):
        signal.raise_signal(signal.SIGTERM)
        assert runtime.cancel.is_set() and exits == []
        signal.raise_signal(signal.SIGINT)
        assert exits == [130]
    assert stderr.getvalue() == f"{FIRST}\n{SECOND}\n"
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_cancelled_anywhere_is_exit_130_with_one_line(repo: Path) -> None:
    def cancelled(request: httpx.Request) -> httpx.Response:
        raise Cancelled("listing metrics")

    result = run_cli("plan", cwd=repo, env={"LD_ACCESS_TOKEN": TOKEN}, transport=httpx.MockTransport(cancelled))
    assert (result.code, result.out) == (130, "")
    assert result.err == ("error: interrupted while listing metrics; nothing more was started (running the "
                          "command again is safe)\n")


def test_a_stray_keyboard_interrupt_is_exit_130(repo: Path) -> None:
    def interrupted(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    result = run_cli("plan", cwd=repo, env={"LD_ACCESS_TOKEN": TOKEN}, transport=httpx.MockTransport(interrupted))
    assert (result.code, result.out, result.err) == (130, "", "interrupted\n")


class CtrlCAtThePrompt(io.StringIO):
    """A terminal where the user answers the confirmation with Ctrl-C (and would type `y` after it)."""

    def isatty(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:
        signal.raise_signal(signal.SIGINT)
        return "y\n"


def test_an_interrupt_at_the_confirmation_prompt_ends_the_run_at_once(shop: Shop) -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    runtime = Runtime(stdout=stdout, stderr=stderr, stdin=CtrlCAtThePrompt(), environ=ENV, cwd=shop.root,
                      transport=shop.transport)
    assert main(["apply"], runtime) == 130
    assert stdout.getvalue().endswith("Plan: 10 to create, 0 to update, 0 to archive, 0 unchanged.\n")
    assert stderr.getvalue() == ("Apply these 10 changes? [y/N] error: interrupted while waiting for the confirmation; "
                                 "nothing more was started (running the command again is safe)\n")
    assert shop.store.snapshot_metrics("shop") == []
