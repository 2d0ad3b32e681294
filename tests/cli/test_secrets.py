"""The access token never appears in output, errors, logs (even --verbose) or plan files."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import ENV, TOKEN, Shop


class EchoToken(httpx.BaseTransport):
    """A hostile answer: the server echoes the Authorization header back in its error message."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"code": "unauthorized", "id": "x",
                                         "message": f"token {request.headers['Authorization']} rejected"})


class Unreachable(httpx.BaseTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect (Authorization: {request.headers['Authorization']})")


@pytest.fixture
def shop(tmp_path):  # type: ignore[no-untyped-def]
    return Shop(tmp_path / "repo")


@pytest.mark.parametrize("variable", ["LD_ACCESS_TOKEN", "LAUNCHDARKLY_ACCESS_TOKEN"])
def test_token_stays_secret_on_every_path(shop: Shop, variable: str) -> None:
    env = {"LD_BASE_URL": ENV["LD_BASE_URL"], variable: TOKEN, "LD_ACCESS_TOKEN": "" if variable != "LD_ACCESS_TOKEN"
           else TOKEN}
    outputs = []
    good = shop.transport
    for command in (("plan", "--verbose", "--out", "plan.json"), ("apply", "--verbose", "--auto-approve"),
                    ("plan", "--verbose", "--format", "json"), ("plan", "--verbose", "--format", "markdown"),
                    ("apply", "--verbose", "--plan", "plan.json")):
        result = shop.run(*command, env=env)
        outputs += [result.out, result.err]
    verbose_lines = [line for line in "".join(outputs).splitlines() if line.startswith("[api] ")]
    assert any("GET /api/v2/metrics/shop?limit=50&expand=experimentCount&sort=createdAt&offset=0 -> 200" in line
               for line in verbose_lines)
    for transport in (EchoToken(), Unreachable()):
        shop.transport = transport
        for command in (("plan", "--verbose"), ("apply", "--verbose", "--auto-approve")):
            result = shop.run(*command, env=env)
            assert result.code == 1
            outputs += [result.out, result.err]
    shop.transport = good
    outputs.append((shop.root / "plan.json").read_text())
    everything = "\n".join(outputs)
    assert TOKEN not in everything
    assert "[redacted]" in everything  # the hostile echoes were caught, not just absent


class Always(httpx.BaseTransport):
    """Answers every request the same way (after checking the token was sent)."""

    def __init__(self, status: int, body: object | None = None, text: str | None = None) -> None:
        self.status, self.body, self.text = status, body, text

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == TOKEN
        if self.text is not None:
            return httpx.Response(self.status, text=self.text)
        return httpx.Response(self.status, json=self.body)


FAILURES = {
    "403": Always(403, {"code": "forbidden", "message": "Forbidden", "id": "x"}),
    "404": Always(404, {"code": "not_found", "message": "Unknown project", "id": "x"}),
    "409": Always(409, {"code": "conflict", "message": "exists", "id": "x"}),
    "500-forever": Always(500, {"code": "internal", "message": "boom", "id": "x"}),
    "502-html": Always(502, text="<html>bad gateway</html>"),
    "malformed-json": Always(200, text="{not json"),
    "timeout": Unreachable(),
}


@pytest.mark.parametrize("name", FAILURES)
def test_token_stays_secret_on_api_failures(shop: Shop, name: str) -> None:
    shop.transport = FAILURES[name]
    outputs = []
    for command in (("plan", "--verbose"), ("apply", "--verbose", "--auto-approve"),
                    ("export", "--verbose", "--project", "shop", "--out", "-"),
                    ("plan", "--verbose", "--format", "markdown")):
        result = shop.run(*command)
        assert result.code == 1 and "Traceback" not in result.err
        outputs += [result.out, result.err]
    assert TOKEN not in "\n".join(outputs)


def test_token_stays_secret_on_local_failures(shop: Shop, tmp_path: Path) -> None:
    outputs = []
    shop.run("plan", "--out", "plan.json")
    shop.store.create("shop", {"key": "order-placed", "name": "x", "kind": "custom", "eventKey": "x",
                               "isNumeric": False})
    for command in (("apply", "--plan", "plan.json", "--verbose"),  # stale
                    ("apply", "--plan", "missing.json"),
                    ("plan", "--base-url", "http://example.com"),  # refused plain http
                    ("plan", "--config", "nope.yaml")):
        result = shop.run(*command)
        assert result.code == 1
        outputs += [result.out, result.err]
    (shop.root / "metrics" / "bad.yaml").write_text(f"project: shop\nmetrics:\n  - key: {TOKEN}!\n")
    result = shop.run("plan", "--verbose")
    outputs += [result.out, result.err]
    joined = "\n".join(outputs)
    # The token text typed into a definitions file is the user's own input and is echoed back as such; the
    # token from the environment never appears anywhere else.
    assert joined.count(TOKEN) == joined.count(f"{TOKEN}!")


def test_tls_is_always_verified() -> None:
    import ssl

    from metrics_sync.launchdarkly.client import Client
    from metrics_sync.launchdarkly.transport import DeadlineTransport

    transport = Client("https://app.launchdarkly.com", TOKEN).session.transport
    assert isinstance(transport, DeadlineTransport)  # the transport every real connection goes through
    assert transport.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert transport.ssl_context.check_hostname is True
