"""The adaptive window of page reads (rate_limits.ReadWindow): it widens while the rate-limit budget the answers
report leaves room, narrows to a low budget, halves on a 429 (once per round), and never passes its cap; a whole
list read through it keeps every page and never has more requests in flight than the cap."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import httpx
import pytest

from metrics_sync.core.errors import ApiError
from metrics_sync.core.resources import METRIC
from metrics_sync.emulator import EmulatorApp, Faults, Store
from metrics_sync.launchdarkly.client import Client
from metrics_sync.launchdarkly.paging import EARLY_IN_FLIGHT
from metrics_sync.launchdarkly.rate_limits import (
    MAX_IN_FLIGHT,
    START_IN_FLIGHT,
    TIMED_PAGES,
    ReadWindow,
    remaining_budget,
)
from metrics_sync.launchdarkly.session import RetryPolicy
from metrics_sync.launchdarkly.transport import MAX_CONNECTIONS
from tests.conftest import TOKEN, FakeClock
from tests.launchdarkly.test_concurrent_reads import InFlight, metric, seeded

PLENTY = httpx.Headers({"X-Ratelimit-Route-Remaining": "1000", "X-Ratelimit-Global-Remaining": "5000"})
NO_CHECK = lambda: None  # noqa: E731


def answered(window: ReadWindow, status: int = 200, headers: httpx.Headers = PLENTY) -> None:
    window.observe(window.acquire(NO_CHECK), status, headers)
    window.release()


def test_the_window_doubles_per_round_while_the_budget_allows_and_stops_at_its_cap() -> None:
    window = ReadWindow(start=4, cap=20)
    for _ in range(4):  # one round: four answers with plenty of budget
        answered(window)
    assert window.limit == 8
    for _ in range(100):
        answered(window)
    assert window.limit == 20


def test_without_rate_limit_headers_the_cap_is_the_bound() -> None:
    window = ReadWindow(start=2, cap=6)
    for _ in range(10):
        answered(window, headers=httpx.Headers())
    assert window.limit == 6


def test_a_budget_short_of_two_windows_stops_the_growth_and_one_short_of_one_narrows_it() -> None:
    window = ReadWindow(start=8, cap=32)
    answered(window, headers=httpx.Headers({"X-Ratelimit-Route-Remaining": "12",
                                            "X-Ratelimit-Global-Remaining": "900"}))
    assert window.limit == 8  # 12 left: room for this window, not for a doubled one
    answered(window, headers=httpx.Headers({"X-Ratelimit-Global-Remaining": "3"}))
    assert window.limit == 3  # the smallest budget decides, whichever bucket reports it
    answered(window, headers=httpx.Headers({"X-Ratelimit-Auth-Token-Remaining": "0"}))
    assert window.limit == 1  # never under one


def test_a_429_halves_the_window_once_for_the_reads_sent_before_the_cut() -> None:
    window = ReadWindow(start=16, cap=32)
    sent = [window.acquire(NO_CHECK) for _ in range(16)]
    for sequence in sent:  # a burst: all sixteen refused
        window.observe(sequence, 429, httpx.Headers({"Retry-After": "1"}))
    assert window.limit == 8  # halved once, not sixteen times
    for _ in sent:
        window.release()
    later = window.acquire(NO_CHECK)
    window.observe(later, 429, httpx.Headers())
    assert window.limit == 4  # a read sent after the cut that is refused again halves it again
    window.release()


def test_the_window_holds_back_reads_beyond_its_limit() -> None:
    window = ReadWindow(start=2, cap=2)
    window.acquire(NO_CHECK)
    window.acquire(NO_CHECK)
    third = threading.Thread(target=window.acquire, args=(NO_CHECK,))
    third.start()
    third.join(0.3)
    assert third.is_alive() and window.in_flight == 2
    window.release()
    third.join(5)
    assert not third.is_alive() and window.in_flight == 2 and window.most == 2


def test_a_waiting_read_sees_the_run_cancelled() -> None:
    window = ReadWindow(start=1, cap=1)
    window.acquire(NO_CHECK)

    class Stop(Exception):
        pass

    def cancelled() -> None:
        raise Stop

    with pytest.raises(Stop):
        window.acquire(cancelled)


def test_remaining_budget_ignores_what_is_not_a_number() -> None:
    assert remaining_budget(httpx.Headers({"X-Ratelimit-Route-Remaining": "nan"})) is None
    assert remaining_budget(httpx.Headers({"X-Ratelimit-Route-Remaining": "abc",
                                           "X-Ratelimit-Global-Remaining": "7"})) == 7


def test_the_connection_pool_holds_every_read_the_window_allows() -> None:
    assert START_IN_FLIGHT <= MAX_IN_FLIGHT <= MAX_CONNECTIONS


class Slow(InFlight):
    """InFlight, each request held a few milliseconds (so that reads overlap), with the emulator's headers."""

    def __init__(self, inner: httpx.BaseTransport, refuse: set[int] | None = None) -> None:
        super().__init__(inner, before=self._hold)
        self.refuse = refuse or set()
        self.limits: list[int] = []
        self.window: ReadWindow | None = None

    def _hold(self, count: int, request: httpx.Request) -> None:
        if self.window is not None:
            self.limits.append(self.window.limit)
        time.sleep(0.005)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            refused = self.count + 1 in self.refuse
        if refused:
            with self.lock:
                self.count += 1
                self.requests.append(request)
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"code": "rate_limited", "message": "slow"})
        return super().handle_request(request)


def listing(n: int, *, rate_limit: int | None, cap: int = MAX_IN_FLIGHT, refuse: set[int] | None = None,
            seed: int = 1) -> tuple[list[dict[str, Any]], Slow, Client]:
    store = seeded(n, seed)
    clock = FakeClock()
    app = EmulatorApp(store, token=TOKEN, faults=Faults(rate_limit=rate_limit), clock=clock, sleep=clock.sleep)
    transport = Slow(httpx.WSGITransport(app=app), refuse)
    client = Client("http://127.0.0.1", TOKEN, transport=transport, clock=clock, sleep=clock.sleep,
                    rng=random.Random(seed), read_concurrency=cap)
    transport.window = client.window
    with client:
        listed = client.list_items(METRIC, "shop", expected=n)
    return listed, transport, client


def test_a_large_budget_lets_more_pages_go_at_once_than_the_start() -> None:
    listed, transport, client = listing(5000, rate_limit=10_000)  # 100 pages; a budget far above them
    assert sorted(m["key"] for m in listed) == [metric(i)["key"] for i in range(5000)]
    assert transport.count == 100  # every page once
    assert client.window.limit > START_IN_FLIGHT
    assert START_IN_FLIGHT < transport.most <= MAX_IN_FLIGHT


def test_the_cap_is_never_exceeded() -> None:
    listed, transport, client = listing(5000, rate_limit=None, cap=12)
    assert len(listed) == 5000
    assert client.window.limit == 12 and client.window.most <= 12
    assert transport.most <= 12


def test_a_small_budget_keeps_the_window_small() -> None:
    listed, transport, client = listing(1500, rate_limit=10)  # 30 pages, 10 per window of 10 seconds
    assert len(listed) == 1500
    assert client.window.limit <= 10 and transport.most <= 8  # it never grew past the start


def test_429s_narrow_the_window_and_the_pages_are_still_all_read() -> None:
    refused = set(range(20, 40, 2))  # 429s in the middle of the read (one in two: none is refused 8 times)
    listed, transport, _ = listing(5000, rate_limit=None, refuse=refused)
    assert sorted(m["key"] for m in listed) == [metric(i)["key"] for i in range(5000)]
    assert transport.count == 100 + len(refused)  # each refused page asked again, nothing skipped
    before = transport.limits[:20]
    during = transport.limits[20:40]
    assert max(before) > min(during)  # the burst cut the window (each answer after it widens it again by one)
    assert min(during) >= 1


class Gate(httpx.BaseTransport):
    """Holds every request after the first until `opened`; notes each request's thread."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner, self.opened, self.names = inner, threading.Event(), list[str]()
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.names.append(threading.current_thread().name)
            first = len(self.names) == 1
        if not first:
            assert self.opened.wait(10)
        return self.inner.handle_request(request)


def test_an_early_read_taken_over_leaves_its_pages_not_started_to_the_reader() -> None:
    transport = Gate(httpx.WSGITransport(app=EmulatorApp(seeded(2500, 7), token=TOKEN)))  # 50 pages
    # (a clock that stands still: the round trips are not known, so the window is not bounded by them)
    with Client("http://127.0.0.1", TOKEN, transport=transport, clock=FakeClock()) as client:
        client.read_ahead(METRIC, "shop")
        deadline = time.monotonic() + 10
        while len(transport.names) < 10 and time.monotonic() < deadline:  # the first page, then 9 held
            time.sleep(0.01)
        time.sleep(0.1)
        # The window's start, 8, widened by the first page's answer, are in flight; no other page has gone to
        # the early read's pool (no thread waits for room).
        assert len(transport.names) == 1 + START_IN_FLIGHT + 1
        assert threading.active_count() < 1 + 1 + START_IN_FLIGHT + 1 + 3
        threading.Timer(0.2, transport.opened.set).start()
        listed = client.list_items(METRIC, "shop")
    assert sorted(m["key"] for m in listed) == [metric(i)["key"] for i in range(2500)]
    assert len(transport.names) == 50  # every page once
    early = [name for name in transport.names if name.startswith("read-early")]
    # The pages in flight when the reader took over stay the early read's; the rest are read by the reader's pool.
    assert len(early) == 1 + START_IN_FLIGHT + 1 and len(transport.names) - len(early) == 40
    assert client.window.most > START_IN_FLIGHT


def test_an_early_read_never_taken_over_is_stopped_by_close_and_reads_nothing_more() -> None:
    transport = Gate(httpx.WSGITransport(app=EmulatorApp(seeded(2500, 8), token=TOKEN)))
    client = Client("http://127.0.0.1", TOKEN, transport=transport, clock=FakeClock())
    client.read_ahead(METRIC, "shop")
    deadline = time.monotonic() + 10
    while len(transport.names) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    threading.Timer(0.2, transport.opened.set).start()
    client.close()  # waits for the 9 in flight; sends none of the others, even those waiting for room
    assert len(transport.names) == 1 + START_IN_FLIGHT + 1
    assert not [t for t in threading.enumerate() if t.name.startswith("read-early")]


def test_a_fast_round_trip_bounds_the_window_and_a_slow_one_does_not() -> None:
    near = ReadWindow(start=8, cap=32)
    near.timed("metrics", 0.001)  # a full page from a server a millisecond away
    assert near.limit == 2  # 1 ms ÷ READ_WORK, plus one
    for _ in range(50):
        answered(near)
    assert near.limit == 2
    far = ReadWindow(start=8, cap=32)
    far.timed("metrics", 0.150)  # LaunchDarkly at 150 ms
    for _ in range(100):
        answered(far)
    assert far.limit == 32


def test_a_fast_small_list_does_not_hold_back_a_slow_long_one() -> None:
    window = ReadWindow(start=8, cap=32)
    for seconds in (0.0, -1.0, float("nan"), float("inf")):  # not a round trip
        window.timed("metrics", seconds)
    assert window.limit == 8
    window.timed("metric-groups", 0.010)  # a page of 50 groups, 10 ms
    assert window.limit == 6
    window.timed("metrics", 0.150)  # pages of metrics at 150 ms: the most generous route decides
    for _ in range(100):
        answered(window)
    assert window.limit == 32


def test_against_a_nearby_server_few_reads_are_in_flight_and_no_thread_waits_for_room() -> None:
    # A real clock and 5 ms per request: a window of 4 or 5 (5 ms and more ÷ READ_WORK, + 1) is all they can use.
    store = seeded(5000, 3)
    transport = Slow(httpx.WSGITransport(app=EmulatorApp(store, token=TOKEN)))
    threads: list[int] = []

    def hold(count: int, request: httpx.Request) -> None:
        threads.append(threading.active_count())
        time.sleep(0.005)

    transport.before = hold
    before = threading.active_count()
    with Client("http://127.0.0.1", TOKEN, transport=transport) as client:
        listed = client.list_items(METRIC, "shop", expected=5000)
    assert sorted(m["key"] for m in listed) == [metric(i)["key"] for i in range(5000)]
    assert client.window.limit < START_IN_FLIGHT and transport.most <= START_IN_FLIGHT  # (unbounded: 32)
    # The pool holds the reads in flight and the pages being kept, not one thread per page up to the cap (32,
    # most of them waiting for room, as it did).
    assert max(threads) <= before + START_IN_FLIGHT + 4


def test_a_failed_page_stops_the_pages_not_yet_started() -> None:
    def refuse(count: int, request: httpx.Request) -> None:
        if count == 5:
            raise httpx.ConnectError("refused", request=request)
        time.sleep(0.002)

    transport = InFlight(httpx.WSGITransport(app=EmulatorApp(seeded(5000, 4), token=TOKEN)), before=refuse)
    with Client("http://127.0.0.1", TOKEN, transport=transport, clock=FakeClock(), read_concurrency=4,
                retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(ApiError):
            client.list_items(METRIC, "shop", expected=5000)
        assert client.window.in_flight == 0  # every room taken was given back
    assert transport.count < 20  # of 100 pages: those in flight when it failed, not the rest


def test_a_short_page_answered_fast_does_not_narrow_the_reads_of_a_long_list() -> None:
    # A project with 10 metrics answers in a millisecond; another's pages of 50 take 40 ms. The short page says
    # nothing of what the long list can use: its reads go as wide as 40 ms makes useful (21), not 2.
    store = Store(["shop", "tiny"], rng=random.Random(6))
    store.seed({"projects": {"shop": [metric(i) for i in range(5000)], "tiny": [metric(i) for i in range(10)]}})
    transport = Slow(httpx.WSGITransport(app=EmulatorApp(store, token=TOKEN)))
    transport.before = lambda count, request: time.sleep(0.001 if "/tiny" in request.url.path else 0.040)
    with Client("http://127.0.0.1", TOKEN, transport=transport) as client:
        assert len(client.list_items(METRIC, "tiny")) == 10
        listed = client.list_items(METRIC, "shop", expected=5000)
    assert len(listed) == 5000
    assert transport.most > 10 and client.window.limit > 10


def test_an_early_read_holds_no_more_rooms_than_its_threads() -> None:
    transport = Gate(httpx.WSGITransport(app=EmulatorApp(seeded(5000, 9), token=TOKEN)))
    with Client("http://127.0.0.1", TOKEN, transport=transport, clock=FakeClock()) as client:
        client.window.limit = 32  # (room for more than the early read's 16 threads)
        client.read_ahead(METRIC, "shop")
        deadline = time.monotonic() + 10
        while len(transport.names) < 1 + EARLY_IN_FLIGHT and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        # Its 16 pages are held at the server; no room is taken for a page that waits for a thread (the window is
        # shared with the client's other reads).
        assert len(transport.names) == 1 + EARLY_IN_FLIGHT
        assert client.window.in_flight == EARLY_IN_FLIGHT
        transport.opened.set()
        assert len(client.list_items(METRIC, "shop")) == 5000
    assert client.window.in_flight == 0


def test_one_page_oddly_fast_bounds_the_window_only_while_it_is_recent() -> None:
    window = ReadWindow(start=8, cap=32)
    window.timed("metrics", 0.150)
    window.timed("metrics", 0.004)  # a page timed across a clock step, or served from somewhere near
    assert window.limit == 3
    for _ in range(TIMED_PAGES):
        window.timed("metrics", 0.150)
        answered(window)
    for _ in range(40):
        answered(window)
    assert window.limit == 32


def test_exchanges_are_timed_by_the_monotonic_clock_unless_a_test_gives_its_own() -> None:
    # The wall clock may step while a request is out (a page timed too fast narrows the window); a test's clock
    # stands still, and its pages are not timed at all.
    assert Client("http://127.0.0.1", TOKEN).session._timer is time.monotonic
    clock = FakeClock()
    assert Client("http://127.0.0.1", TOKEN, clock=clock).session._timer is clock
