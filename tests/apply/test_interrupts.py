"""Killing apply part-way loses nothing and re-running converges; a killed emulator never corrupts its state."""

from __future__ import annotations

import json
import os
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


@pytest.mark.slow
def test_a_killed_emulator_never_leaves_a_corrupt_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    created = 0
    for round_ in range(6):
        proc = subprocess.Popen([sys.executable, "-m", "metrics_sync", "emulator", "--port", "0", "--project",
                                 "shop", "--state", str(state), "--token", TOKEN], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().removeprefix("listening on ")
        stop = threading.Event()

        def hammer(url: str = url, stop: threading.Event = stop, round_: int = round_) -> None:
            nonlocal created
            with httpx.Client(base_url=url, headers={"Authorization": TOKEN}, timeout=5) as http:
                i = 0
                while not stop.is_set():
                    try:
                        response = http.post("/api/v2/metrics/shop", json={
                            "key": f"r{round_}-{i}", "name": "x" * 2000, "kind": "custom", "eventKey": "e",
                            "isNumeric": False})
                        created += response.status_code == 201
                    except httpx.TransportError:
                        return
                    i += 1

        workers = [threading.Thread(target=hammer) for _ in range(3)]
        for worker in workers:
            worker.start()
        time.sleep(0.3 + 0.1 * round_)
        proc.send_signal(signal.SIGKILL)  # mid-write, most likely: every request rewrites the file
        proc.wait(timeout=10)
        stop.set()
        for worker in workers:
            worker.join(timeout=10)
        data = json.loads(state.read_text())  # never torn
        assert data["formatVersion"] == 1 and isinstance(data["projects"]["shop"], list)
        assert not [p for p in tmp_path.iterdir() if p.name != "state.json" and not p.name.startswith(".state.json.")]
    reopened = Store([], state_file=state)
    # An answered create was written before it was answered: every acknowledged metric survived the kills.
    assert len(reopened.snapshot_metrics("shop")) >= created > 0
