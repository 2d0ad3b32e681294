"""Concurrent page reads: under 429 bursts, 5xx, resets and timeouts nothing is lost or read twice; the
rate-limit budget the answers report is respected; at most the window's cap (`read_concurrency`) requests are
in flight; a read that meets metrics created meanwhile stays whole. Seeds: METRICS_SYNC_STRESS_SEEDS (default 6)."""

from __future__ import annotations

import os
import random
import threading
from typing import Any

import httpx
import pytest

from metrics_sync.core.errors import ApiError
from metrics_sync.core.resources import METRIC
from metrics_sync.emulator import EmulatorApp, Faults, Store
from metrics_sync.launchdarkly.client import Client
from metrics_sync.launchdarkly.session import RetryPolicy
from tests.conftest import TOKEN, FakeClock
from tests.faults import FaultTransport

SEEDS = int(os.environ.get("METRICS_SYNC_STRESS_SEEDS", "6"))


def metric(i: int) -> dict[str, Any]:
    return {"key": f"m{i:04d}", "name": f"Metric {i}", "kind": "custom", "eventKey": f"e{i}", "isNumeric": False}


def seeded(n: int, seed: int) -> Store:
    store = Store(["shop"], rng=random.Random(seed))
    store.seed({"projects": {"shop": [metric(i) for i in range(n)]}})
    return store


class InFlight(httpx.BaseTransport):
    """Counts the requests in flight at once (the most seen), and may act before a given request."""

    def __init__(self, inner: httpx.BaseTransport, before: Any = None) -> None:
        self.inner, self.before = inner, before
        self.lock = threading.Lock()
        self.now = self.most = self.count = 0
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            self.now += 1
            self.count += 1
            self.most = max(self.most, self.now)
            count = self.count
        try:
            if self.before is not None:
                self.before(count, request)
            return self.inner.handle_request(request)
        finally:
            with self.lock:
                self.now -= 1


@pytest.mark.parametrize("seed", range(SEEDS))
def test_pages_read_under_faults_lose_and_repeat_nothing(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(120, 900)
    store = seeded(n, seed)
    clock = FakeClock()
    faults = Faults(fail_rate=0.12, reset_rate=0.04, timeout_rate=0.04, hang_seconds=0.0, throttle_rate=0.06,
                    burst_seconds=rng.choice([0.5, 2.0]), throttle_header=rng.choice(["retry-after", "reset"]))
    app = EmulatorApp(store, token=TOKEN, faults=faults, rng=random.Random(seed + 1), clock=clock,
                      sleep=clock.sleep)
    forced = []

    def reset_one_page(count: int, request: httpx.Request) -> None:
        # A small list may draw no fault at these rates: one page read is always cut off, so every seed tests
        # a read under faults.
        if count == 3:
            forced.append(request.url.params.get("offset"))
            raise httpx.ReadError("connection reset by the test")

    transport = InFlight(FaultTransport(app), before=reset_one_page)
    with Client("http://127.0.0.1", TOKEN, transport=transport, clock=clock, sleep=clock.sleep,
                rng=random.Random(seed + 2), retry=RetryPolicy(max_attempts=12)) as client:
        listed = client.list_items(METRIC, "shop", expected=rng.choice([0, n]))
    keys = [m["key"] for m in listed]
    assert len(keys) == len(set(keys)) == n
    assert set(keys) == {metric(i)["key"] for i in range(n)}
    assert transport.most <= client.window.cap
    assert len(forced) == 1  # the faults did strike (and, at most seeds, the emulator's own too)
    assert app.stats.requests["GET /api/v2/metrics/{projectKey}"] >= -(-n // 50)


def test_the_rate_limit_budget_is_respected() -> None:
    store = seeded(1000, 1)  # 20 pages
    clock = FakeClock()
    app = EmulatorApp(store, token=TOKEN, faults=Faults(rate_limit=7), clock=clock, sleep=clock.sleep)
    transport = InFlight(httpx.WSGITransport(app=app))
    with Client("http://127.0.0.1", TOKEN, transport=transport, clock=clock, sleep=clock.sleep,
                rng=random.Random(3)) as client:
        listed = client.list_items(METRIC, "shop")
    assert len(listed) == 1000
    assert app.stats.statuses.get(429, 0) == 0  # the remaining budget is never overdrawn, even 8 at a time
    assert clock.sleeps and max(clock.sleeps) <= 10.5  # it waited for the window's reset instead


def test_at_most_the_read_concurrency_is_in_flight_and_pages_are_read_at_once() -> None:
    store = seeded(2000, 2)  # 40 pages
    barrier_hits: list[int] = []
    lock = threading.Lock()

    def slow(count: int, request: httpx.Request) -> None:
        with lock:
            barrier_hits.append(count)
        threading.Event().wait(0.01)

    transport = InFlight(httpx.WSGITransport(app=EmulatorApp(store, token=TOKEN)), before=slow)
    with Client("http://127.0.0.1", TOKEN, transport=transport, read_concurrency=5) as client:
        assert len(client.list_items(METRIC, "shop")) == 2000
    assert 2 <= transport.most <= 5


def test_metrics_created_during_the_read_are_read_too_and_nothing_twice() -> None:
    store = seeded(430, 4)  # 9 pages; 60 more are created while the later pages are read

    def create_some(count: int, request: httpx.Request) -> None:
        if count == 3:
            for i in range(430, 490):
                store.create("shop", metric(i))

    transport = InFlight(httpx.WSGITransport(app=EmulatorApp(store, token=TOKEN)), before=create_some)
    with Client("http://127.0.0.1", TOKEN, transport=transport, read_concurrency=2) as client:
        keys = [m["key"] for m in client.list_items(METRIC, "shop")]
    assert len(keys) == len(set(keys))
    assert {metric(i)["key"] for i in range(430)} <= set(keys)  # what existed is never lost
    # Sorted by creation date, new metrics land after the old ones: the totalCount the later pages report
    # makes the read go on to them.
    assert set(keys) == {metric(i)["key"] for i in range(490)}


def test_a_page_lost_to_a_lasting_error_fails_the_read_instead_of_returning_less() -> None:
    store = seeded(300, 5)

    def break_page(count: int, request: httpx.Request) -> None:
        if request.url.params.get("offset") == "150":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    transport = InFlight(httpx.WSGITransport(app=EmulatorApp(store, token=TOKEN)), before=break_page)
    with Client("http://127.0.0.1", TOKEN, transport=transport, sleep=lambda s: None) as client, \
            pytest.raises(ApiError) as failure:
        client.list_items(METRIC, "shop")
    # The page's own error, after its connect attempts: not a shorter list, and not another page's error.
    assert str(failure.value) == ("GET /api/v2/metrics/shop failed: no response: nothing answers at "
                                  "http://127.0.0.1 ([Errno 111] Connection refused) (is the emulator running? "
                                  "(metrics-sync emulator --port PORT))")
    asked = [r.url.params.get("offset") for r in transport.requests]
    assert asked.count("150") == RetryPolicy().connect_attempts


def test_the_expected_count_sends_the_first_pages_at_once_and_reads_no_more_pages() -> None:
    store = seeded(1000, 3)
    transport = InFlight(httpx.WSGITransport(app=EmulatorApp(store, token=TOKEN)))
    with Client("http://127.0.0.1", TOKEN, transport=transport) as client:
        listed = client.list_items(METRIC, "shop", expected=1000)
        assert sorted(m["key"] for m in listed) == [metric(i)["key"] for i in range(1000)]
        assert transport.count == 20  # ⌈1000 / 50⌉, the first 8 of them at once
        fewer = client.list_items(METRIC, "shop", expected=120)  # 3 pages asked at once; the rest as usual
        assert len(fewer) == 1000 and transport.count == 40


class PagesOf20(httpx.BaseTransport):
    """A server that pages by 20 whatever `limit` asks for (the spec says at most 50)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url.copy_set_param("limit", "20") if "limit" in request.url.params else request.url
        return self.inner.handle_request(httpx.Request(request.method, url, headers=request.headers,
                                                       content=request.content))


def test_pages_read_ahead_at_the_wrong_offsets_are_not_used() -> None:
    store = seeded(230, 4)
    with Client("http://127.0.0.1", TOKEN, transport=PagesOf20(httpx.WSGITransport(app=EmulatorApp(store,
                                                                                               token=TOKEN)))) as c:
        listed = c.list_items(METRIC, "shop", expected=230)
    keys = [m["key"] for m in listed]
    assert len(keys) == len(set(keys)) == 230
