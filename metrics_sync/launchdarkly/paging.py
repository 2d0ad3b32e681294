"""Every item of a LaunchDarkly list, read with paged list calls (limit 50, offset), whole or not at all.

Paging ends when the offset passes `totalCount`, when a page adds no new item, or at a page cap derived from
`totalCount`; a count that makes no sense is an error. Each item is checked (wire.py) before it is kept.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from metrics_sync.core.errors import ApiError
from metrics_sync.core.fields import Resource
from metrics_sync.launchdarkly.session import Session, Target
from metrics_sync.launchdarkly.wire import MAX_DEPTH, kept_depth, named, problem

PAGE_SIZE = 50  # LaunchDarkly's maximum for the metrics list
READ_CONCURRENCY = 8  # pages read at once, once the first page has told how many there are
MAX_ITEMS = 250_000  # a totalCount above this is not believed (and bounds what a lying server can make us hold)
Keep = Callable[[Mapping[str, Any]], dict[str, Any]]  # what of each listed item is kept
JSONDict = dict[str, Any]
Page = tuple[list[JSONDict], int]  # its items and the totalCount it reports


class Pager:
    def __init__(self, session: Session, read_concurrency: int = READ_CONCURRENCY) -> None:
        self._session = session
        # Concurrent page reads, for the whole client (several projects may be read at once).
        self.read_concurrency = max(1, read_concurrency)
        self._read_slots = threading.BoundedSemaphore(self.read_concurrency)

    def read(self, resource: Resource, path: str, params: Mapping[str, Any], target: Target, *,
             keep: Keep | None = None, expected: int = 0) -> list[JSONDict]:
        """Every item of a paged list, sorted by creation date so that items created during the read land at
        the end instead of shifting the pages.

        The first page says `totalCount`; the other pages are then read concurrently (at most
        `read_concurrency` requests in flight for the whole client, and inside the rate-limit budget the
        answers report: see rate_limits.py). A page answered 429 is waited for and asked again, never
        skipped. Items are de-duplicated by key. When pages report a larger `totalCount` than the first
        (items created meanwhile), the pages past the first count are read too. The read fails, rather than
        return a partial list, on a page that is not a page, on a server that sends the same items again in
        place of a page, and at a page cap derived from the first `totalCount`.

        With `expected` items, the first pages (up to `read_concurrency`) are asked for at once instead of the
        first alone: at a distance that saves a round trip. They are kept only if the first page shows the
        server pages by PAGE_SIZE, as asked (A3); otherwise they were read at the wrong offsets and are not
        used."""
        def page(offset: int) -> Page:
            return self._page(resource, path, {"limit": PAGE_SIZE, **params, "sort": "createdAt", "offset": offset},
                              target, keep)

        found: dict[str, JSONDict] = {}

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

        ahead = min(self.read_concurrency, math.ceil(expected / PAGE_SIZE)) if expected > PAGE_SIZE else 1
        offsets = [i * PAGE_SIZE for i in range(ahead)]
        results = self._pages(page, offsets)
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
                raise ApiError("GET", path, 200, f"LaunchDarkly kept sending pages: {pages} pages for a totalCount "
                               f"of {total}", hint="nothing was changed; try again later")
            results = self._pages(page, offsets)

    def _pages(self, page: Callable[[int], Page], offsets: list[int]) -> list[Page]:
        """The pages at `offsets`, read concurrently; in the order asked for. The first failure is raised once
        the pages in flight have finished. Once the run is cancelled no page read starts (each request checks)."""
        if len(offsets) == 1 or self.read_concurrency == 1:
            return [page(offset) for offset in offsets]
        self._session.cancel.check()
        with ThreadPoolExecutor(max_workers=min(self.read_concurrency, len(offsets)), thread_name_prefix="read") \
                as pool:
            futures = [pool.submit(page, offset) for offset in offsets]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _page(self, resource: Resource, path: str, params: Mapping[str, Any], target: Target,
              keep: Keep | None) -> Page:
        """One page: its items (each checked; what is kept of them no deeper than MAX_DEPTH) and its
        `totalCount`."""
        with self._read_slots:
            reply = self._session.request("GET", path, resource.collection, params=params, headers=resource.headers,
                                          target=target)
        data = self._session.decode(reply, walk=False)
        items = data.get("items") if isinstance(data, dict) else None
        total = data.get("totalCount") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ApiError("GET", path, 200, f"the {resource.name} list has no `items` array")
        if not isinstance(total, int) or isinstance(total, bool) or not 0 <= total <= MAX_ITEMS:
            raise ApiError("GET", path, 200, f"the {resource.name} list gives no usable totalCount ({_brief(total)})",
                           hint="LaunchDarkly's answer makes no sense; try again later")
        if len(items) > PAGE_SIZE:
            raise ApiError("GET", path, 200, f"a page holds {len(items)} {resource.plural}, more than the "
                           f"{PAGE_SIZE} asked for")
        kept = []
        for item in items:
            # What is not kept is never read: only what is kept is checked (the key is always kept).
            if keep is not None and isinstance(item, Mapping) and "key" in item:
                item = keep(item)
            wrong = problem(resource, item)
            if not wrong and kept_depth(item, resource.shaped) > MAX_DEPTH - 3:  # page → items → item → field
                wrong = f"it is nested deeper than {MAX_DEPTH} levels"
            if wrong:
                raise ApiError("GET", path, 200, f"LaunchDarkly sent a malformed {resource.name}{named(item)}: "
                               f"{wrong}", hint="nothing was changed; report it to LaunchDarkly if it persists")
            kept.append(item)
        return kept, total


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
