"""A config's `baseUrl` may be a pull request's: the token goes only to LaunchDarkly's hosts (or loopback) on the
config's word; another host needs the runner's consent. --base-url and LD_BASE_URL come from the runner."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import TOKEN, run_cli


class _Recorder(httpx.BaseTransport):
    def __init__(self) -> None:
        self.hosts: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        return httpx.Response(500, json={"message": "recorded"})


def _run(tmp_path: Path, base_url: str, env: dict[str, str], *argv: str) -> tuple[int, str, list[str]]:
    (tmp_path / "metrics").mkdir(exist_ok=True)
    (tmp_path / "metrics" / "m.yaml").write_text("project: shop\nmetrics: []\n")
    (tmp_path / "metrics-sync.yaml").write_text(f"project: shop\nbaseUrl: {base_url}\n")
    recorder = _Recorder()
    result = run_cli("plan", "--timeout", "1", *argv, env={"LD_ACCESS_TOKEN": TOKEN, **env}, cwd=tmp_path,
                     transport=recorder)
    return result.code, result.err, recorder.hosts


def test_a_config_base_url_elsewhere_gets_no_request_and_a_located_error(tmp_path: Path) -> None:
    code, err, hosts = _run(tmp_path, "https://evil.example/", {})
    assert hosts == []
    assert code != 0
    first = err.splitlines()[0]
    assert first.startswith("error: metrics-sync.yaml:2:10: `baseUrl` names evil.example, which is not "
                            "LaunchDarkly's (app.launchdarkly.com, app.eu.launchdarkly.com, app.launchdarkly.us) nor "
                            "loopback"), err
    assert "METRICS_SYNC_ALLOW_BASE_URL=evil.example" in err
    assert TOKEN not in err


@pytest.mark.parametrize(("base_url", "env", "argv", "host"), [
    ("https://evil.example", {"METRICS_SYNC_ALLOW_BASE_URL": "other.example, EVIL.example"}, (), "evil.example"),
    ("https://evil.example", {"LD_BASE_URL": "https://ld.internal.example"}, (), "ld.internal.example"),
    ("https://evil.example", {}, ("--base-url", "https://ld.internal.example"), "ld.internal.example"),
    ("https://app.eu.launchdarkly.com", {}, (), "app.eu.launchdarkly.com"),
    ("http://127.0.0.1:8765", {}, (), "127.0.0.1"),
    ("http://localhost:8765", {}, (), "localhost"),
])
def test_launchdarkly_loopback_consented_or_runner_given_hosts_are_used(
        tmp_path: Path, base_url: str, env: dict[str, str], argv: tuple[str, ...], host: str) -> None:
    _, err, hosts = _run(tmp_path, base_url, env, *argv)
    assert "`baseUrl` names" not in err
    assert hosts and set(hosts) == {host}
