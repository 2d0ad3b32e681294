"""The token goes only where it should: plain http (the emulator on loopback) never through a proxy, https
through HTTPS_PROXY (a TLS tunnel) unless NO_PROXY names the host, and a CA bundle from SSL_CERT_FILE."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from metrics_sync.core.errors import ConfigError
from metrics_sync.emulator import EmulatorApp, Store
from metrics_sync.emulator.server import serve_in_thread
from metrics_sync.launchdarkly.client import Client
from metrics_sync.launchdarkly.transport import network_settings
from tests.conftest import ROOT, TOKEN, run_cli
from tests.hostile import HostileServer

LD = "https://app.launchdarkly.com"


def test_https_goes_through_https_proxy_unless_no_proxy_names_the_host() -> None:
    assert network_settings(LD, {"HTTPS_PROXY": "http://proxy:3128"}).proxy == "http://proxy:3128"
    assert network_settings(LD, {"https_proxy": "http://proxy:3128"}).proxy == "http://proxy:3128"
    assert network_settings(LD, {"ALL_PROXY": "http://proxy:3128"}).proxy == "http://proxy:3128"
    assert network_settings(LD, {"HTTP_PROXY": "http://proxy:3128"}).proxy is None  # not for https
    for bypass in ("launchdarkly.com", ".launchdarkly.com", "app.launchdarkly.com", "*", "x.test, launchdarkly.com"):
        assert network_settings(LD, {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": bypass}).proxy is None
    assert network_settings(LD, {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "darkly.com"}).proxy == "http://p:1"


def test_plain_http_never_uses_a_proxy() -> None:
    every = {name: "http://127.0.0.1:9" for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy")}
    assert network_settings("http://127.0.0.1:8765", every).proxy is None


def test_the_token_never_reaches_a_proxy_for_the_loopback_emulator(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(ROOT / "examples" / "metrics", tmp_path / "metrics")
    server, url = serve_in_thread(EmulatorApp(Store(["shop"]), token=TOKEN))
    try:
        with HostileServer("same-page") as proxy:
            proxies = {name: proxy.url for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy",
                                                    "https_proxy", "all_proxy")}
            for name, value in proxies.items():
                monkeypatch.setenv(name, value)  # in the process environment too, where httpx would look
            result = run_cli("plan", cwd=tmp_path, env={**proxies, "LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": url})
            assert result.code == 0, result.err
            assert proxy.requests == []
    finally:
        server.shutdown()
    assert os.environ["HTTP_PROXY"]  # (the monkeypatch was in force)


def test_a_ca_bundle_from_ssl_cert_file(tmp_path: Path) -> None:
    import certifi

    client = Client(LD, TOKEN, environ={"SSL_CERT_FILE": certifi.where()})
    assert client.network.ca_file == certifi.where()
    with pytest.raises(ConfigError, match="cannot use the CA bundle of SSL_CERT_FILE/SSL_CERT_DIR"):
        Client(LD, TOKEN, environ={"SSL_CERT_FILE": str(tmp_path / "missing.pem")})


@pytest.mark.parametrize("variable, message", [("SSL_CERT_FILE", "SSL_CERT_FILE is not a regular file"),
                                               ("SSL_CERT_DIR", "SSL_CERT_DIR is not a folder")])
def test_a_ca_path_that_is_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path, variable: str,
                                                                          message: str) -> None:
    fifo = tmp_path / "ca.pem"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=message):
        Client(LD, TOKEN, environ={variable: str(fifo)})
