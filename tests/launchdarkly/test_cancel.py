"""A run can be stopped at this layer: once the cancel signal is set, no request starts, no retry or rate-limit
wait goes on (measured with the real clock), no page read starts, and a write that may have landed is reported
as such rather than as "not started"."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from metrics_sync.core.cancel import Cancelled, CancelSignal
from metrics_sync.core.errors import ApiError
from metrics_sync.core.resources import METRIC
from metrics_sync.emulator import EmulatorApp, Store
from metrics_sync.launchdarkly.client import Client
from metrics_sync.launchdarkly.session import RetryPolicy
from tests.conftest import TOKEN, FakeClock

PAGE = {"items": [], "totalCount": 0}


def answering(answer: httpx.Response | Exception, seen: list[httpx.Request],
              before: Any = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if before is not None:
            before(len(seen))
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    return httpx.MockTransport(handler)


@pytest.fixture
def cancel() -> Iterator[CancelSignal]:
    signal = CancelSignal()
    yield signal
    signal.set()  # (ends any wait a failed test left behind)


def cancel_in(signal: CancelSignal, seconds: float) -> None:
    timer = threading.Timer(seconds, signal.set)
    timer.daemon = True
    timer.start()


def test_a_cancelled_run_sends_nothing(cancel: CancelSignal) -> None:
    seen: list[httpx.Request] = []
    cancel.set()
    client = Client("https://app.launchdarkly.com", TOKEN, transport=answering(httpx.Response(200, json=PAGE), seen),
                    cancel=cancel)
    for call in (lambda: client.list_items(METRIC, "shop"), lambda: client.get_item(METRIC, "shop", "m"),
                 lambda: client.create_item(METRIC, "shop", {"key": "m"}), client.my_member_id):
        with pytest.raises(Cancelled):
            call()
    assert seen == []


def test_cancel_stops_a_retry_loop_at_once(cancel: CancelSignal) -> None:
    seen: list[httpx.Request] = []
    transport = answering(httpx.Response(503, text="unavailable"), seen)
    client = Client("https://app.launchdarkly.com", TOKEN, transport=transport, cancel=cancel,
                    retry=RetryPolicy(base_delay=8.0, max_delay=20.0))  # the real clock: backoffs of 4 s and more
    cancel_in(cancel, 0.2)
    started = time.monotonic()
    with pytest.raises(Cancelled):
        client.get_item(METRIC, "shop", "m")
    assert time.monotonic() - started < 0.8
    assert len(seen) == 1


@pytest.mark.parametrize("headers", [{"Retry-After": "60"},
                                     {"X-Ratelimit-Reset": str(int((time.time() + 600) * 1000))}])
def test_cancel_ends_a_long_rate_limit_wait_at_once(cancel: CancelSignal, headers: dict[str, str]) -> None:
    seen: list[httpx.Request] = []
    transport = answering(httpx.Response(429, json={"code": "rate_limited", "message": "x"}, headers=headers), seen)
    client = Client("https://app.launchdarkly.com", TOKEN, transport=transport, cancel=cancel)
    cancel_in(cancel, 0.2)
    started = time.monotonic()
    with pytest.raises(Cancelled):
        client.list_items(METRIC, "shop")
    assert time.monotonic() - started < 0.8  # instead of a minute
    assert len(seen) == 1


def test_cancel_ends_a_wait_for_the_rate_limit_window_at_once(cancel: CancelSignal) -> None:
    seen: list[httpx.Request] = []
    spent = {"X-Ratelimit-Route-Remaining": "0", "X-Ratelimit-Reset": str(int((time.time() + 50) * 1000))}
    client = Client("https://app.launchdarkly.com", TOKEN, cancel=cancel,
                    transport=answering(httpx.Response(200, json=PAGE, headers=spent), seen))
    client.list_items(METRIC, "shop")  # the window is spent: the next request would wait 50 s for its reset
    cancel_in(cancel, 0.2)
    started = time.monotonic()
    with pytest.raises(Cancelled):
        client.list_items(METRIC, "shop")
    assert time.monotonic() - started < 0.8
    assert len(seen) == 1


def test_an_injected_sleep_is_used_and_the_signal_still_checked(cancel: CancelSignal) -> None:
    clock = FakeClock()
    seen: list[httpx.Request] = []
    transport = answering(httpx.Response(503, text="unavailable"), seen, before=lambda n: n == 2 and cancel.set())
    client = Client("https://app.launchdarkly.com", TOKEN, transport=transport, cancel=cancel, clock=clock,
                    sleep=clock.sleep)
    with pytest.raises(Cancelled):
        client.get_item(METRIC, "shop", "m")
    assert len(seen) == 2 and len(clock.sleeps) == 1  # the first backoff on the fake clock; no second one


@pytest.mark.parametrize("write", ["PATCH", "POST"])
def test_a_write_that_may_have_landed_is_reported_not_called_cancelled(cancel: CancelSignal, write: str) -> None:
    seen: list[httpx.Request] = []
    transport = answering(httpx.Response(502, text="bad gateway"), seen, before=lambda n: cancel.set())
    client = Client("https://app.launchdarkly.com", TOKEN, transport=transport, cancel=cancel)
    with pytest.raises(ApiError) as failure:
        if write == "PATCH":
            client.patch_item(METRIC, "shop", "m", [{"op": "replace", "path": "/name", "value": "N"}])
        else:
            client.create_item(METRIC, "shop", {"key": "m"})
    assert failure.value.ambiguous and failure.value.status == 502
    assert [r.method for r in seen] == [write]  # neither retried nor read back: nothing more is sent


def test_no_page_read_starts_once_cancelled(cancel: CancelSignal) -> None:
    store = Store(["shop"])
    store.seed({"projects": {"shop": [{"key": f"m{i:04d}", "name": "M", "kind": "custom", "eventKey": "e",
                                       "isNumeric": False}
                                      for i in range(1000)]}})  # 20 pages
    seen: list[httpx.Request] = []
    inner = httpx.WSGITransport(app=EmulatorApp(store, token=TOKEN))

    class CancelsOnSecondPage(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request)
            if len(seen) == 2:
                cancel.set()
            return inner.handle_request(request)

    client = Client("http://127.0.0.1", TOKEN, transport=CancelsOnSecondPage(), cancel=cancel, read_concurrency=2)
    with pytest.raises(Cancelled):
        client.list_items(METRIC, "shop")
    assert len(seen) <= 3  # the first page, the one that saw the cancel, and at most the one beside it
