"""LaunchDarkly REST API client for metrics; the only module that imports `httpx`.

What it guarantees (see docs/security.md and the LaunchDarkly API overview):
  * every call carries `Authorization: <token>` (raw, no "Bearer"), `User-Agent: metrics-sync/<version>`
    (LaunchDarkly's partner guide asks integrations for a custom User-Agent) and `LD-API-Version: 20240415`;
  * the token never appears in a log line, an exception, or this object's repr, and is never sent over
    plain http:// except to a loopback host (the local emulator);
  * rate limits are honoured: it waits for `Retry-After` / `X-Ratelimit-Reset` (epoch ms) with jitter,
    and slows down before the `X-Ratelimit-*-Remaining` budget runs out;
  * GET/PATCH/DELETE are retried on 5xx, timeouts and connection errors with capped exponential
    backoff; a POST is never retried blindly: after an ambiguous failure it GETs the key to learn
    whether the metric was created.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from metrics_sync import __version__
from metrics_sync.errors import REDACTED, TOKEN_VARIABLES, ApiError, ConfigError

API_VERSION = "20240415"
USER_AGENT = f"metrics-sync/{__version__}"
PAGE_SIZE = 50  # LaunchDarkly's maximum for the metrics list
DEFAULT_BASE_URL = "https://app.launchdarkly.com"

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
    return base_url.rstrip("/")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8  # per request, all causes together
    base_delay: float = 0.2
    max_delay: float = 10.0
    max_rate_limit_wait: float = 60.0


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
    waits for the window's reset (plus jitter, so parallel workers do not stampede).
    """

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None], rng: random.Random) -> None:
        self._clock, self._sleep, self._rng = clock, sleep, rng
        self._lock = threading.Lock()
        self._buckets: dict[str, _Budget] = {}

    def _bucket_names(self, route: str) -> tuple[str, ...]:
        return (route, "global", "token")

    def acquire(self, route: str) -> None:
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
                if wait <= 0:
                    for name in self._bucket_names(route):
                        self._buckets.setdefault(name, _Budget()).in_flight += 1
                    return
            self._sleep(wait + self._rng.uniform(0.01, 0.1))

    def release(self, route: str, headers: Mapping[str, str] | None) -> None:
        with self._lock:
            for name in self._bucket_names(route):
                b = self._buckets.setdefault(name, _Budget())
                b.in_flight = max(0, b.in_flight - 1)
            if headers is None:
                return
            self._observe(route, headers.get("x-ratelimit-route-remaining"), headers.get("x-ratelimit-reset"))
            self._observe("global", headers.get("x-ratelimit-global-remaining"), headers.get("x-ratelimit-reset"))
            self._observe("token", headers.get("x-ratelimit-auth-token-remaining"),
                          headers.get("x-ratelimit-auth-token-reset"))

    def block_until(self, route: str, reset_at: float) -> None:
        """After a 429: nobody sends on this route before `reset_at`."""
        with self._lock:
            b = self._buckets.setdefault(route, _Budget())
            b.remaining, b.reset_at = 0, max(b.reset_at, reset_at)

    def _observe(self, name: str, remaining: str | None, reset: str | None) -> None:
        if remaining is None or reset is None:
            return
        try:
            left, reset_at = int(remaining), int(reset) / 1000.0
        except ValueError:
            return
        b = self._buckets.setdefault(name, _Budget())
        if b.remaining is None or reset_at > b.reset_at + 0.5:
            b.remaining, b.reset_at = left, reset_at  # a new window
        elif abs(reset_at - b.reset_at) <= 0.5:
            b.remaining = min(b.remaining, left)  # answers arrive out of order: keep the lowest


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


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
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not token:
            raise ConfigError("no LaunchDarkly access token",
                              f"set {TOKEN_VARIABLES[0]} (or {TOKEN_VARIABLES[1]}) to an API access token")
        self.base_url = check_base_url(base_url)
        self._token = token
        self._retry = retry or RetryPolicy()
        self._log = log
        self._clock, self._sleep = clock, sleep
        self._rng = rng or random.Random()
        self._gate = RateGate(clock, sleep, self._rng)
        # LaunchDarkly documents a `{"comment", "patch"}` PATCH body, but the metric endpoint's schema
        # declares only the bare array: when a wrapped patch is refused, the bare one is tried and the
        # wrapper is not sent again (docs/launchdarkly-contract.md).
        self._comments_accepted = True
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=timeout,
            follow_redirects=False,  # a redirect could carry the token elsewhere
            headers={
                "Authorization": token,
                "User-Agent": USER_AGENT,
                "LD-API-Version": API_VERSION,
                "Accept": "application/json",
            },
        )

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

    # --- metric endpoints ---------------------------------------------------------------------

    def list_metrics(self, project: str, *, tags: Sequence[str] = (),
                     only: Collection[str] | None = None) -> list[JSONDict]:
        """Every metric of `project` (having all `tags`), read with paged list calls only (limit 50, offset)
        until totalCount. With `only`, each metric keeps just those fields (less memory on large projects)."""
        path = f"/api/v2/metrics/{quote(project, safe='')}"
        found: dict[str, JSONDict] = {}
        offset = 0
        params: dict[str, Any] = {"limit": PAGE_SIZE, "expand": "experimentCount"}
        if tags:
            params["filter"] = f"tags contains {json.dumps(list(tags))}"
        while True:
            params["offset"] = offset
            data = self._json(self._request("GET", path, "/api/v2/metrics/{projectKey}", params=dict(params)),
                              "GET", path)
            items = data.get("items") if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise ApiError("GET", path, 200, "the metric list has no `items` array")
            for item in items:
                if isinstance(item, dict) and isinstance(item.get("key"), str):
                    if only is not None:
                        item = {k: v for k, v in item.items() if k in only}
                    found.setdefault(item["key"], item)  # a metric created mid-listing can shift pages
            offset += len(items)
            total = data.get("totalCount")
            if not items or (isinstance(total, int) and offset >= total) or (
                    not isinstance(total, int) and len(items) < PAGE_SIZE):
                return list(found.values())

    def get_metric(self, project: str, key: str, expand: Sequence[str] = ()) -> JSONDict:
        path = self._item_path(project, key)
        params = {"expand": ",".join(expand)} if expand else None
        data = self._json(self._request("GET", path, "/api/v2/metrics/{projectKey}/{metricKey}", params=params),
                          "GET", path)
        return self._object(data, "GET", path)

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
        path = f"/api/v2/metrics/{quote(project, safe='')}"
        key = str(body.get("key"))
        last: ApiError | None = None
        for _ in range(3):
            try:
                response = self._request("POST", path, "/api/v2/metrics/{projectKey}", json_body=body,
                                         retry_failures=False)
                return self._object(self._json(response, "POST", path), "POST", path), False
            except ApiError as exc:
                if not exc.ambiguous:
                    raise
                last = exc
                self._note(f"POST {path} failed ambiguously ({exc.api_message}); checking whether {key} exists")
                existing = self.find_metric(project, key)
                if existing is not None:
                    return existing, True
        assert last is not None
        raise last

    def patch_metric(self, project: str, key: str, operations: list[JSONDict], *,
                     comment: str | None = None) -> JSONDict:
        """Apply a JSON Patch; `comment` goes to LaunchDarkly's audit log when the API accepts it."""
        path = self._item_path(project, key)
        route = "/api/v2/metrics/{projectKey}/{metricKey}"
        if comment and self._comments_accepted:
            try:
                response = self._request("PATCH", path, route, json_body={"comment": comment, "patch": operations})
                return self._object(self._json(response, "PATCH", path), "PATCH", path)
            except ApiError as exc:
                if exc.status != 400:
                    raise
                wrapped_error = exc
            try:
                response = self._request("PATCH", path, route, json_body=operations)
            except ApiError as exc:
                if exc.status == 400:
                    raise wrapped_error from None  # the patch itself is refused, wrapped or not
                raise
            self._comments_accepted = False
            self._note("LaunchDarkly refused the comment wrapper on PATCH; sending bare JSON Patch from now on")
            return self._object(self._json(response, "PATCH", path), "PATCH", path)
        response = self._request("PATCH", path, route, json_body=operations)
        return self._object(self._json(response, "PATCH", path), "PATCH", path)

    def experiment_units(self, project: str) -> list[str]:
        """The context kinds available for experiments in `project` (its experimentation settings).

        Older API clients list this endpoint as beta: when the pinned version gets 403, it is asked again with
        `LD-API-Version: beta` (docs/launchdarkly-contract.md)."""
        path = f"/api/v2/projects/{quote(project, safe='')}/experimentation-settings"
        route = "/api/v2/projects/{projectKey}/experimentation-settings"
        try:
            response = self._request("GET", path, route)
        except ApiError as exc:
            if exc.status != 403:
                raise
            response = self._request("GET", path, route, headers={"LD-API-Version": "beta"})
        data = self._object(self._json(response, "GET", path), "GET", path)
        units = data.get("randomizationUnits")
        if not isinstance(units, list):
            raise ApiError("GET", path, response.status_code, "the experimentation settings have no "
                           "`randomizationUnits` list")
        return [u["randomizationUnit"] for u in units
                if isinstance(u, dict) and isinstance(u.get("randomizationUnit"), str)]

    def probe(self, method: str, path: str, route: str, *, params: Mapping[str, Any] | None = None,
              json_body: Any = None, headers: Mapping[str, str] | None = None) -> Answer:
        """One request whose answer is returned whatever its status (for `doctor`, which observes how
        LaunchDarkly answers); rate limits and retries work as for every other call. Never retries a write
        that failed ambiguously."""
        response = self._request(method, path, route, params=params, json_body=json_body, headers=headers,
                                 retry_failures=method == "GET", errors_as_answers=True)
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()}, body)

    # --- plumbing ----------------------------------------------------------------------------------

    @staticmethod
    def _item_path(project: str, key: str) -> str:
        return f"/api/v2/metrics/{quote(project, safe='')}/{quote(key, safe='')}"

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
    ) -> httpx.Response:
        """Send one logical request: rate-limit pacing, retries, and error mapping.

        429 is retried for every method (the request was not processed). 5xx, timeouts and connection
        errors are retried only when `retry_failures` (never for POST, see create_metric).
        """
        route_id = f"{method} {route}"
        content = None if json_body is None else json.dumps(json_body).encode()
        headers = {**(headers or {}), **({"Content-Type": "application/json"} if content is not None else {})}
        attempt = 0
        while True:
            attempt += 1
            self._gate.acquire(route_id)
            started = self._clock()
            response_headers: Mapping[str, str] | None = None
            failure: ApiError | None = None
            try:
                response = self._http.request(method, path, params=params, content=content, headers=headers)
                response_headers = response.headers
            except httpx.TimeoutException as exc:
                failure = self._transport_error(method, path, "timed out", exc)
            except httpx.TransportError as exc:
                failure = self._transport_error(method, path, "connection failed", exc)
            finally:
                self._gate.release(route_id, response_headers)
            if failure is not None:
                if retry_failures and attempt < self._retry.max_attempts:
                    self._backoff(attempt, f"{method} {path} {failure.api_message}")
                    continue
                raise failure
            elapsed = (self._clock() - started) * 1000
            self._note(f"{method} {response.request.url.raw_path.decode()} -> {response.status_code} "
                       f"({elapsed:.0f} ms)")
            status = response.status_code
            if status == 429 and attempt < self._retry.max_attempts:
                wait = self._rate_limit_wait(response)
                self._gate.block_until(route_id, self._clock() + wait)
                self._note(f"rate limited on {route_id}; waiting {wait:.1f} s")
                self._sleep(wait)
                continue
            if status >= 500 and retry_failures and attempt < self._retry.max_attempts:
                self._backoff(attempt, f"{method} {path} answered {status}")
                continue
            if status >= 400 and not errors_as_answers:
                raise self._error(method, path, response)
            return response

    def _transport_error(self, method: str, path: str, what: str, exc: Exception) -> ApiError:
        detail = self._redact(str(exc)) or type(exc).__name__
        return ApiError(method, path, None, f"{what} ({detail})", retryable=True, ambiguous=method != "GET",
                        hint="check the network and --base-url; safe to run apply again")

    def _backoff(self, attempt: int, why: str) -> None:
        delay = min(self._retry.max_delay, self._retry.base_delay * (2 ** (attempt - 1)))
        delay = self._rng.uniform(delay / 2, delay)  # jitter: parallel workers do not retry in lockstep
        self._note(f"{why}; retrying in {delay:.2f} s (attempt {attempt + 1} of {self._retry.max_attempts})")
        self._sleep(delay)

    def _rate_limit_wait(self, response: httpx.Response) -> float:
        now = self._clock()
        wait: float | None = None
        retry_after = response.headers.get("retry-after")
        if retry_after:
            try:
                wait = float(retry_after)
            except ValueError:
                try:
                    wait = parsedate_to_datetime(retry_after).timestamp() - now
                except (TypeError, ValueError):
                    wait = None
        reset = response.headers.get("x-ratelimit-reset") or response.headers.get("x-ratelimit-auth-token-reset")
        if reset:
            with contextlib.suppress(ValueError):
                wait = max(wait or 0.0, int(reset) / 1000.0 - now)
        if wait is None:
            wait = self._retry.base_delay * 4
        wait = min(max(wait, 0.0), self._retry.max_rate_limit_wait)
        return wait + self._rng.uniform(0.05, 0.25)

    def _json(self, response: httpx.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ApiError(method, path, response.status_code,
                           "LaunchDarkly answered with a body that is not valid JSON",
                           ambiguous=method != "GET", retryable=True) from None

    @staticmethod
    def _object(data: Any, method: str, path: str) -> JSONDict:
        if not isinstance(data, dict):
            raise ApiError(method, path, 200, "expected a JSON object from LaunchDarkly")
        return data

    def _error(self, method: str, path: str, response: httpx.Response) -> ApiError:
        status = response.status_code
        code: str | None = None
        try:
            body = response.json()
            message = str(body.get("message") or body) if isinstance(body, dict) else str(body)
            code = body.get("code") if isinstance(body, dict) else None
        except ValueError:
            message = response.text.strip().splitlines()[0][:200] if response.text.strip() else response.reason_phrase
        message = self._redact(message)
        return ApiError(method, path, status, message, code=code, hint=_hint(status, method, path, code),
                        retryable=status >= 500 or status == 429, ambiguous=status >= 500 and method != "GET")


def _hint(status: int, method: str, path: str, code: str | None) -> str | None:
    parts = path.split("/")
    project = parts[4] if len(parts) > 4 else "?"
    if status == 401:
        return "the access token is invalid or expired, or its role cannot use the API; check LD_ACCESS_TOKEN"
    if status == 403:
        return "the access token lacks permission for this; see docs/security.md for the role metrics-sync needs"
    if status == 404:
        if len(parts) == 5:
            return f"unknown project key `{project}`; check `project:` in the definitions or --project"
        return f"the metric `{parts[5]}` or the project `{project}` does not exist"
    if status == 409 and code == "optimistic_locking_error":
        return "the metric changed since it was read; run plan again"
    if status == 409:
        return "a metric with this key already exists; run plan again"
    if status == 429:
        return "LaunchDarkly's rate limit; try again later or lower --parallelism"
    if status >= 500:
        return "LaunchDarkly had a problem; running apply again is safe"
    return None
