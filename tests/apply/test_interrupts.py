"""Interrupting apply (once: the summary; twice: at once) or killing it loses nothing, and re-running converges;
a killed emulator keeps every write it answered."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from metrics_sync.emulator import EmulatorApp, Faults, Store
from metrics_sync.emulator.server import serve_in_thread
from tests.conftest import ROOT, TOKEN

N = 40


def project(root: Path) -> Path:
    root.mkdir()
    metrics = [{"key": f"m{i:02d}", "name": f"Metric {i}", "kind": "custom", "eventKey": f"e{i}"} for i in range(N)]
    (root / "metrics.yaml").write_text(yaml.safe_dump({"project": "shop", "metrics": metrics}))
    return root


def start_apply(root: Path, url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": url, "NO_COLOR": "1"}
    return subprocess.Popen([sys.executable, "-m", "metrics_sync", "apply", "metrics.yaml", "--auto-approve",
                             "--parallelism", "2"], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_writes(app: EmulatorApp, count: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while app.stats.writes["created"] < count:
        assert time.monotonic() < deadline, "apply made no progress"
        time.sleep(0.02)


def finish(root: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": url, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "metrics_sync", "apply", "metrics.yaml", "--auto-approve"],
                          cwd=root, env=env, capture_output=True, text=True, check=False)


@dataclass
class Running:
    root: Path
    store: Store
    app: EmulatorApp
    url: str

    def assert_a_rerun_finishes(self, created: int) -> None:
        """Running apply again creates exactly the rest: nothing lost, nothing created twice."""
        rest = finish(self.root, self.url)
        assert rest.returncode == 0, rest.stderr
        last = rest.stdout.splitlines()[-1]
        assert last == f"Apply complete: {N - created} created, 0 updated, 0 archived, 0 failed."
        assert len(self.store.snapshot_metrics("shop")) == N
        assert self.app.stats.writes["created"] == N
        assert self.app.stats.route_statuses["POST /api/v2/metrics/{projectKey} 409"] == 0


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    """An apply of N creates can be started against a slow emulator on loopback."""
    store = Store(["shop"])
    app = EmulatorApp(store, token=TOKEN, faults=Faults(latency_ms=150))
    server, url = serve_in_thread(app)
    try:
        yield Running(project(tmp_path / "repo"), store, app, url)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_finishes_what_is_in_flight_and_reports_it(running: Running, sig: signal.Signals) -> None:
    proc = start_apply(running.root, running.url)
    wait_for_writes(running.app, 4)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err == "Interrupted: starting nothing new; finishing what is in flight (interrupt again to exit now).\n"
    created = len(running.store.snapshot_metrics("shop"))
    summary = out.splitlines()[-1]
    assert summary.startswith(f"Apply interrupted: {created} created, 0 updated, 0 archived, 0 failed, "), out
    assert summary.endswith(f"{N - created} not started.")  # every write that happened is accounted for
    assert out.count("  + created ") == created and 0 < created < N
    running.assert_a_rerun_finishes(created)


@pytest.mark.slow
def test_a_killed_apply_loses_nothing_and_a_rerun_converges(running: Running) -> None:
    proc = start_apply(running.root, running.url)
    wait_for_writes(running.app, 4)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(0.5)  # requests in flight when it died may still land
    running.assert_a_rerun_finishes(len(running.store.snapshot_metrics("shop")))


def survivors(state: Path, into: Path) -> set[str]:
    """The metric keys an emulator restarted on `state` (the snapshot and its journal, copied) holds."""
    into.mkdir()
    for part in state.parent.glob(f"*{state.name}*"):
        shutil.copy(part, into / part.name)
    return {m["key"] for m in Store([], state_file=into / state.name).snapshot_metrics("shop")}


@pytest.mark.slow
def test_a_killed_emulator_keeps_every_write_it_answered(tmp_path: Path) -> None:
    """SIGKILL mid-write, six times: every create the emulator answered survives each kill, by key (its journal
    is written and flushed before the answer; a torn last line is an unanswered write and is dropped)."""
    state = tmp_path / "state.json"
    answered: set[str] = set()
    for round_ in range(6):
        proc = subprocess.Popen([sys.executable, "-m", "metrics_sync", "emulator", "--port", "0", "--project",
                                 "shop", "--state", str(state), "--token", TOKEN], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().removeprefix("listening on ")
        stop = threading.Event()

        def hammer(worker: int, url: str = url, stop: threading.Event = stop, round_: int = round_) -> None:
            with httpx.Client(base_url=url, headers={"Authorization": TOKEN}, timeout=5) as http:
                i = 0
                while not stop.is_set():
                    key = f"r{round_}-{worker}-{i}"
                    try:
                        response = http.post("/api/v2/metrics/shop", json={
                            "key": key, "name": "x" * 2000, "kind": "custom", "eventKey": "e", "isNumeric": False})
                    except httpx.TransportError:
                        return
                    if response.status_code == 201:
                        answered.add(key)
                    i += 1

        workers = [threading.Thread(target=hammer, args=(n,)) for n in range(3)]
        for worker in workers:
            worker.start()
        # Kill only once this round has had a write answered: on a busy machine the emulator may need longer than
        # any fixed pause to start answering, and a kill before the first answer proves nothing.
        deadline = time.monotonic() + 30
        while not any(key.startswith(f"r{round_}-") for key in list(answered)) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1 * round_)
        proc.send_signal(signal.SIGKILL)  # mid-write, most likely: every request appends to the journal
        proc.wait(timeout=10)
        stop.set()
        for worker in workers:
            worker.join(timeout=10)
        kept = survivors(state, tmp_path / f"restart-{round_}")
        assert answered and not answered - kept, f"lost {len(answered - kept)} answered write(s)"
    assert not [p for p in tmp_path.iterdir() if p.name != "state.json" and not p.name.startswith((".state.json.",
                                                                                                   "restart-"))]


def test_a_journal_line_torn_by_a_kill_loses_only_that_write(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    store = Store(["shop"], state_file=state)
    for key in ("a", "b", "c"):
        store.create("shop", {"key": key, "name": key, "kind": "custom", "eventKey": "e", "isNumeric": False})
    journal = tmp_path / ".state.json.journal"
    journal.write_bytes(journal.read_bytes()[:-20])  # killed while appending the last line: never answered
    assert {m["key"] for m in Store([], state_file=state).snapshot_metrics("shop")} == {"a", "b"}
