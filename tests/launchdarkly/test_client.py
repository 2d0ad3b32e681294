"""The LaunchDarkly client: against the emulator in-process, against odd answers, and over loopback."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from metrics_sync import __version__
from metrics_sync.core.errors import ApiError, ConfigError
from metrics_sync.core.resources import METRIC, METRIC_GROUP
from metrics_sync.emulator import EmulatorApp, Faults, Store
from metrics_sync.emulator.server import serve_in_thread
from metrics_sync.emulator.store import TOKEN_MEMBER_ID
from metrics_sync.launchdarkly.client import Client
from metrics_sync.launchdarkly.session import RetryPolicy, check_base_url
from tests.conftest import TOKEN, FakeClock, make_client
from tests.ldspec import validate_request, validate_response

CUSTOM = {"key": "order-placed", "name": "Order placed", "kind": "custom", "eventKey": "order-placed",
          "isNumeric": False, "tags": ["managed-by-metrics-sync"]}


class Recorder(httpx.BaseTransport):
    """Forwards to another transport and keeps every request and response."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        self.exchanges.append((request, response))
        return response


def scripted(*answers: Callable[[httpx.Request], httpx.Response] | httpx.Response | Exception,
             ) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A MockTransport that gives the answers in order (an Exception is raised as a transport error)."""
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer

    return httpx.MockTransport(handler), seen


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def mock_client(transport: httpx.BaseTransport, clock: FakeClock | None = None, **kwargs: Any) -> Client:
    clock = clock or FakeClock()
    return Client("https://app.launchdarkly.com", TOKEN, transport=transport, clock=clock, sleep=clock.sleep,
                  **kwargs)


# --- against the emulator, in-process ----------------------------------------------------------

def test_every_request_carries_auth_user_agent_and_api_version(emulator: EmulatorApp) -> None:
    recorder = Recorder(httpx.WSGITransport(app=emulator))
    with Client("http://127.0.0.1", TOKEN, transport=recorder) as client:
        client.list_items(METRIC, "shop")
        client.create_item(METRIC, "shop", CUSTOM)
        client.patch_item(METRIC, "shop", "order-placed", [{"op": "replace", "path": "/name", "value": "N"}])
        client.get_item(METRIC, "shop", "order-placed", expand=["experimentCount"])
        client.find_item(METRIC, "shop", "missing")
    assert len(recorder.exchanges) == 5
    for request, _ in recorder.exchanges:
        assert request.headers["Authorization"] == TOKEN  # raw, no "Bearer"
        assert request.headers["User-Agent"] == f"metrics-sync/{__version__}"
        assert request.headers["LD-API-Version"] == "20240415"


def test_requests_and_responses_follow_launchdarkly_contract(emulator: EmulatorApp) -> None:
    recorder = Recorder(httpx.WSGITransport(app=emulator))
    client = Client("http://127.0.0.1", TOKEN, transport=recorder)
    for i in range(3):
        client.create_item(METRIC, "shop", {**CUSTOM, "key": f"k{i}"})
    client.list_items(METRIC, "shop")
    client.patch_item(METRIC, "shop", "k0", [{"op": "test", "path": "/name", "value": "Order placed"},
                                      {"op": "replace", "path": "/name", "value": "K"}])
    client.patch_item(METRIC, "shop", "k1", [{"op": "test", "path": "/archived", "value": False},
                                      {"op": "replace", "path": "/archived", "value": True}])
    with pytest.raises(ApiError):
        client.patch_item(METRIC, "shop", "k0", [{"op": "test", "path": "/name", "value": "stale"}])
    for request, response in recorder.exchanges:
        if request.method in ("POST", "PATCH"):
            validate_request(request.method, request.url.path, json.loads(request.content))
        validate_response(request.method, request.url.path, response.status_code,
                          response.json() if response.content else None)


def test_list_reads_every_page_with_limit_50(store: Store) -> None:
    store.seed({"projects": {"shop": [{**CUSTOM, "key": f"m{i:03d}"} for i in range(120)]}})
    recorder = Recorder(httpx.WSGITransport(app=EmulatorApp(store, token=TOKEN)))
    metrics = Client("http://127.0.0.1", TOKEN, transport=recorder).list_items(METRIC, "shop")
    assert [m["key"] for m in metrics] == [f"m{i:03d}" for i in range(120)]
    queries = [dict(r.url.params) for r, _ in recorder.exchanges]
    assert sorted(queries, key=lambda q: int(q["offset"])) == [
        {"limit": "50", "offset": str(o), "expand": "experimentCount", "sort": "createdAt"} for o in (0, 50, 100)]


def test_empty_project_needs_one_request(client: Client) -> None:
    assert client.list_items(METRIC, "shop") == []


def test_errors_carry_method_path_status_code_and_hint(client: Client) -> None:
    with pytest.raises(ApiError) as missing_project:
        client.list_items(METRIC, "nope")
    error = missing_project.value
    assert (error.method, error.path, error.status, error.code) == ("GET", "/api/v2/metrics/nope", 404, "not_found")
    assert error.hint == "unknown project key `nope`; check `project:` in the definitions or --project"
    assert str(error) == ("GET /api/v2/metrics/nope failed: 404 not_found: Unknown project key 'nope' "
                          "(unknown project key `nope`; check `project:` in the definitions or --project)")
    client.create_item(METRIC, "shop", CUSTOM)
    with pytest.raises(ApiError) as conflict:
        client.create_item(METRIC, "shop", CUSTOM)
    assert conflict.value.status == 409
    assert conflict.value.hint == "a metric with this key already exists; run plan again"


def test_401_and_403_hints(store: Store) -> None:
    app = EmulatorApp(store, token="other", reader_token=TOKEN)
    client = make_client(app)
    client.list_items(METRIC, "shop")  # the reader token may read
    with pytest.raises(ApiError) as forbidden:
        client.create_item(METRIC, "shop", CUSTOM)
    assert forbidden.value.status == 403 and "lacks permission" in (forbidden.value.hint or "")
    with pytest.raises(ApiError) as unauthorized:
        Client("http://127.0.0.1", "bad-token", transport=httpx.WSGITransport(app=app)).list_items(METRIC, "shop")
    assert unauthorized.value.status == 401
    assert unauthorized.value.hint == ("the access token is invalid or expired, or its role cannot use the API; "
                                       "check LD_ACCESS_TOKEN")


# --- odd answers ----------------------------------------------------------------------------------

PAGE = {"items": [], "totalCount": 0}


def test_429_with_retry_after_waits_then_succeeds() -> None:
    clock = FakeClock()
    transport, seen = scripted(ok({"code": "rate_limited", "message": "slow down"}, 429, {"Retry-After": "3"}),
                               ok(PAGE))
    assert mock_client(transport, clock).list_items(METRIC, "shop") == []
    assert len(seen) == 2
    assert 3.05 <= clock.sleeps[0] <= 3.25  # Retry-After plus jitter


def test_429_with_ratelimit_reset_waits_until_the_reset() -> None:
    clock = FakeClock()
    reset_ms = int((clock.now + 7.5) * 1000)
    transport, seen = scripted(ok({"code": "rate_limited", "message": "x"}, 429,
                                  {"X-Ratelimit-Reset": str(reset_ms)}), ok(PAGE))
    mock_client(transport, clock).list_items(METRIC, "shop")
    assert len(seen) == 2
    assert 7.55 <= clock.sleeps[0] <= 7.75


def test_remaining_budget_at_zero_makes_the_next_request_wait_for_the_reset() -> None:
    clock = FakeClock()
    reset_ms = int((clock.now + 4) * 1000)
    headers = {"X-Ratelimit-Route-Remaining": "0", "X-Ratelimit-Reset": str(reset_ms)}
    transport, seen = scripted(ok(PAGE, headers=headers), ok(PAGE))
    client = mock_client(transport, clock)
    client.list_items(METRIC, "shop")
    assert clock.sleeps == []
    client.list_items(METRIC, "shop")
    assert len(seen) == 2 and 4.0 < sum(clock.sleeps) < 4.2  # waited for the window, never saw a 429


def test_500_then_200_is_retried_for_get_with_backoff() -> None:
    clock = FakeClock()
    transport, seen = scripted(ok({"code": "internal", "message": "x"}, 500), httpx.Response(502, text="bad gateway"),
                               ok(PAGE))
    assert mock_client(transport, clock).list_items(METRIC, "shop") == []
    assert len(seen) == 3
    assert 0.1 <= clock.sleeps[0] <= 0.2 and 0.2 <= clock.sleeps[1] <= 0.4  # exponential, with jitter


def test_backoff_is_capped_and_attempts_are_bounded() -> None:
    clock = FakeClock()
    transport, seen = scripted(httpx.Response(503, text="unavailable"))
    with pytest.raises(ApiError) as failure:
        mock_client(transport, clock, retry=RetryPolicy(max_attempts=10, max_delay=1.0)).list_items(METRIC, "shop")
    assert len(seen) == 10 and max(clock.sleeps) <= 1.0
    assert failure.value.status == 503 and failure.value.api_message == "unavailable"


def test_timeouts_are_retried_then_reported_with_a_hint() -> None:
    transport, seen = scripted(httpx.ReadTimeout("read timed out"))
    with pytest.raises(ApiError) as failure:
        mock_client(transport, retry=RetryPolicy(max_attempts=3)).get_item(METRIC, "shop", "m")
    assert len(seen) == 3
    assert failure.value.status is None and failure.value.api_message == "timed out (read timed out)"
    assert failure.value.hint == ("check the network and the LaunchDarkly address https://app.launchdarkly.com; "
                                  "running the command again is safe")


def test_patch_is_retried_after_a_connection_reset() -> None:
    transport, seen = scripted(httpx.ConnectError("connection reset"), ok({"key": "m", "_version": 2}))
    assert mock_client(transport).patch_item(METRIC, "shop", "m", [])["_version"] == 2
    assert [r.method for r in seen] == ["PATCH", "PATCH"]


def test_malformed_json_is_a_clear_error() -> None:
    transport, _ = scripted(httpx.Response(200, text="<html>oops</html>"))
    with pytest.raises(ApiError) as failure:
        mock_client(transport).get_item(METRIC, "shop", "m")
    assert failure.value.api_message == "LaunchDarkly's answer cannot be used: it is not valid JSON"


def test_post_is_never_retried_blindly_a_get_shows_it_was_created() -> None:
    transport, seen = scripted(httpx.Response(502, text="bad gateway"), ok({**CUSTOM, "_version": 1}))
    rep, recovered = mock_client(transport).create_item(METRIC, "shop", CUSTOM)
    assert recovered and rep["key"] == "order-placed"
    assert [r.method for r in seen] == ["POST", "GET"]


def test_post_is_sent_again_only_after_a_get_proved_it_absent() -> None:
    transport, seen = scripted(httpx.ReadTimeout("timed out"), ok({"code": "not_found", "message": "x"}, 404),
                               ok({**CUSTOM, "_version": 1}, 201))
    rep, recovered = mock_client(transport).create_item(METRIC, "shop", CUSTOM)
    assert not recovered and rep["_version"] == 1
    assert [r.method for r in seen] == ["POST", "GET", "POST"]


def test_a_clear_post_rejection_is_not_retried() -> None:
    transport, seen = scripted(ok({"code": "invalid_request", "message": "eventKey: required"}, 400))
    with pytest.raises(ApiError) as failure:
        mock_client(transport).create_item(METRIC, "shop", CUSTOM)
    assert len(seen) == 1 and failure.value.status == 400 and failure.value.api_message == "eventKey: required"


def test_429_on_post_is_retried_because_nothing_happened() -> None:
    transport, seen = scripted(ok({"code": "rate_limited", "message": "x"}, 429, {"Retry-After": "1"}),
                               ok({**CUSTOM, "_version": 1}, 201))
    _, recovered = mock_client(transport).create_item(METRIC, "shop", CUSTOM)
    assert not recovered and [r.method for r in seen] == ["POST", "POST"]


# --- secrets and transport safety -----------------------------------------------------------------

def test_plain_http_only_to_loopback() -> None:
    assert check_base_url("http://127.0.0.1:8765/") == "http://127.0.0.1:8765"
    assert check_base_url("http://localhost:1") == "http://localhost:1"
    assert check_base_url("http://[::1]:1") == "http://[::1]:1"
    assert check_base_url("https://app.eu.launchdarkly.com") == "https://app.eu.launchdarkly.com"
    with pytest.raises(ConfigError) as refused:
        check_base_url("http://app.launchdarkly.com")
    assert refused.value.message == "refusing to send the access token over plain http to app.launchdarkly.com"
    with pytest.raises(ConfigError):
        check_base_url("ftp://example.com")


@pytest.mark.parametrize("url, message", [
    ("https://[::1", "base URL 'https://[::1' is not an http(s) URL"),
    ("https://app.launchdarkly.com:abc", "base URL 'https://app.launchdarkly.com:abc' is not an http(s) URL"),
    ("https://app.launchdarkly.com:0", "base URL 'https://app.launchdarkly.com:0' is not an http(s) URL"),
    ("https://me:secret@app.launchdarkly.com:x", "base URL 'https://…@app.launchdarkly.com:x' is not an http(s) URL"),
    ("https://me:secret@app.launchdarkly.com", "the base URL carries a user name or password (not shown); "
                                               "metrics-sync sends the access token"),
    ("https://app.launchdarkly.com/#x", "the base URL https://app.launchdarkly.com/#x carries a path (/#x); "
                                        "metrics-sync adds /api/v2/... itself"),
    ("https://app.launchdarkly.com?", "the base URL https://app.launchdarkly.com? carries a path (?); "
                                      "metrics-sync adds /api/v2/... itself"),
])
def test_a_base_url_is_a_scheme_a_host_and_a_port_only(url: str, message: str) -> None:
    """Requests go to the base URL followed by their path: anything more in it is refused, in a line that never
    repeats a password."""
    with pytest.raises(ConfigError) as refused:
        check_base_url(url)
    assert refused.value.message == message
    assert "secret" not in f"{refused.value.message} {refused.value.hint}"
    assert refused.value.hint in ("use https://app.launchdarkly.com", "use e.g. https://app.launchdarkly.com or "
                                  "http://127.0.0.1:8765 for the emulator")


def test_a_request_path_cannot_move_the_host_or_carry_a_query() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    client = mock_client(httpx.MockTransport(answer))
    for path in ("@elsewhere.example/x", "/api/v2/metrics/shop?x=1", "/api/v2#x"):
        with pytest.raises(ValueError, match="a request path must start with / and hold no query"):
            client.session.request("GET", path, "/api/v2/metrics/{projectKey}")
    assert seen == []


def test_missing_token_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as missing:
        Client("https://app.launchdarkly.com", "")
    assert missing.value.hint == "set LD_ACCESS_TOKEN (or LAUNCHDARKLY_ACCESS_TOKEN) to an API access token"


def test_token_never_appears_in_repr_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    lines: list[str] = []
    echo = ok({"code": "unauthorized", "message": f"token {TOKEN} is not valid"}, 401)
    transport, _ = scripted(httpx.ConnectError(f"cannot connect with {TOKEN}"), echo)
    client = mock_client(transport, log=lines.append)
    with caplog.at_level(logging.DEBUG), pytest.raises(ApiError) as failure:
        client.list_items(METRIC, "shop")
    text = "\n".join([repr(client), str(failure.value), repr(failure.value), *lines, caplog.text])
    assert TOKEN not in text
    assert "[redacted]" in str(failure.value) and lines


# --- over real loopback HTTP -----------------------------------------------------------------------

def test_client_and_emulator_over_loopback_http() -> None:
    app = EmulatorApp(Store(["shop"]), token=TOKEN, faults=Faults(latency_ms=1))
    server, url = serve_in_thread(app)
    try:
        with Client(url, TOKEN) as client:
            client.create_item(METRIC, "shop", CUSTOM)
            assert [m["key"] for m in client.list_items(METRIC, "shop")] == ["order-placed"]
            assert client.get_item(METRIC, "shop", "order-placed")["_version"] == 1
    finally:
        server.shutdown()
        server.server_close()


# --- the same calls for a metric group ------------------------------------------------------------

def test_metric_groups_go_through_the_same_calls_with_their_own_route_and_header(emulator: EmulatorApp) -> None:
    recorder = Recorder(httpx.WSGITransport(app=emulator))
    group = {"key": "funnel", "name": "Funnel", "kind": "funnel", "maintainerId": TOKEN_MEMBER_ID, "tags": [],
             "metrics": [{"key": "order-placed", "nameInGroup": "Ordered"}, {"key": "paid", "nameInGroup": "Paid"}]}
    with Client("http://127.0.0.1", TOKEN, transport=recorder) as client:
        client.create_item(METRIC, "shop", CUSTOM)
        client.create_item(METRIC, "shop", {**CUSTOM, "key": "paid", "eventKey": "paid"})
        assert client.create_item(METRIC_GROUP, "shop", group)[0]["key"] == "funnel"
        assert [g["key"] for g in client.list_items(METRIC_GROUP, "shop")] == ["funnel"]
        patched = client.patch_item(METRIC_GROUP, "shop", "funnel", [{"op": "replace", "path": "/name", "value": "F"}],
                                    comment="from metrics-sync")
        assert patched["name"] == "F" and client.get_item(METRIC_GROUP, "shop", "funnel")["_version"] == 2
        assert client.delete_item(METRIC_GROUP, "shop", "funnel") is True
        assert client.delete_item(METRIC_GROUP, "shop", "funnel") is False  # already gone
        assert client.find_item(METRIC_GROUP, "shop", "funnel") is None
        with pytest.raises(ValueError, match="a metric is archived, not deleted"):
            client.delete_item(METRIC, "shop", "order-placed")
        with pytest.raises(ValueError, match="the metric group list cannot be filtered by tag"):
            client.list_items(METRIC_GROUP, "shop", tags=["x"])
    groups = [(r, json.loads(r.content) if r.content else None) for r, _ in recorder.exchanges
              if "/metric-groups" in r.url.path]
    assert len(groups) == 7
    assert all(r.headers["LD-API-Version"] == "beta" for r, _ in groups)  # the beta resource's header, every call
    assert all(r.url.path.startswith("/api/v2/projects/shop/metric-groups") for r, _ in groups)
    patch = next(body for r, body in groups if r.method == "PATCH")
    assert patch == [{"op": "replace", "path": "/name", "value": "F"}]  # no comment wrapper for groups


def test_error_hints_name_the_resource_and_the_item(client: Client) -> None:
    with pytest.raises(ApiError) as missing:
        client.get_item(METRIC_GROUP, "shop", "nope")
    assert missing.value.hint == "the metric group `nope` or the project `shop` does not exist"
    with pytest.raises(ApiError) as no_project:
        client.list_items(METRIC_GROUP, "nope")
    assert no_project.value.hint == "unknown project key `nope`; check `project:` in the definitions or --project"
    with pytest.raises(ApiError) as bad_key:
        client.get_item(METRIC, "shop", "..")
    assert bad_key.value.api_message == "a key does not follow LaunchDarkly's key pattern"
