"""The emulator as users run it: a process on loopback that prints where it listens and stops cleanly."""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from metrics_sync.emulator import EmulatorApp, Store
from metrics_sync.emulator.server import serve_in_thread
from tests.conftest import ROOT, TOKEN, run_cli


def start(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "metrics_sync", "emulator", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    first = proc.stdout.readline().rstrip("\n")
    second = proc.stdout.readline().rstrip("\n")
    assert first.startswith("listening on http://127.0.0.1:"), first
    return proc, first.removeprefix("listening on ") + "|" + second


@pytest.mark.slow
def test_prints_the_address_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"projects": {"shop": [
        {"key": "seeded", "name": "Seeded", "kind": "custom", "eventKey": "s", "isNumeric": False,
         "experimentCount": 3}]}}))
    proc, info = start("--project", "shop", "--state", str(state), "--seed", str(seed), "--token", "t0k")
    url, token_line = info.split("|")
    assert token_line == "access token: t0k"
    try:
        headers = {"Authorization": "t0k"}
        listed = httpx.get(f"{url}/api/v2/metrics/shop", headers=headers, params={"expand": "experimentCount"})
        assert listed.status_code == 200 and listed.json()["items"][0]["experimentCount"] == 3
        created = httpx.post(f"{url}/api/v2/metrics/shop", headers=headers, json={
            "key": "new", "name": "New", "kind": "pageview", "urls": [{"kind": "exact", "url": "https://x.test/"}]})
        assert created.status_code == 201
        assert httpx.get(f"{url}/api/v2/metrics/shop").status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
    assert code == 0
    assert "emulator stopped" in (proc.stderr.read() if proc.stderr else "")
    saved = json.loads(state.read_text())
    assert sorted(m["key"] for m in saved["projects"]["shop"]) == ["new", "seeded"]


@pytest.mark.slow
def test_sigint_stops_it_too() -> None:
    proc, _ = start()
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0


def test_bad_options_exit_1_with_a_message() -> None:
    result = run_cli("emulator", "--fail-rate", "2")
    assert result.code == 1
    assert result.err == "error: --fail-rate must be between 0 and 1\n"
    assert run_cli("emulator", "--port", "x").code == 1


@pytest.mark.parametrize("argv, message", [
    (["--port", "70000"], "error: --port must be between 0 and 65535"),
    (["--latency-ms", "-1"], "error: --latency-ms must be between 0 and 8.64e+07"),
    (["--latency-ms", "nan"], "error: --latency-ms must be between 0 and 8.64e+07"),
    (["--slow-ms", "inf"], "error: --slow-ms must be between 0 and 8.64e+07"),
    (["--hang-seconds", "-1"], "error: --hang-seconds must be between 0 and 86400"),
    (["--burst-seconds", "nan"], "error: --burst-seconds must be between 0 and 86400"),
    (["--port", "0", "--host", "\udcff"], "error: cannot listen on '\\udcff':0: encoding of hostname failed"),
])
def test_options_the_emulator_cannot_use_are_refused_at_start(argv: list[str], message: str) -> None:
    """Before, a negative or NaN delay started an emulator whose every answer was a 500, and an out-of-range port
    or an undecodable host crashed it."""
    from metrics_sync.emulator.server import main

    out, err = io.StringIO(), io.StringIO()
    assert main(argv, stdout=out, stderr=err) == 1
    assert err.getvalue() == message + "\n"


@pytest.mark.parametrize("content", ['"x"', '{"projects": 5}', '{"metricGroups": {"default": [5]}}',
                                     '{"projects": {"default": [{}]}}', "[" * 100_000])
def test_a_seed_file_of_the_wrong_shape_is_an_error_not_a_crash(tmp_path: Path, content: str) -> None:
    from metrics_sync.emulator.server import main

    seed = tmp_path / "seed.json"
    seed.write_text(content)
    err = io.StringIO()
    assert main(["--port", "0", "--seed", str(seed)], stdout=io.StringIO(), stderr=err) == 1
    assert err.getvalue().startswith("error: cannot start the emulator: ")
    assert err.getvalue().count("\n") == 1


def _listening_hosts(port: int) -> list[str]:
    """The addresses the sockets listening on `port` are bound to, from Linux's /proc/net/tcp{,6}."""
    hosts = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, at = local.split(":")
            if int(at, 16) == port and state == "0A":  # 0A: LISTEN
                hosts.append(address if len(address) > 8 else ".".join(str(b) for b in bytes.fromhex(address)[::-1]))
    return hosts


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table")
def test_binds_loopback_by_default() -> None:
    """Without --host it is reachable from this machine only: it answers a well-known default token."""
    proc, info = start()  # no --host
    try:
        url = info.split("|")[0]
        assert httpx.get(f"{url}/api/v2/metrics/default", headers={"Authorization": "emulator-token"}).status_code \
            == 200
        assert _listening_hosts(int(url.rsplit(":", 1)[1])) == ["127.0.0.1"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.mark.slow
def test_connection_faults_over_loopback() -> None:
    from metrics_sync.emulator import EmulatorApp, Faults, Store
    from metrics_sync.emulator.server import serve_in_thread

    app = EmulatorApp(Store(["shop"]), token="t", faults=Faults(reset_rate=1.0))
    server, url = serve_in_thread(app)
    try:
        with pytest.raises(httpx.ReadError, match="Connection reset by peer"):
            httpx.get(f"{url}/api/v2/metrics/shop", headers={"Authorization": "t"})
        app.faults = Faults(timeout_rate=1.0, hang_seconds=2.0)
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{url}/api/v2/metrics/shop", headers={"Authorization": "t"}, timeout=0.3)
        app.faults = Faults()
        assert httpx.get(f"{url}/api/v2/metrics/shop", headers={"Authorization": "t"}).status_code == 200
    finally:
        server.shutdown()
        server.server_close()


def _exchange(url: str, request: bytes) -> tuple[int, bytes]:
    """Send raw bytes to the emulator at `url`; its status and body (it closes the connection after)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize("token, length, status", [
    ("wrong", "1000000000000", 401),  # a stranger's body is never read: the token is checked first
    ("wrong", "abc", 400),
    (TOKEN, "abc", 400),
    (TOKEN, "-5", 400),
    (TOKEN, "1000000000000", 413),
    (TOKEN, str(16 * 1024 * 1024 + 1), 413),
])
def test_a_request_body_is_read_only_when_authorized_and_bounded(token: str, length: str, status: int,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    server, url = serve_in_thread(EmulatorApp(Store(["shop"]), token=TOKEN))
    try:
        started = time.monotonic()
        code, body = _exchange(url, f"POST /api/v2/metrics/shop HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
                                    f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{}}".encode())
        assert time.monotonic() - started < 5
    finally:
        server.shutdown()
        server.server_close()
    assert code == status and json.loads(body)["code"]
    assert "Traceback" not in capsys.readouterr().err
