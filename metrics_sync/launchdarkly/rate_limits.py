"""Staying inside LaunchDarkly's rate limits, whatever the rate-limit headers say.

LaunchDarkly reports its limits in headers (API overview, "Rate limiting"): `X-Ratelimit-Route-Remaining`
and `X-Ratelimit-Global-Remaining` with `X-Ratelimit-Reset` (epoch milliseconds),
`X-Ratelimit-Auth-Token-Remaining` with `X-Ratelimit-Auth-Token-Reset`, and `Retry-After` (seconds or an
HTTP date) for IP limits. Headers are outside input: a value that is not a finite number is ignored, and
every wait is capped (`max_wait`); a wait longer than `ANNOUNCE_AFTER` seconds is announced, so a run never
stalls in silence.
"""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

ANNOUNCE_AFTER = 5.0  # seconds; shorter waits are only logged with --verbose


def _finite(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait that a 429 answer asks for (`Retry-After`, or the reset of an exhausted window),
    or None when it says nothing usable. Never negative; not yet capped."""
    wait: float | None = None
    given = headers.get("retry-after")
    if given:
        seconds = _finite(given)
        if seconds is None:
            try:
                seconds = parsedate_to_datetime(given).timestamp() - now
            except (TypeError, ValueError, IndexError, OverflowError):
                seconds = None
        if seconds is not None and math.isfinite(seconds):
            wait = max(seconds, 0.0)
    for name in ("x-ratelimit-reset", "x-ratelimit-auth-token-reset"):
        reset = _finite(headers.get(name))
        if reset is not None:
            wait = max(wait or 0.0, reset / 1000.0 - now)
            break
    return None if wait is None else max(wait, 0.0)


class _Budget:
    __slots__ = ("in_flight", "remaining", "reset_at")

    def __init__(self) -> None:
        self.remaining: int | None = None
        self.reset_at = 0.0
        self.in_flight = 0


class RateGate:
    """Paces requests so they stay inside LaunchDarkly's rate-limit windows.

    Buckets: one per route (method + path template) for `X-Ratelimit-Route-*`, plus the account-wide
    `X-Ratelimit-Global-*` and per-token `X-Ratelimit-Auth-Token-*` budgets. A request may start when
    the last reported remaining budget, minus requests already in flight, is above zero; otherwise it
    waits for the window's reset (plus jitter, so parallel workers do not stampede), at most `max_wait`.
    """

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None], rng: random.Random, *,
                 max_wait: float = 60.0, announce: Callable[[str], None] | None = None,
                 reserve: Callable[[float], None] | None = None) -> None:
        self._clock, self._sleep, self._rng = clock, sleep, rng
        self._reserve = reserve  # counts each wait against a run's budget before it is announced; may refuse it
        self.max_wait = max_wait
        self._announce = announce
        self._lock = threading.Lock()
        self._buckets: dict[str, _Budget] = {}

    def _bucket_names(self, route: str) -> tuple[str, ...]:
        return (route, "global", "token")

    def acquire(self, route: str) -> None:
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                wait = 0.0
                for name in self._bucket_names(route):
                    b = self._buckets.get(name)
                    if b is None or b.remaining is None:
                        continue
                    if now >= b.reset_at:  # the window has rolled over: its new budget is unknown
                        b.remaining = None
                        continue
                    if b.remaining - b.in_flight <= 0:
                        wait = max(wait, b.reset_at - now)
                if wait <= 0 or waited >= self.max_wait:
                    for name in self._bucket_names(route):
                        self._buckets.setdefault(name, _Budget()).in_flight += 1
                    return
            wait = min(wait, self.max_wait - waited)
            self.pause(wait + self._rng.uniform(0.01, 0.1), f"for the rate-limit window of {route} to reset")
            waited += wait

    def pause(self, seconds: float, why: str) -> None:
        """Sleep `seconds` (capped), announcing long waits."""
        seconds = min(max(seconds, 0.0), self.max_wait)
        if self._reserve is not None:
            self._reserve(seconds)
        if seconds >= ANNOUNCE_AFTER and self._announce is not None:
            self._announce(f"LaunchDarkly's rate limit: waiting {seconds:.0f} s {why}")
        self._sleep(seconds)

    def release(self, route: str, headers: Mapping[str, str] | None) -> None:
        with self._lock:
            for name in self._bucket_names(route):
                b = self._buckets.setdefault(name, _Budget())
                b.in_flight = max(0, b.in_flight - 1)
            if headers is None:
                return
            now = self._clock()
            self._observe(route, headers.get("x-ratelimit-route-remaining"), headers.get("x-ratelimit-reset"), now)
            self._observe("global", headers.get("x-ratelimit-global-remaining"), headers.get("x-ratelimit-reset"),
                          now)
            self._observe("token", headers.get("x-ratelimit-auth-token-remaining"),
                          headers.get("x-ratelimit-auth-token-reset"), now)

    def block_until(self, route: str, reset_at: float) -> None:
        """After a 429: nobody sends on this route before `reset_at`."""
        with self._lock:
            b = self._buckets.setdefault(route, _Budget())
            b.remaining, b.reset_at = 0, max(b.reset_at, reset_at)

    def _observe(self, name: str, remaining: str | None, reset: str | None, now: float) -> None:
        left, reset_ms = _finite(remaining), _finite(reset)
        if left is None or reset_ms is None:
            return
        # A reset further away than the longest wait is not believed: it would stall every request.
        reset_at = min(reset_ms / 1000.0, now + self.max_wait)
        b = self._buckets.setdefault(name, _Budget())
        if b.remaining is None or reset_at > b.reset_at + 0.5:
            b.remaining, b.reset_at = max(int(left), 0), reset_at  # a new window
        elif abs(reset_at - b.reset_at) <= 0.5:
            b.remaining = min(b.remaining, max(int(left), 0))  # answers arrive out of order: keep the lowest


# How many list pages may be in flight at once (paging.py). A hard cap: each read in flight holds a thread and a
# connection (transport.py sizes its pool for it), and on 2 CPUs more in flight only helps the waiting, since
# pages are decoded in threads that share one interpreter lock.
START_IN_FLIGHT = 8  # before any answer has said anything about the budget
MAX_IN_FLIGHT = 32
# The least work the client does for each page it reads (decoding, checking and keeping 50 items: measured 2.5 to
# 3 ms). Reads arriving faster than that cannot be taken as they come: with a round trip of R seconds, more than
# R / READ_WORK + 1 reads in flight only wait for the interpreter lock, and each waiting thread costs CPU (a
# loopback server: 32 in flight cost 10 % more CPU than 2, docs/performance.md).
READ_WORK = 0.002
TIMED_PAGES = 32  # the full pages of a route whose fastest round trip bounds the window
_REMAINING = ("x-ratelimit-route-remaining", "x-ratelimit-global-remaining", "x-ratelimit-auth-token-remaining")


def remaining_budget(headers: Mapping[str, str]) -> float | None:
    """The smallest remaining budget an answer reports (route, account-wide, token); None when it reports none.
    `headers` must look names up case-insensitively (httpx's do)."""
    values = [value for name in _REMAINING if (value := _finite(headers.get(name))) is not None]
    return min(values) if values else None


class ReadWindow:
    """An adaptive bound on the reads in flight (TCP's congestion window, for a rate-limited API).

    It starts at `start`; each answer whose rate-limit budget leaves room for twice as many reads as the window
    (or that reports no budget: the cap is then the only bound) widens it by one, so it doubles per round trip;
    a budget lower than the window narrows it to that budget; a 429 halves it, once per round (the other 429s
    of reads sent before the cut say the same thing). It never exceeds `cap` nor falls under 1, nor what the
    fastest round trip of a route's recent full pages makes useful (`timed`: its seconds ÷ READ_WORK, plus one:
    a nearby server needs two or three reads in flight, LaunchDarkly at 62 ms or more the whole cap). Full pages
    only, and each list route on its own, the most generous one deciding: a short page or a small list (a
    project's few metric groups) comes back faster than a page of 50, and must not hold back the reads of a long
    list. The rate gate (RateGate) still decides when each request may go; the window only keeps fewer of them
    waiting.
    """

    def __init__(self, start: int = START_IN_FLIGHT, cap: int = MAX_IN_FLIGHT) -> None:
        self.cap = max(1, cap)
        self.limit = min(max(1, start), self.cap)
        self.in_flight = self.most = 0  # `most`: the largest number seen in flight (tests, --verbose)
        self._sent = self._cut_at = 0  # reads started; how many had started when the window was last cut
        self._recent: dict[str, deque[float]] = {}  # list route -> round trips of its last full pages
        self._useful = self.cap  # reads in flight those round trips make useful
        self._changed = threading.Condition()

    def acquire(self, check: Callable[[], None]) -> int:
        """Wait for room in the window (calling `check`, which may raise, at least every quarter second); the
        read's sequence number, for `observe`."""
        with self._changed:
            while self.in_flight >= self.limit:
                check()
                self._changed.wait(0.25)
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self._sent += 1
            return self._sent

    def release(self) -> None:
        with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    def timed(self, route: str, seconds: float) -> None:
        """A full page of `route` came back `seconds` after it was sent (not a positive number: not known). The
        fastest of the route's last TIMED_PAGES counts: one page that came back oddly fast bounds the window only
        until it is that old."""
        if not 0 < seconds < math.inf:
            return
        with self._changed:
            recent = self._recent.setdefault(route, deque(maxlen=TIMED_PAGES))
            recent.append(seconds)
            self._useful = max(math.ceil(min(times) / READ_WORK) + 1 for times in self._recent.values())
            self.limit = min(self.limit, self._useful)  # (it widens again by `observe`, up to the bound)

    def observe(self, sequence: int, status: int, headers: Mapping[str, str]) -> None:
        """One answer to the read numbered `sequence` (429s included: the session retries them)."""
        with self._changed:
            if status == 429:
                if sequence > self._cut_at:
                    self.limit = max(1, self.limit // 2)
                    self._cut_at = self._sent
                return
            if not 200 <= status < 300:
                return
            left = remaining_budget(headers)
            if left is None or left >= 2 * self.limit:
                self.limit = min(self.cap, self._useful, self.limit + 1)
            elif left < self.limit:
                self.limit = max(1, int(left))
            self._changed.notify_all()
