"""Rate-limit pacing (launchdarkly/rate_limits.py): the waits a 429 asks for, the windows the answers report, and
the gate that keeps requests inside them, alone and from several threads at once."""

from __future__ import annotations

import random
import threading
import time
from email.utils import formatdate

import pytest

from metrics_sync.launchdarkly.rate_limits import ANNOUNCE_AFTER, RateGate, retry_after
from tests.conftest import FakeClock

ROUTE = "GET /api/v2/metrics/{projectKey}"
OTHER = "PATCH /api/v2/metrics/{projectKey}/{key}"
NOW = 1_800_000_000.0


def ms(seconds: float) -> str:
    return str(int(seconds * 1000))


def gate(clock: FakeClock, max_wait: float = 60.0) -> tuple[RateGate, list[str]]:
    said: list[str] = []
    return RateGate(clock, clock.sleep, random.Random(1), max_wait=max_wait, announce=said.append), said


# --- what a 429 asks for -----------------------------------------------------------------------------

@pytest.mark.parametrize("headers, wait", [
    ({"retry-after": "3"}, 3.0),
    ({"retry-after": " 2.5 "}, 2.5),
    ({"retry-after": "-4"}, 0.0),  # never negative
    ({"retry-after": formatdate(NOW + 30, usegmt=True)}, 30.0),  # an HTTP date
    ({"retry-after": formatdate(NOW - 30, usegmt=True)}, 0.0),  # a date already past
    ({"x-ratelimit-reset": ms(NOW + 7.5)}, 7.5),  # epoch milliseconds
    ({"x-ratelimit-auth-token-reset": ms(NOW + 4)}, 4.0),
    ({"x-ratelimit-reset": ms(NOW + 2), "x-ratelimit-auth-token-reset": ms(NOW + 9)}, 2.0),  # the first reset named
    ({"retry-after": "3", "x-ratelimit-reset": ms(NOW + 10)}, 10.0),  # the longer of the two
    ({"retry-after": "12", "x-ratelimit-reset": ms(NOW + 10)}, 12.0),
    ({"x-ratelimit-reset": ms(NOW - 5)}, 0.0),
])
def test_retry_after_reads_every_form(headers: dict[str, str], wait: float) -> None:
    assert retry_after(headers, NOW) == pytest.approx(wait, abs=0.01)


@pytest.mark.parametrize("headers", [{}, {"retry-after": "soon"}, {"retry-after": "nan"}, {"retry-after": "inf"},
                                     {"retry-after": ""}, {"x-ratelimit-reset": "NaN"}, {"x-ratelimit-reset": "x"}])
def test_retry_after_ignores_what_is_not_a_finite_number_or_a_date(headers: dict[str, str]) -> None:
    assert retry_after(headers, NOW) is None


# --- the windows the answers report ----------------------------------------------------------------

def test_a_request_waits_when_the_window_has_no_budget_left_for_it() -> None:
    clock = FakeClock(NOW)
    pacing, _ = gate(clock)
    pacing.acquire(ROUTE)  # nothing known yet: goes at once
    pacing.release(ROUTE, {"x-ratelimit-route-remaining": "1", "x-ratelimit-reset": ms(NOW + 10)})
    pacing.acquire(ROUTE)  # the last request of the window
    assert clock.sleeps == []
    pacing.acquire(ROUTE)  # in flight: 1 of 1 left, so this one waits for the reset (plus jitter)
    assert len(clock.sleeps) == 1 and 10.01 <= clock.sleeps[0] <= 10.1
    pacing.release(ROUTE, None)
    pacing.release(ROUTE, None)
    pacing.acquire(ROUTE)  # a new window: its budget is unknown, so nothing waits
    assert len(clock.sleeps) == 1


def test_route_budgets_are_per_route_and_the_global_and_token_budgets_for_all() -> None:
    clock = FakeClock(NOW)
    pacing, _ = gate(clock)
    pacing.acquire(ROUTE)
    pacing.release(ROUTE, {"x-ratelimit-route-remaining": "0", "x-ratelimit-reset": ms(NOW + 5)})
    pacing.acquire(OTHER)  # another route's budget is its own
    assert clock.sleeps == []
    pacing.release(OTHER, {"x-ratelimit-global-remaining": "0", "x-ratelimit-reset": ms(NOW + 3)})
    clock.now += 5  # the route window of ROUTE is over; the global one is too
    pacing.acquire(OTHER)
    assert clock.sleeps == []
    pacing.release(OTHER, {"x-ratelimit-auth-token-remaining": "0", "x-ratelimit-auth-token-reset": ms(clock.now + 2)})
    pacing.acquire(ROUTE)  # the token's budget holds back every route
    assert len(clock.sleeps) == 1 and 2.01 <= clock.sleeps[0] <= 2.1


def test_answers_arriving_out_of_order_keep_the_lowest_remaining_budget() -> None:
    clock = FakeClock(NOW)
    pacing, _ = gate(clock)
    reset = ms(NOW + 8)
    for remaining in ("3", "1", "2"):
        pacing.acquire(ROUTE)
        pacing.release(ROUTE, {"x-ratelimit-route-remaining": remaining, "x-ratelimit-reset": reset})
    pacing.acquire(ROUTE)
    assert clock.sleeps == []
    pacing.acquire(ROUTE)  # 1 left and 1 in flight
    assert len(clock.sleeps) == 1 and 8.0 < clock.sleeps[0] <= 8.1


def test_a_reset_further_away_than_the_longest_wait_is_not_believed() -> None:
    clock = FakeClock(NOW)
    pacing, _ = gate(clock, max_wait=60.0)
    pacing.acquire(ROUTE)
    pacing.release(ROUTE, {"x-ratelimit-route-remaining": "0", "x-ratelimit-reset": ms(NOW + 86_400)})
    pacing.acquire(ROUTE)
    assert sum(clock.sleeps) <= 60.1  # a day away is waited for at most a minute


def test_block_until_holds_back_the_route_after_a_429() -> None:
    clock = FakeClock(NOW)
    pacing, _ = gate(clock)
    pacing.block_until(ROUTE, NOW + 5)
    pacing.block_until(ROUTE, NOW + 1)  # an earlier end never shortens a block
    pacing.acquire(OTHER)
    assert clock.sleeps == []
    pacing.acquire(ROUTE)
    assert len(clock.sleeps) == 1 and 5.01 <= clock.sleeps[0] <= 5.1


def test_long_waits_are_announced_short_ones_are_not_and_every_wait_is_capped() -> None:
    clock = FakeClock(NOW)
    pacing, said = gate(clock, max_wait=60.0)
    pacing.pause(ANNOUNCE_AFTER - 1, "before retrying GET /x")
    assert said == []
    pacing.pause(12.4, "before retrying GET /x")
    assert said == ["LaunchDarkly's rate limit: waiting 12 s before retrying GET /x"]
    pacing.pause(3600, "for the window")
    assert said[-1] == "LaunchDarkly's rate limit: waiting 60 s for the window"
    pacing.pause(-3, "never")
    assert clock.sleeps == [ANNOUNCE_AFTER - 1, 12.4, 60.0, 0.0]


def test_concurrent_acquires_never_overdraw_the_budget() -> None:
    """Eight threads at once against a window with three requests left: exactly three go at once, the others
    wait (the budget counts the requests in flight, under one lock)."""
    waited: list[str] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:  # the waits are recorded, not slept: the window never resets here
        with lock:
            waited.append(threading.current_thread().name)

    pacing = RateGate(time.time, sleep, random.Random(2), max_wait=2.0)
    pacing.release(ROUTE, {"x-ratelimit-route-remaining": "3", "x-ratelimit-reset": ms(time.time() + 1000)})
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        pacing.acquire(ROUTE)

    threads = [threading.Thread(target=worker, name=f"w{i}") for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(set(waited)) == 5  # 8 threads, 3 requests left: five waited (each up to max_wait, then went)
