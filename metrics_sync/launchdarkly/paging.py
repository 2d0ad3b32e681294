"""Every item of a LaunchDarkly list, read with paged list calls (limit 50, offset), whole or not at all.

Paging ends when the offset passes `totalCount`, when a page adds no new item, or at a page cap derived from
`totalCount`; a count that makes no sense is an error. Each item is checked (wire.py) before it is kept.

Pages go at once: once the first page has told `totalCount`, every other offset is known and asked for, with
as many in flight as an adaptive window allows (rate_limits.ReadWindow: START_IN_FLIGHT at first, widened while
the rate-limit budget the answers report leaves room, halved on a 429, never above MAX_IN_FLIGHT). A list may
also be started early (`Pager.start`), before the caller knows what it keeps of each item: plan starts the
metrics list while it reads the definitions, and the answers wait, as bytes, for `read` to check and keep them.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from metrics_sync.core.cancel import Cancelled
from metrics_sync.core.errors import ApiError
from metrics_sync.core.fields import Resource
from metrics_sync.launchdarkly.rate_limits import MAX_IN_FLIGHT, START_IN_FLIGHT, ReadWindow
from metrics_sync.launchdarkly.session import Reply, Session, Target
from metrics_sync.launchdarkly.wire import MAX_DEPTH, Checked, kept_depth, named, problem

PAGE_SIZE = 50  # LaunchDarkly's maximum for the metrics list
READ_CONCURRENCY = MAX_IN_FLIGHT  # the most pages in flight at once (the window's cap), for the whole client
EARLY_PAGES = 256  # pages an early read holds (as bytes, ~65 KB each) before the caller takes it over
# Pages an early read has in flight: while it runs, the main thread is busy reading the definitions (CPU, under
# the interpreter lock), so more threads mostly contend for the lock (measured on 10,000 metrics: 32 cost 0.1 s
# more CPU than 8, and at 150 ms read few more pages in that time; 16 costs 0.05 s). The pages it has not
# started when the caller takes over are read by the caller, with the whole window.
EARLY_IN_FLIGHT = 16
MAX_ITEMS = 250_000  # a totalCount above this is not believed (and bounds what a lying server can make us hold)
JSONDict = dict[str, Any]


Kept = JSONDict | Checked  # a dict a `keep` function returns is checked here; a `Checked` is taken as it is
Keep = Callable[[Mapping[str, Any]], Kept]  # what of each listed item is kept
Page = tuple[list[Kept], int]  # its items and the totalCount it reports


class Pager:
    def __init__(self, session: Session, read_concurrency: int = READ_CONCURRENCY) -> None:
        self._session = session
        # The most page reads in flight at once, for the whole client (several projects may be read at once);
        # the window starts lower and adapts (rate_limits.ReadWindow).
        self.read_concurrency = max(1, read_concurrency)
        self.window = ReadWindow(min(START_IN_FLIGHT, self.read_concurrency), self.read_concurrency)
        self._early: dict[tuple[str, tuple[tuple[str, str], ...]], EarlyRead] = {}
        self._early_lock = threading.Lock()

    def start(self, resource: Resource, path: str, params: Mapping[str, Any], target: Target) -> None:
        """Start reading a list now, before `read` is called for it with the same `path` and `params` (then that
        call takes over the pages read so far). The first page is asked for at once; once it has told
        `totalCount`, the next pages too (at most EARLY_PAGES in all). Nothing is printed or raised here: the
        answers (or the errors) wait for `read`. `close` stops a read never taken over."""
        early = EarlyRead(lambda offset, sequence, dropped: self._fetch(resource, path, self._params(params, offset),
                                                                        target, sequence, dropped),
                          lambda reply: self._session.decode(reply, walk=False), self.window,
                          min(EARLY_IN_FLIGHT, self.read_concurrency), self._session.cancel.check)
        with self._early_lock:
            old = self._early.pop(_early_key(path, params), None)
            self._early[_early_key(path, params)] = early
        if old is not None:
            old.close()
        early.begin()

    def close(self) -> None:
        """Stop the early reads never taken over: no new page starts, and the pages in flight are waited for
        (each ends within the transport's deadline, or within its grace once the run is cancelled)."""
        with self._early_lock:
            early, self._early = list(self._early.values()), {}
        for read in early:
            read.close()

    def read(self, resource: Resource, path: str, params: Mapping[str, Any], target: Target, *,
             keep: Keep | None = None, expected: int = 0) -> list[Kept]:
        """Every item of a paged list, sorted by creation date so that items created during the read land at
        the end instead of shifting the pages.

        The first page says `totalCount`; the other pages are then read concurrently (at most
        `read_concurrency` requests in flight for the whole client, fewer while the window is narrower, and
        inside the rate-limit budget the answers report: see rate_limits.py). A page answered 429 is waited for
        and asked again, never skipped. Items are de-duplicated by key. When pages report a larger `totalCount`
        than the first (items created meanwhile), the pages past the first count are read too. The read fails,
        rather than return a partial list, on a page that is not a page, on a server that sends the same items
        again in place of a page, and at a page cap derived from the first `totalCount`.

        With `expected` items, the first pages (as many as the window allows) are asked for at once instead of
        the first alone: at a distance that saves a round trip. A list started early (`start`) is taken over:
        its pages are not asked for again. Pages read ahead are kept only if the first page shows the server
        pages by PAGE_SIZE, as asked (A3); otherwise they were read at the wrong offsets and are not used."""
        with self._early_lock:
            early = self._early.pop(_early_key(path, params), None)

        def page(offset: int, sequence: int | None) -> Page:
            """The page at `offset`: read early, or asked for now (in its room in the window, `sequence`, when
            `_pages` took it)."""
            reply = early.take(offset) if early is not None else None  # (None: not read early)
            if reply is None:
                reply = self._fetch(resource, path, self._params(params, offset), target, sequence)
            return self._parse(resource, path, reply, keep)

        def read_early(offset: int) -> bool:
            return early is not None and early.holds(offset)

        found: dict[str, Kept] = {}

        def keep_new(offsets: list[int], pages: list[Page], total: int) -> int:
            """Keep the items not seen yet; the largest totalCount the pages report."""
            for offset, (items, page_total) in zip(offsets, pages, strict=True):
                if items and all(item["key"] in found for item in items):
                    raise ApiError("GET", path, 200, f"LaunchDarkly sent the same {resource.plural} again at offset "
                                   f"{offset} (totalCount {page_total})", hint="nothing was changed; try again later")
                for item in items:
                    found.setdefault(item["key"], item)
                total = max(total, page_total)
            return total

        try:
            if early is not None:
                offsets = early.planned()
                early.take_over()
            else:
                ahead = min(self.window.limit, math.ceil(expected / PAGE_SIZE)) if expected > PAGE_SIZE else 1
                offsets = [i * PAGE_SIZE for i in range(ahead)]
            results = self._pages(page, offsets, read_early)
            step, total = len(results[0][0]), results[0][1]
            if step != PAGE_SIZE:  # the pages read ahead were read at the wrong offsets
                offsets, results = offsets[:1], results[:1]
            if not step:
                return []
            max_pages = math.ceil(total / step) + max(2, math.ceil(total / step / 10))
            pages = len(offsets)
            while True:
                # Items created during the read raise the totalCount: the read goes on to the new end.
                total = keep_new(offsets, results, total)
                read_up_to = offsets[-1] + step
                if read_up_to >= total:
                    return list(found.values())
                offsets = list(range(read_up_to, total, step))
                pages += len(offsets)
                if pages > max_pages:
                    raise ApiError("GET", path, 200, f"LaunchDarkly kept sending pages: {pages} pages for a "
                                   f"totalCount of {total}", hint="nothing was changed; try again later")
                results = self._pages(page, offsets, read_early)
        finally:
            if early is not None:
                early.close()  # pages read early at offsets the read did not ask for (a server paging by 20)

    def _params(self, params: Mapping[str, Any], offset: int) -> dict[str, Any]:
        return {"limit": PAGE_SIZE, **params, "sort": "createdAt", "offset": offset}

    def _pages(self, page: Callable[[int, int | None], Page], offsets: list[int],
               read_early: Callable[[int], bool]) -> list[Page]:
        """The pages at `offsets`, read concurrently; in the order asked for. The first failure is raised once
        the pages in flight have finished, and no page starts after it. Once the run is cancelled no page read
        starts (each request checks)."""
        if len(offsets) == 1 or self.read_concurrency == 1:
            return [page(offset, None) for offset in offsets]
        self._session.cancel.check()
        failed = threading.Event()
        # A page goes to the pool once the window has room for its request (a page read early needs none): the
        # pool's threads are the reads in flight and the pages being kept, none of them waiting for room (each
        # waiting thread costs CPU: rate_limits.READ_WORK).
        with ThreadPoolExecutor(max_workers=min(self.read_concurrency, len(offsets)), thread_name_prefix="read") \
                as pool:
            futures: list[tuple[Future[Page], int | None]] = []
            try:
                for offset in offsets:
                    if failed.is_set():
                        break  # (its error is raised below, from the page that failed)
                    sequence = None if read_early(offset) else self.window.acquire(self._session.cancel.check)
                    if failed.is_set() and sequence is not None:  # (failed while this one waited for room)
                        self.window.release()
                        break
                    future = pool.submit(page, offset, sequence)
                    future.add_done_callback(lambda done: _note_failure(done, failed))
                    futures.append((future, sequence))
                return [future.result() for future, _ in futures]
            except BaseException:
                for future, sequence in futures:
                    if future.cancel() and sequence is not None:
                        self.window.release()  # (the room taken for a page that never started)
                raise

    def _fetch(self, resource: Resource, path: str, params: Mapping[str, Any], target: Target,
               sequence: int | None = None, dropped: Callable[[], bool] = lambda: False) -> Reply:
        """One page's answer, inside the window: in the room `sequence` already taken for it, else once there is
        room. A read `dropped` while it waits for room is not sent. The room is given back once it is answered."""
        def check() -> None:
            self._session.cancel.check()
            if dropped():
                raise _Dropped()

        room = self.window.acquire(check) if sequence is None else sequence
        try:
            check()
            return self._session.request("GET", path, resource.collection, params=params,
                                         headers=resource.headers, target=target,
                                         observe=lambda status, headers: self.window.observe(room, status, headers))
        finally:
            self.window.release()

    def _parse(self, resource: Resource, path: str, reply: Reply, keep: Keep | None) -> Page:
        """One page: its items (each checked; what is kept of them no deeper than MAX_DEPTH) and its
        `totalCount`."""
        data = self._session.decode(reply, walk=False)
        items, total = _items_and_total(data)
        if not isinstance(items, list):
            raise ApiError("GET", path, 200, f"the {resource.name} list has no `items` array")
        if not isinstance(total, int) or isinstance(total, bool) or not 0 <= total <= MAX_ITEMS:
            raise ApiError("GET", path, 200, f"the {resource.name} list gives no usable totalCount ({_brief(total)})",
                           hint="LaunchDarkly's answer makes no sense; try again later")
        if len(items) > PAGE_SIZE:
            raise ApiError("GET", path, 200, f"a page holds {len(items)} {resource.plural}, more than the "
                           f"{PAGE_SIZE} asked for")
        if len(items) == PAGE_SIZE:  # (a short page comes back faster: it says less of what the window can use)
            self.window.timed(resource.collection, reply.seconds)
        kept: list[Kept] = []
        for item in items:
            # What is not kept is never read: only what is kept is checked (the key is always kept).
            if keep is not None and isinstance(item, Mapping) and "key" in item:
                item = keep(item)
                if isinstance(item, Checked):
                    kept.append(item)
                    continue
            wrong = problem(resource, item)
            if not wrong and kept_depth(item, resource.shaped) > MAX_DEPTH - 3:  # page → items → item → field
                wrong = f"it is nested deeper than {MAX_DEPTH} levels"
            if wrong:
                raise ApiError("GET", path, 200, f"LaunchDarkly sent a malformed {resource.name}{named(item)}: "
                               f"{wrong}", hint="nothing was changed; report it to LaunchDarkly if it persists")
            kept.append(item)
        return kept, total


class EarlyRead:
    """The first pages of one list, asked for before the caller can check and keep them (`Pager.start`).

    A thread of its own asks for the first page; once it is answered, the next offsets up to `totalCount` (at
    most EARLY_PAGES pages) go too, in a pool inside the pager's window. Answers are held as they came (bytes,
    not yet decoded into items) until `Pager.read` takes them; errors are held too, and raised there, as that
    read would have raised them. `close` starts nothing more and waits for what is in flight."""

    def __init__(self, fetch: Callable[[int, int | None, Callable[[], bool]], Reply], decode: Callable[[Reply], Any],
                 window: ReadWindow, concurrency: int, check_cancel: Callable[[], None]) -> None:
        self._fetch_page, self._decode, self._window, self._concurrency = fetch, decode, window, concurrency
        self._check_cancel = check_cancel
        self._first: Future[list[int]] = Future()  # the offsets planned, once the first page is answered
        self._replies: dict[int, Future[Reply]] = {}  # the pages asked for
        self._roomed: set[int] = set()  # the offsets given to the pool with a room in the window taken for them
        self._closed = threading.Event()
        self._stopped = False  # taken over or closed: no more pages go to the pool
        self._lock = threading.Lock()
        # Pages given to the pool and not finished: at most its threads, so that no room in the window is held by
        # a page waiting for a thread (the window is shared with the client's other reads).
        self._outstanding = threading.BoundedSemaphore(max(1, concurrency))
        self._pool: ThreadPoolExecutor | None = None
        self._thread = threading.Thread(target=self._run, name="read-early", daemon=True)

    def begin(self) -> None:
        self._thread.start()

    def _fetch(self, offset: int, sequence: int | None = None) -> Reply:
        return self._fetch_page(offset, sequence, self._closed.is_set)

    def _check(self) -> None:
        self._check_cancel()
        if self._stopped:
            raise _Dropped()

    def _run(self) -> None:
        first: Future[Reply] = Future()
        self._replies[0] = first
        try:
            reply = self._fetch(0)
        except BaseException as exc:  # (held for `read`, which raises it, e.g. LaunchDarkly not knowing the project)
            first.set_exception(exc)
            self._first.set_result([0])
            return
        first.set_result(reply)
        offsets = [0]
        try:
            items, total = _items_and_total(self._decode(reply))
        except ApiError:  # `read` says what is wrong with it
            items, total = None, None
        if isinstance(items, list) and len(items) == PAGE_SIZE and isinstance(total, int) \
                and not isinstance(total, bool) and 0 <= total <= MAX_ITEMS and not self._closed.is_set():
            more = list(range(PAGE_SIZE, min(total, EARLY_PAGES * PAGE_SIZE), PAGE_SIZE))
            if more:
                self._pool = ThreadPoolExecutor(max_workers=min(self._concurrency, len(more)),
                                                thread_name_prefix="read-early")
                offsets += more
        self._first.set_result(offsets)
        # Each page goes to the pool once the window has room for it (as in `Pager._pages`), until taken over.
        for offset in offsets[1:]:
            try:
                while not self._outstanding.acquire(timeout=0.25):
                    self._check()
                try:
                    room = self._window.acquire(self._check)
                except BaseException:
                    self._outstanding.release()
                    raise
            except (_Dropped, Cancelled):
                return
            with self._lock:
                if self._stopped:
                    self._window.release()
                    self._outstanding.release()
                    return
                assert self._pool is not None
                future = self._pool.submit(self._fetch, offset, room)
                future.add_done_callback(lambda _: self._outstanding.release())  # (a cancelled one too)
                self._replies[offset] = future
                self._roomed.add(offset)

    def planned(self) -> list[int]:
        """The offsets asked for (the first page, and the next ones when it was a full page); waits for the first
        page's answer."""
        return self._first.result()

    def take_over(self) -> None:
        """The pages not started yet are left to the caller (its pool reads them with the whole window);
        `holds` says False of them."""
        self._stop()

    def _stop(self) -> None:
        with self._lock:
            self._stopped = True
            for offset, future in list(self._replies.items()):
                if offset in self._roomed and future.cancel():  # (only a page not yet started is cancelled)
                    del self._replies[offset]
                    self._window.release()  # (the room taken for it)

    def holds(self, offset: int) -> bool:
        """Whether the page at `offset` was asked for early (after `take_over`, this no longer changes)."""
        with self._lock:
            return offset in self._replies

    def take(self, offset: int) -> Reply | None:
        """The answer at `offset` (waiting for it), its error raised; None when it was not asked for early."""
        self._first.result()
        future = self._replies.pop(offset, None)
        if future is None:
            return None
        if future.cancelled():
            return None
        try:
            return future.result()
        except _Dropped:
            return None

    def close(self) -> None:
        self._closed.set()
        self._stop()
        if self._thread.ident is not None:  # (started)
            self._thread.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._replies.clear()


class _Dropped(Exception):
    """A page of an early read closed before its request started."""


def _note_failure(done: Future[Page], failed: threading.Event) -> None:
    if not done.cancelled() and done.exception() is not None:
        failed.set()


def _early_key(path: str, params: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return path, tuple(sorted((str(k), str(v)) for k, v in params.items()))


def _items_and_total(data: Any) -> tuple[Any, Any]:
    if not isinstance(data, dict):
        return None, None
    return data.get("items"), data.get("totalCount")


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
