"""LaunchDarkly REST API client for metrics; the only module that imports `httpx` (and `httpcore`).

What it guarantees (see docs/security.md and docs/launchdarkly-contract.md):
  * every call carries `Authorization: <token>` (raw, no "Bearer"), `User-Agent: metrics-sync/<version>`
    (LaunchDarkly's partner guide asks integrations for a custom User-Agent) and `LD-API-Version: 20240415`;
  * the token never appears in a log line, an exception, or this object's repr, and never travels over
    plain http:// except straight to a loopback host (the local emulator): no proxy hop, no redirect;
  * every answer is bounded: `timeout` bounds each whole request (connecting, headers and body), the body
    is read up to `MAX_ANSWER_BYTES`, JSON is parsed strictly (remote.py), and only 2xx answers are data;
  * every rate-limit wait is capped and long ones are announced (rate_limits.py);
  * paging ends when the offset passes `totalCount`, when a page adds no new metric, or at a page cap
    derived from `totalCount`; a count that makes no sense is an error;
  * GET/PATCH/DELETE are retried on 5xx, timeouts and connection errors with capped exponential
    backoff; a POST is never retried blindly: after an ambiguous failure it GETs the key to learn
    whether the metric was created.
"""

from __future__ import annotations

import ipaddress
import json
import math
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpcore
import httpx

from metrics_sync import __version__
from metrics_sync.core.errors import REDACTED, TOKEN_VARIABLES, ApiError, ConfigError
from metrics_sync.core.fields import KEY, Resource
from metrics_sync.core.resources import METRIC, METRIC_GROUP
from metrics_sync.launchdarkly.rate_limits import RateGate, retry_after
from metrics_sync.launchdarkly.wire import MAX_DEPTH, BadJson, decode, kept_depth, problem

API_VERSION = "20240415"
USER_AGENT = f"metrics-sync/{__version__}"
PAGE_SIZE = 50  # LaunchDarkly's maximum for the metrics list
READ_CONCURRENCY = 8  # pages read at once, once the first page has told how many there are
Keep = Callable[[Mapping[str, Any]], dict[str, Any]]  # what of each listed item is kept
DEFAULT_BASE_URL = "https://app.launchdarkly.com"
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a page of 50 metrics is well under 1 MB
MAX_METRICS = 250_000  # a totalCount above this is not believed (and bounds what a lying server can make us hold)
ROUTE_LIST = "/api/v2/metrics/{projectKey}"
ROUTE_ITEM = "/api/v2/metrics/{projectKey}/{metricKey}"
ROUTE_GROUPS = "/api/v2/projects/{projectKey}/metric-groups"
ROUTE_GROUP = "/api/v2/projects/{projectKey}/metric-groups/{metricGroupKey}"
ROUTE_EXPERIMENT = "/api/v2/projects/{projectKey}/environments/{environmentKey}/experiments/{experimentKey}"
# Metric groups are a beta resource: LaunchDarkly answers them only with this header (metrics keep the pin).
BETA = {"LD-API-Version": "beta"}

JSONDict = dict[str, Any]
Log = Callable[[str], None]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str) -> str:
    """Normalize and vet a base URL; plain http is allowed only for loopback (the emulator)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base URL {base_url!r} is not an http(s) URL",
                          "use e.g. https://app.launchdarkly.com or http://127.0.0.1:8765 for the emulator")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"refusing to send the access token over plain http to {parts.hostname}",
                          "use https://, or http:// only for a local emulator on 127.0.0.1")
    if parts.path.rstrip("/") or parts.query:
        root = f"{parts.scheme}://{parts.netloc}"
        raise ConfigError(f"the base URL {base_url} carries a path ({parts.path or '?' + parts.query}); "
                          "metrics-sync adds /api/v2/... itself", f"use {root}")
    return base_url.rstrip("/")


@dataclass(frozen=True)
class RetryPolicy:
    # Per request, all causes together (5xx answers, timeouts, connections reset mid-way): a retried guarded
    # PATCH whose first attempt landed is then seen as done in the same run, so every change is accounted.
    max_attempts: int = 8
    connect_attempts: int = 2  # nothing listening, or no such host: say so in seconds, not minutes
    base_delay: float = 0.2
    max_delay: float = 10.0
    max_rate_limit_wait: float = 60.0  # one wait
    max_rate_limit_total: float = 180.0  # all the waits of one request


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: Any


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: httpx.Headers
    content: bytes
    target: str  # the path and query asked for, for the --verbose log


# --- a deadline for each whole request -------------------------------------------------------------------

_deadline = threading.local()  # the monotonic time by which the current thread's request must be done


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose reads and writes never wait past the current request's deadline: httpx's own
    timeouts bound each read, so a server sending one byte a second would never time out."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    @staticmethod
    def _left(timeout: float | None) -> float | None:
        deadline: float | None = getattr(_deadline, "at", None)
        if deadline is None:
            return timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("past the deadline")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, self._left(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(super().connect_tcp(host, port, _DeadlineStream._left(timeout), local_address,
                                                   socket_options))


def _install_deadlines(http: httpx.Client) -> None:
    """Give every network transport of `http` (the direct one and the proxy mounts httpx built from the
    environment) connections that respect the per-request deadline. Transports passed in by tests (the
    in-process emulator) have no network to bound."""
    for transport in (getattr(http, "_transport", None), *getattr(http, "_mounts", {}).values()):
        pool = getattr(transport, "_pool", None) if isinstance(transport, httpx.HTTPTransport) else None
        if pool is not None and hasattr(pool, "_network_backend"):
            pool._network_backend = _DeadlineBackend()  # tests/launchdarkly/test_hostile.py: a slow answer times out


@dataclass(frozen=True)
class NetworkSettings:
    proxy: str | None  # the proxy that tunnels TLS to LaunchDarkly, or None for a direct connection
    ca_file: str | None  # SSL_CERT_FILE: a CA bundle to trust instead of the default one
    ca_dir: str | None  # SSL_CERT_DIR


def network_settings(base_url: str, environ: Mapping[str, str]) -> NetworkSettings:
    """Proxy and CA settings from the environment, as curl and pip read them, for https only.

    HTTPS_PROXY (else ALL_PROXY) is used for https:// unless NO_PROXY names the host: the proxy sees only the
    TLS tunnel, so the token stays encrypted end to end. HTTP_PROXY is never used: plain http goes only to a
    loopback emulator, and a proxy would be a plain-text hop that sees the token."""
    def get(name: str) -> str | None:
        return environ.get(name) or environ.get(name.lower()) or None

    parts = urlsplit(base_url)
    if parts.scheme != "https":
        return NetworkSettings(None, None, None)
    host = (parts.hostname or "").lower()
    bypass = [entry.strip().lower().lstrip(".") for entry in (get("NO_PROXY") or "").split(",") if entry.strip()]
    skip = "*" in bypass or any(host == entry or host.endswith("." + entry) for entry in bypass)
    proxy = None if skip else get("HTTPS_PROXY") or get("ALL_PROXY")
    return NetworkSettings(proxy, get("SSL_CERT_FILE"), get("SSL_CERT_DIR"))


@contextmanager
def _request_deadline(seconds: float) -> Iterator[None]:
    _deadline.at = time.monotonic() + seconds
    try:
        yield
    finally:
        _deadline.at = None


class Client:
    """LaunchDarkly's metric endpoints. Thread-safe: apply uses one client from several workers."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        log: Log | None = None,
        notice: Log | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        environ: Mapping[str, str] | None = None,
        read_concurrency: int = READ_CONCURRENCY,
    ) -> None:
        if not token:
            raise ConfigError("no LaunchDarkly access token",
                              f"set {TOKEN_VARIABLES[0]} (or {TOKEN_VARIABLES[1]}) to an API access token")
        self.base_url = check_base_url(base_url)
        self._token = token
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._log = log
        self._clock, self._sleep = clock, sleep
        self._rng = rng or random.Random()
        self._gate = RateGate(clock, sleep, self._rng, max_wait=self._retry.max_rate_limit_wait,
                              announce=notice)
        # LaunchDarkly documents a `{"comment", "patch"}` PATCH body, but the metric endpoint's schema
        # declares only the bare array: when a wrapped patch is refused, the bare one is tried and the
        # wrapper is not sent again (docs/launchdarkly-contract.md, A10).
        self._comments_accepted = True
        # Concurrent page reads, for the whole client (several projects may be read at once).
        self.read_concurrency = max(1, read_concurrency)
        self._read_slots = threading.BoundedSemaphore(self.read_concurrency)
        # The environment is read here, from the environment given (not httpx's own reading of os.environ),
        # so what applies is explicit: see network_settings.
        self.network = network_settings(self.base_url, environ or {})
        verify: ssl.SSLContext | bool = True
        if self.network.ca_file or self.network.ca_dir:
            try:
                verify = ssl.create_default_context(cafile=self.network.ca_file, capath=self.network.ca_dir)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"cannot use the CA bundle of SSL_CERT_FILE/SSL_CERT_DIR: {exc.strerror or exc}",
                                  "point SSL_CERT_FILE at a PEM file of CA certificates, or unset it") from None
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=timeout,
            follow_redirects=False,  # a redirect could carry the token elsewhere
            trust_env=False,
            proxy=self.network.proxy if transport is None else None,
            verify=verify,
            headers={
                "Authorization": token,
                "User-Agent": USER_AGENT,
                "LD-API-Version": API_VERSION,
                "Accept": "application/json",
            },
        )
        _install_deadlines(self._http)

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r}, token={REDACTED!r})"

    @property
    def host(self) -> str:
        """Host (and port) of the LaunchDarkly instance, as plans record it."""
        return urlsplit(self.base_url).netloc

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one API for every resource (core/resources.py describes each) --------------------------------

    def list_items(self, resource: Resource, project: str, *, keep: Keep | None = None, expected: int = 0,
                   tags: Sequence[str] = ()) -> list[JSONDict]:
        if resource is METRIC:
            return self.list_metrics(project, tags=tags, keep=keep, expected=expected)
        return self.list_groups(project, keep=keep)

    def get_item(self, resource: Resource, project: str, key: str, expand: Sequence[str] = ()) -> JSONDict:
        return (self.get_metric if resource is METRIC else self.get_group)(project, key, expand)

    def find_item(self, resource: Resource, project: str, key: str) -> JSONDict | None:
        return (self.find_metric if resource is METRIC else self.find_group)(project, key)

    def create_item(self, resource: Resource, project: str, body: JSONDict) -> tuple[JSONDict, bool]:
        return (self.create_metric if resource is METRIC else self.create_group)(project, body)

    def patch_item(self, resource: Resource, project: str, key: str, operations: list[JSONDict], *,
                   comment: str | None = None) -> JSONDict:
        return (self.patch_metric if resource is METRIC else self.patch_group)(project, key, operations,
                                                                               comment=comment)

    def delete_item(self, resource: Resource, project: str, key: str) -> bool:
        if resource.retire != "delete":
            raise ValueError(f"a {resource.name} is archived, not deleted")
        return self.delete_group(project, key)

    # --- metric endpoints ---------------------------------------------------------------------

    def list_metrics(self, project: str, *, tags: Sequence[str] = (), keep: Keep | None = None,
                     expected: int = 0) -> list[JSONDict]:
        """Every metric of `project` (having all `tags`), read with paged list calls only (limit 50, offset).
        With `keep`, what of each metric is kept (e.g. `fields.METRIC.kept`: less memory on large projects).
        `expected` (how many the caller expects, e.g. the definitions' count) lets the first pages go at once."""
        params: dict[str, Any] = {"limit": PAGE_SIZE, "expand": "experimentCount"}
        if tags:
            params["filter"] = f"tags contains {json.dumps(list(tags))}"
        return self._paged(self._project_path(project), ROUTE_LIST, params, METRIC, "metric", keep=keep,
                           expected=expected)

    def list_groups(self, project: str, *, keep: Keep | None = None) -> list[JSONDict]:
        """Every metric group of `project` (a beta endpoint: `LD-API-Version: beta`), paged like the metrics."""
        return self._paged(self._groups_path(project), ROUTE_GROUPS, {"limit": PAGE_SIZE}, METRIC_GROUP,
                           "metric group", keep=keep, headers=BETA)

    def _paged(self, path: str, route: str, params: dict[str, Any], resource: Resource,
               noun: str, *, keep: Keep | None = None,
               headers: Mapping[str, str] | None = None, expected: int = 0) -> list[JSONDict]:
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
        params = {**params, "sort": "createdAt"}
        ahead = min(self.read_concurrency, math.ceil(expected / PAGE_SIZE)) if expected > PAGE_SIZE else 1
        offsets = [i * PAGE_SIZE for i in range(max(ahead, 1))]
        results = self._pages(path, route, params, offsets, headers, resource, noun, keep)
        first, total = results[0]
        step = len(first)
        found: dict[str, JSONDict] = {}
        self._keep(found, first)
        if not step or step >= total:
            return list(found.values())
        max_pages = math.ceil(total / step) + max(2, math.ceil(total / step / 10))
        pages = 1
        read_up_to = step
        if step == PAGE_SIZE and len(offsets) > 1:
            pages = len(offsets)
            read_up_to = offsets[-1] + step
            for offset, (items, page_total) in zip(offsets[1:], results[1:], strict=True):
                self._keep_page(found, items, path, offset, page_total, noun)
                total = max(total, page_total)
        while read_up_to < total:
            offsets = list(range(read_up_to, total, step))
            pages += len(offsets)
            if pages > max_pages:
                raise ApiError("GET", path, 200, f"LaunchDarkly kept sending pages: {pages} pages for a totalCount "
                               f"of {total}", hint="nothing was changed; try again later")
            results = self._pages(path, route, params, offsets, headers, resource, noun, keep)
            read_up_to = offsets[-1] + step
            for offset, (items, page_total) in zip(offsets, results, strict=True):
                self._keep_page(found, items, path, offset, page_total, noun)
                total = max(total, page_total)  # created during the read: read on to the new end
        return list(found.values())

    def _keep_page(self, found: dict[str, JSONDict], items: list[Any], path: str, offset: int, page_total: int,
                   noun: str) -> None:
        if items and all(str(item["key"]) in found for item in items):
            raise ApiError("GET", path, 200, f"LaunchDarkly sent the same {noun}s again at offset {offset} "
                           f"(totalCount {page_total})", hint="nothing was changed; try again later")
        self._keep(found, items)

    def _pages(self, path: str, route: str, params: dict[str, Any], offsets: list[int],
               headers: Mapping[str, str] | None, resource: Resource,
               noun: str, keep: Keep | None) -> list[tuple[list[Any], int]]:
        """The pages at `offsets`, read concurrently; in the order asked for. The first failure is raised once
        the pages in flight have finished."""
        if len(offsets) == 1 or self.read_concurrency == 1:
            return [self._page(path, route, params, offset, headers, resource, noun, keep) for offset in offsets]
        workers = min(self.read_concurrency, len(offsets))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="read") as pool:
            futures = [pool.submit(self._page, path, route, params, offset, headers, resource, noun, keep)
                       for offset in offsets]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _page(self, path: str, route: str, params: dict[str, Any], offset: int, headers: Mapping[str, str] | None,
              resource: Resource, noun: str,
              keep: Keep | None = None) -> tuple[list[Any], int]:
        """One page: its items (each checked; what is kept of them no deeper than MAX_DEPTH) and its
        `totalCount`."""
        with self._read_slots:
            reply = self._request("GET", path, route, params={**params, "offset": offset}, headers=headers)
        data = self._decode(reply, "GET", path, walk=False)
        items = data.get("items") if isinstance(data, dict) else None
        total = data.get("totalCount") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ApiError("GET", path, 200, f"the {noun} list has no `items` array")
        if not isinstance(total, int) or isinstance(total, bool) or not 0 <= total <= MAX_METRICS:
            raise ApiError("GET", path, 200, f"the {noun} list gives no usable totalCount ({_brief(total)})",
                           hint="LaunchDarkly's answer makes no sense; try again later")
        if len(items) > PAGE_SIZE:
            raise ApiError("GET", path, 200, f"a page holds {len(items)} {noun}s, more than the {PAGE_SIZE} asked for")
        shaped = resource.shaped
        kept = []
        for item in items:
            # What is not kept is never read: only what is kept is checked (the key is always kept).
            if keep is not None and isinstance(item, Mapping) and "key" in item:
                item = keep(item)
            wrong = problem(resource, item)
            if not wrong and kept_depth(item, shaped) > MAX_DEPTH - 3:  # page → items → item → field
                wrong = f"it is nested deeper than {MAX_DEPTH} levels"
            if wrong:
                raise ApiError("GET", path, 200, f"LaunchDarkly sent a malformed {noun}{_named(item)}: {wrong}",
                               hint="nothing was changed; report it to LaunchDarkly if it persists")
            kept.append(item)
        return kept, total

    @staticmethod
    def _keep(found: dict[str, JSONDict], items: list[Any]) -> None:
        for item in items:
            found.setdefault(item["key"], item)

    def get_metric(self, project: str, key: str, expand: Sequence[str] = ()) -> JSONDict:
        path = self._item_path(project, key)
        params = {"expand": ",".join(expand)} if expand else None
        rep = self._metric(self._request("GET", path, ROUTE_ITEM, params=params), "GET", path)
        if rep["key"] != key:
            raise ApiError("GET", path, 200, "LaunchDarkly answered with another metric than the one asked for")
        return rep

    def find_metric(self, project: str, key: str) -> JSONDict | None:
        """The metric, or None when LaunchDarkly answers 404 for it."""
        try:
            return self.get_metric(project, key)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create_metric(self, project: str, body: JSONDict) -> tuple[JSONDict, bool]:
        """POST a metric. Returns (representation, recovered).

        `recovered` is True when the POST failed ambiguously (timeout, reset, 5xx) and a GET showed the
        metric exists: the create had in fact happened. A POST is only sent again after a GET proved
        the metric absent, so a create is never duplicated.
        """
        return self._create(self._project_path(project), ROUTE_LIST, body, self._metric,
                            lambda key: self.find_metric(project, key))

    def patch_metric(self, project: str, key: str, operations: list[JSONDict], *,
                     comment: str | None = None) -> JSONDict:
        """Apply a JSON Patch; `comment` goes to LaunchDarkly's audit log when the API accepts it."""
        path = self._item_path(project, key)
        if comment and self._comments_accepted:
            try:
                reply = self._request("PATCH", path, ROUTE_ITEM, json_body={"comment": comment, "patch": operations})
                return self._metric(reply, "PATCH", path)
            except ApiError as exc:
                if exc.status != 400:
                    raise
                wrapped_error = exc
            try:
                reply = self._request("PATCH", path, ROUTE_ITEM, json_body=operations)
            except ApiError as exc:
                if exc.status == 400:
                    raise wrapped_error from None  # the patch itself is refused, wrapped or not
                raise
            self._comments_accepted = False
            self._note("LaunchDarkly refused the comment wrapper on PATCH; sending bare JSON Patch from now on")
            return self._metric(reply, "PATCH", path)
        return self._metric(self._request("PATCH", path, ROUTE_ITEM, json_body=operations), "PATCH", path)

    def experiment_units(self, project: str) -> list[str]:
        """The context kinds available for experiments in `project` (its experimentation settings).

        Older API clients list this endpoint as beta: when the pinned version gets 403, it is asked again with
        `LD-API-Version: beta` (docs/launchdarkly-contract.md, A12)."""
        path = f"/api/v2/projects/{quote(self._key(project), safe='')}/experimentation-settings"
        route = "/api/v2/projects/{projectKey}/experimentation-settings"
        try:
            reply = self._request("GET", path, route)
        except ApiError as exc:
            if exc.status != 403:
                raise
            reply = self._request("GET", path, route, headers={"LD-API-Version": "beta"})
        data = self._decode(reply, "GET", path)
        units = data.get("randomizationUnits") if isinstance(data, dict) else None
        if not isinstance(units, list):
            raise ApiError("GET", path, reply.status, "the experimentation settings have no `randomizationUnits` list")
        return [u["randomizationUnit"] for u in units
                if isinstance(u, dict) and isinstance(u.get("randomizationUnit"), str)]

    # --- metric group endpoints (beta) ------------------------------------------------------------

    def get_group(self, project: str, key: str, expand: Sequence[str] = ()) -> JSONDict:
        path = self._group_path(project, key)
        params = {"expand": ",".join(expand)} if expand else None
        rep = self._group(self._request("GET", path, ROUTE_GROUP, params=params, headers=BETA), "GET", path)
        if rep["key"] != key:
            raise ApiError("GET", path, 200, "LaunchDarkly answered with another metric group than the one asked for")
        return rep

    def find_group(self, project: str, key: str) -> JSONDict | None:
        try:
            return self.get_group(project, key)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create_group(self, project: str, body: JSONDict) -> tuple[JSONDict, bool]:
        """POST a metric group; never duplicated, as `create_metric`."""
        return self._create(self._groups_path(project), ROUTE_GROUPS, body, self._group,
                            lambda key: self.find_group(project, key), headers=BETA)

    def _create(self, path: str, route: str, body: JSONDict, decode: Callable[[_Reply, str, str], JSONDict],
                find: Callable[[str], JSONDict | None], *,
                headers: Mapping[str, str] | None = None) -> tuple[JSONDict, bool]:
        """POST `body`, at most 3 times, and only again after a read showed the item absent: an ambiguous
        failure (timeout, reset, 5xx) may have created it. Returns (representation, recovered)."""
        key = str(body.get("key"))
        last: ApiError | None = None
        for _ in range(3):
            try:
                reply = self._request("POST", path, route, json_body=body, retry_failures=False, headers=headers)
                return decode(reply, "POST", path), False
            except ApiError as exc:
                if not exc.ambiguous:
                    raise
                last = exc
                self._note(f"POST {path} failed ambiguously ({exc.api_message}); checking whether {key} exists")
                existing = find(key)
                if existing is not None:
                    return existing, True
        assert last is not None
        raise last

    def patch_group(self, project: str, key: str, operations: list[JSONDict], *,
                    comment: str | None = None) -> JSONDict:
        """A bare JSON Patch, as the spec declares it and LaunchDarkly's Terraform provider sends it (no comment
        wrapper is documented for metric groups)."""
        path = self._group_path(project, key)
        return self._group(self._request("PATCH", path, ROUTE_GROUP, json_body=operations, headers=BETA),
                           "PATCH", path)

    def delete_group(self, project: str, key: str) -> bool:
        """DELETE a metric group; False when it was already gone (404), as the Terraform provider treats it."""
        path = self._group_path(project, key)
        try:
            self._request("DELETE", path, ROUTE_GROUP, headers=BETA)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # --- what plans read besides metrics and groups -------------------------------------------------

    def experiment(self, project: str, environment: str, key: str) -> JSONDict:
        """One experiment (for its current iteration's status). Older API clients list experiments as beta:
        on 403 the read is asked again with `LD-API-Version: beta`, as for the experimentation settings."""
        path = (f"/api/v2/projects/{quote(self._key(project), safe='')}/environments/"
                f"{quote(self._key(environment), safe='')}/experiments/{quote(self._key(key), safe='')}")
        try:
            reply = self._request("GET", path, ROUTE_EXPERIMENT)
        except ApiError as exc:
            if exc.status != 403:
                raise
            reply = self._request("GET", path, ROUTE_EXPERIMENT, headers=BETA)
        data = self._decode(reply, "GET", path)
        if not isinstance(data, dict):
            raise ApiError("GET", path, reply.status, "the experiment is not an object")
        return data

    def my_member_id(self) -> tuple[str | None, str | None]:
        """(the ID of the member the access token belongs to, None) or (None, why there is none): LaunchDarkly
        requires a maintainer for a new metric group, and its Terraform provider defaults it to this member.
        Service tokens have no member."""
        path = "/api/v2/members/me"
        try:
            data = self._decode(self._request("GET", path, "/api/v2/members/{id}"), "GET", path)
        except ApiError as exc:
            if exc.status in (400, 403, 404):
                return None, f"LaunchDarkly names no member for the access token ({exc.status}: {exc.api_message})"
            raise
        member_id = data.get("_id") if isinstance(data, dict) else None
        if not isinstance(member_id, str) or not KEY.fullmatch(member_id):
            return None, "LaunchDarkly's answer for the access token's member has no usable `_id`"
        return member_id, None

    def probe(self, method: str, path: str, route: str, *, params: Mapping[str, Any] | None = None,
              json_body: Any = None, headers: Mapping[str, str] | None = None) -> Answer:
        """One request whose answer is returned whatever its status (for `doctor`, which observes how
        LaunchDarkly answers); limits, rate limits and retries work as for every other call. Never retries a
        write that failed ambiguously."""
        reply = self._request(method, path, route, params=params, json_body=json_body, headers=headers,
                              retry_failures=method == "GET", errors_as_answers=True)
        try:
            body = decode(reply.content) if reply.content else None
        except BadJson:
            body = None
        return Answer(reply.status, {k.lower(): v for k, v in reply.headers.items()}, body)

    # --- plumbing ----------------------------------------------------------------------------------

    @staticmethod
    def _key(key: str) -> str:
        """Keys go into URL paths: only those that follow LaunchDarkly's pattern (never `.` or `..`)."""
        if not KEY.fullmatch(key):
            raise ApiError("GET", "/api/v2/metrics", None, "a key does not follow LaunchDarkly's key pattern",
                           hint="keys use letters, numbers, '.', '_' and '-', and start with a letter or number")
        return key

    def _project_path(self, project: str) -> str:
        return f"/api/v2/metrics/{quote(self._key(project), safe='')}"

    def _item_path(self, project: str, key: str) -> str:
        return f"{self._project_path(project)}/{quote(self._key(key), safe='')}"

    def _groups_path(self, project: str) -> str:
        return f"/api/v2/projects/{quote(self._key(project), safe='')}/metric-groups"

    def _group_path(self, project: str, key: str) -> str:
        return f"{self._groups_path(project)}/{quote(self._key(key), safe='')}"

    def _note(self, message: str) -> None:
        if self._log:
            self._log(self._redact(message))

    def _redact(self, text: str) -> str:
        return text.replace(self._token, REDACTED) if self._token else text

    def _request(
        self,
        method: str,
        path: str,
        route: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        retry_failures: bool = True,
        headers: Mapping[str, str] | None = None,
        errors_as_answers: bool = False,
    ) -> _Reply:
        """Send one logical request: rate-limit pacing, retries, bounds, and error mapping.

        429 is retried for every method (the request was not processed). 5xx, timeouts and connection
        errors are retried only when `retry_failures` (never for POST, see create_metric).
        """
        route_id = f"{method} {route}"
        content = None if json_body is None else json.dumps(json_body, allow_nan=False).encode()
        headers = {**(headers or {}), **({"Content-Type": "application/json"} if content is not None else {})}
        attempt = 0
        rate_waited = 0.0
        while True:
            attempt += 1
            self._gate.acquire(route_id)
            started = self._clock()
            reply: _Reply | None = None
            failure: ApiError | None = None
            limit = self._retry.max_attempts
            try:
                reply = self._exchange(method, path, params, content, headers)
            except httpx.TimeoutException as exc:
                failure = self._transport_error(method, path, "timed out", exc)
            except httpx.ConnectError as exc:
                failure = self._connect_error(method, path, exc)
                limit = self._retry.connect_attempts
            except httpx.TransportError as exc:
                failure = self._transport_error(method, path, "connection failed", exc)
            except _TooLarge:
                failure = ApiError(method, path, None, f"LaunchDarkly's answer is larger than "
                                   f"{MAX_ANSWER_BYTES // (1024 * 1024)} MB; it was not read",
                                   ambiguous=method != "GET", hint="nothing was read from it; try again later")
            finally:
                self._gate.release(route_id, reply.headers if reply is not None else None)
            if failure is not None:
                if retry_failures and failure.retryable and attempt < min(limit, self._retry.max_attempts):
                    self._backoff(attempt, f"{method} {path} {failure.api_message}")
                    continue
                raise failure
            assert reply is not None
            elapsed = (self._clock() - started) * 1000
            self._note(f"{method} {reply.target} -> {reply.status} ({elapsed:.0f} ms)")
            status = reply.status
            if status == 429 and attempt < self._retry.max_attempts:
                wait = self._rate_limit_wait(reply)
                if rate_waited >= self._retry.max_rate_limit_total:
                    raise ApiError(method, path, 429, f"LaunchDarkly's rate limit: still refused after "
                                   f"{self._retry.max_rate_limit_total:.0f} s of waiting", code="rate_limited",
                                   hint="try again later, or lower --parallelism")
                rate_waited += wait
                self._gate.block_until(route_id, self._clock() + wait)
                self._note(f"rate limited on {route_id}; waiting {wait:.1f} s")
                self._gate.pause(wait, f"before retrying {method} {path}")
                continue
            if status >= 500 and retry_failures and attempt < self._retry.max_attempts:
                self._backoff(attempt, f"{method} {path} answered {status}")
                continue
            if 300 <= status < 400 and not errors_as_answers:
                location = urlsplit(reply.headers.get("location", "")).netloc or "elsewhere"
                raise ApiError(method, path, status, f"redirect to {location} not followed",
                               hint="check --base-url (or LD_BASE_URL): it should be LaunchDarkly's own address")
            if not 200 <= status < 300 and not errors_as_answers:
                raise self._error(method, path, reply)
            return reply

    def _exchange(self, method: str, path: str, params: Mapping[str, Any] | None, content: bytes | None,
                  headers: Mapping[str, str]) -> _Reply:
        """One HTTP exchange, all of it within the timeout and the body within MAX_ANSWER_BYTES."""
        deadline = time.monotonic() + self._timeout
        try:
            return self._exchange_within(method, path, params, content, headers, deadline)
        except httpx.TimeoutException as exc:
            if time.monotonic() < deadline - 0.05:
                raise  # a connect or read timeout of its own
            raise httpx.ReadTimeout(f"the whole request took longer than --timeout ({self._timeout:g} s)",
                                    request=exc.request) from None

    def _exchange_within(self, method: str, path: str, params: Mapping[str, Any] | None, content: bytes | None,
                         headers: Mapping[str, str], deadline: float) -> _Reply:
        with _request_deadline(self._timeout):
            request = self._http.build_request(method, path, params=params, content=content, headers=headers)
            response = self._http.send(request, stream=True)
            try:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():  # decoded: the cap also bounds a compressed answer
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES:
                        raise _TooLarge()
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("past the deadline", request=request)
                    chunks.append(chunk)
            finally:
                response.close()
            return _Reply(response.status_code, response.headers, b"".join(chunks), request.url.raw_path.decode())

    def _transport_error(self, method: str, path: str, what: str, exc: Exception) -> ApiError:
        detail = self._redact(str(exc)) or type(exc).__name__
        return ApiError(method, path, None, f"{what} ({detail})", retryable=True, ambiguous=method != "GET",
                        hint=f"check the network and the LaunchDarkly address {self.base_url}; running the "
                             "command again is safe")

    def _connect_error(self, method: str, path: str, exc: Exception) -> ApiError:
        """Nothing listening, or no such host: the request never reached a server (not ambiguous)."""
        text = str(exc).lower()
        if "name or service" in text or "nodename" in text or "resolution" in text or "getaddrinfo" in text:
            what = f"cannot find the host {urlsplit(self.base_url).hostname}"
            hint = "check --base-url / LD_BASE_URL for a typo, and the network's DNS (or HTTPS_PROXY)"
        else:
            what = f"nothing answers at {self.base_url}"
            hint = ("is the emulator running? (metrics-sync emulator --port PORT)"
                    if is_loopback(urlsplit(self.base_url).hostname or "") else
                    "check --base-url / LD_BASE_URL and the network (a firewall, HTTPS_PROXY)")
        return ApiError(method, path, None, f"{what} ({self._redact(str(exc)) or type(exc).__name__})",
                        retryable=True, ambiguous=False, hint=hint)

    def _backoff(self, attempt: int, why: str) -> None:
        delay = min(self._retry.max_delay, self._retry.base_delay * (2 ** (attempt - 1)))
        delay = self._rng.uniform(delay / 2, delay)  # jitter: parallel workers do not retry in lockstep
        self._note(f"{why}; retrying in {delay:.2f} s (attempt {attempt + 1} of {self._retry.max_attempts})")
        self._sleep(delay)

    def _rate_limit_wait(self, reply: _Reply) -> float:
        wait = retry_after({k.lower(): v for k, v in reply.headers.items()}, self._clock())
        if wait is None:
            wait = self._retry.base_delay * 4
        return min(wait, self._retry.max_rate_limit_wait) + self._rng.uniform(0.05, 0.25)

    def _decode(self, reply: _Reply, method: str, path: str, *, walk: bool = True) -> Any:
        try:
            return decode(reply.content, walk=walk)
        except BadJson as exc:
            raise ApiError(method, path, reply.status, f"LaunchDarkly's answer cannot be used: {exc}",
                           ambiguous=method != "GET", retryable=True) from None

    def _metric(self, reply: _Reply, method: str, path: str) -> JSONDict:
        data = self._decode(reply, method, path)
        wrong = problem(METRIC, data)
        if wrong:
            raise ApiError(method, path, reply.status, f"LaunchDarkly answered with a malformed metric{_named(data)}: "
                           f"{wrong}", ambiguous=method != "GET")
        assert isinstance(data, dict)
        return data

    def _group(self, reply: _Reply, method: str, path: str) -> JSONDict:
        data = self._decode(reply, method, path)
        wrong = problem(METRIC_GROUP, data)
        if wrong:
            raise ApiError(method, path, reply.status, f"LaunchDarkly answered with a malformed metric group"
                           f"{_named(data)}: {wrong}", ambiguous=method != "GET")
        assert isinstance(data, dict)
        return data

    def _error(self, method: str, path: str, reply: _Reply) -> ApiError:
        status = reply.status
        code: str | None = None
        try:
            body = decode(reply.content)
        except BadJson:
            text = reply.content[:2000].decode("utf-8", "replace").strip()
            message = text.splitlines()[0][:200] if text else f"HTTP {status}"
        else:
            message = str(body.get("message") or body)[:500] if isinstance(body, dict) else str(body)[:500]
            raw_code = body.get("code") if isinstance(body, dict) else None
            code = raw_code[:60] if isinstance(raw_code, str) else None
        message = self._redact(message)
        return ApiError(method, path, status, message, code=code, hint=_hint(status, method, path, code),
                        retryable=status >= 500 or status == 429, ambiguous=status >= 500 and method != "GET")


class _TooLarge(Exception):
    pass


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _named(item: Any) -> str:
    """` `key`` when the item has a usable key, else nothing (a malformed key is not repeated)."""
    key = item.get("key") if isinstance(item, Mapping) else None
    return f" `{key}`" if isinstance(key, str) and KEY.fullmatch(key) else ""


def _hint(status: int, method: str, path: str, code: str | None) -> str | None:
    parts = path.split("/")
    project = parts[4] if len(parts) > 4 else "?"
    # /api/v2/metrics/{project}[/{key}] or /api/v2/projects/{project}/metric-groups[/{key}] (or another route)
    group = len(parts) > 5 and parts[3] == "projects" and parts[5] == "metric-groups"
    noun = "metric group" if group else "metric"
    item = parts[6] if group and len(parts) > 6 else parts[5] if not group and parts[3] == "metrics" and \
        len(parts) > 5 else None
    if status == 401:
        return "the access token is invalid or expired, or its role cannot use the API; check LD_ACCESS_TOKEN"
    if status == 403:
        return ("the access token lacks permission for this; see "
                "https://github.com/metrics-sync/metrics-sync#access-tokens-and-roles for the role metrics-sync needs")
    if status == 404:
        if item is None and (group or parts[3] == "metrics"):
            return f"unknown project key `{project}`; check `project:` in the definitions or --project"
        if item is not None:
            return f"the {noun} `{item}` or the project `{project}` does not exist"
        return None
    if status == 409 and code == "optimistic_locking_error":
        return f"the {noun} changed since it was read; run plan again"
    if status == 409:
        return f"a {noun} with this key already exists; run plan again"
    if status == 429:
        return "LaunchDarkly's rate limit; try again later or lower --parallelism"
    if status >= 500:
        return "LaunchDarkly had a problem; running apply again is safe"
    return None
