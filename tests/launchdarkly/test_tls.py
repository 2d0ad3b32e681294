"""A TLS failure is named for what it is: a certificate metrics-sync cannot verify (a proxy that inspects TLS, a
private CA), with the setting that fixes it (SSL_CERT_FILE), not "nothing answers". Against a TLS server on
127.0.0.1 whose self-signed certificate the test makes."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from metrics_sync.emulator import EmulatorApp, Store
from metrics_sync.emulator.server import create_server
from tests.conftest import ROOT, TOKEN, run_cli


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (no CA anyone trusts signs it)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command makes the test's certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def https_emulator(certificate: tuple[Path, Path]) -> Iterator[str]:
    """The emulator over TLS on 127.0.0.1, with the test's certificate; its base URL."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    server = create_server(EmulatorApp(Store(["shop"]), token=TOKEN), "127.0.0.1", 0)
    # A handshake the client gives up on is an OSError of accept(): the server drops that connection only.
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _plan(tmp_path: Path, base_url: str, *args: str, **env: str) -> tuple[int, str]:
    shutil.copytree(ROOT / "examples" / "metrics", tmp_path / "metrics", dirs_exist_ok=True)
    result = run_cli("plan", *args, cwd=tmp_path, env={"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": base_url, **env})
    return result.code, result.err


def test_a_certificate_that_cannot_be_verified_is_named_with_the_fix(tmp_path: Path, https_emulator: str) -> None:
    code, err = _plan(tmp_path, https_emulator)
    assert code == 1
    assert err.startswith("error: GET /api/v2/metrics/shop failed: no response: the TLS certificate of 127.0.0.1 "
                          "could not be verified ("), err
    assert "certificate verify failed" in err
    assert err.endswith("(if a proxy or a private CA signs it, point SSL_CERT_FILE at that CA's PEM bundle)\n"), err
    assert len(err.splitlines()) == 1
    # The same certificate comes back on every attempt: it is not retried.
    code, verbose = _plan(tmp_path, https_emulator, "-v")
    assert code == 1 and "retrying" not in verbose, verbose


def test_the_hint_works(tmp_path: Path, https_emulator: str, certificate: tuple[Path, Path]) -> None:
    code, err = _plan(tmp_path, https_emulator, SSL_CERT_FILE=str(certificate[0]))
    assert code == 0, err
