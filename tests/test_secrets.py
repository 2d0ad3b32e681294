"""The access token never appears in output, errors, logs (even --verbose) or plan files."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import TOKEN
from tests.test_cli_plan_apply import ENV, Shop


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
    assert any("GET /api/v2/metrics/shop?limit=50&expand=experimentCount&offset=0 -> 200" in line
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
