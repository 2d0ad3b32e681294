"""One logical request to LaunchDarkly: headers, base-URL policy, rate-limit pacing, retries, bounds, and errors.

What it guarantees (see docs/security.md and docs/launchdarkly-contract.md):
  * every call carries `Authorization: <token>` (raw, no "Bearer"), `User-Agent: metrics-sync/<version>`
    (LaunchDarkly's partner guide asks integrations for a custom User-Agent) and `LD-API-Version: 20240415`;
  * the token never appears in a log line, an exception, or a repr, and never travels over plain http://
    except straight to a loopback host (the local emulator): no proxy hop, no redirect;
  * every answer is bounded: `timeout` bounds each whole request (transport.py), the body is read up to
    `MAX_ANSWER_BYTES`, JSON is parsed strictly (wire.py), and only 2xx answers are data;
  * every rate-limit wait is capped and long ones are announced (rate_limits.py);
  * GET/PATCH/DELETE are retried on 5xx, timeouts and connection errors with capped, jittered exponential
    backoff (a request that took its whole --timeout twice is not tried again); a POST is never retried blindly
    (the client reads the key after an ambiguous failure);
  * all the waits of a run together (backoffs, rate-limit pauses) stay within --max-wait (`max_wait_total`);
  * a cancelled run (core/cancel.py) starts and retries nothing: every wait ends at once and raises
    `Cancelled`, and a request in flight gets at most `GRACE` seconds more.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from metrics_sync import __version__
from metrics_sync.core.cancel import CancelSignal
from metrics_sync.core.errors import TOKEN_VARIABLES, ApiError, ConfigError, redact_token, token_problem
from metrics_sync.core.fields import Resource
from metrics_sync.launchdarkly.bodies import ACCEPT_ENCODING, BadEncoding, PastDeadline, TooLarge, read_body
from metrics_sync.launchdarkly.rate_limits import RateGate, retry_after
from metrics_sync.launchdarkly.transport import DeadlineTransport, network_settings
from metrics_sync.launchdarkly.wire import BadJson, decode, named, problem

API_VERSION = "20240415"
USER_AGENT = f"metrics-sync/{__version__}"
DEFAULT_BASE_URL = "https://app.launchdarkly.com"
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a page of 50 metrics is well under 1 MB
DEFAULT_MAX_WAIT = 300.0  # seconds of waiting (rate limits, backoffs) in a whole run; --max-wait
MAX_ERROR_BYTES = 1024 * 1024  # of an error answer, only its start is read: LaunchDarkly's are under 1 KB
Log = Callable[[str], None]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str) -> str:
    """Normalize and vet a base URL; plain http is allowed only for loopback (the emulator). Requests are sent to
    the base URL followed by their path (`Session._request`), so it may hold nothing but a scheme, a host and a
    port: no user or password (the token would go beside them), no path, query or fragment."""
    shown = re.sub(r"//[^/?#]*@", "//…@", base_url)  # (a user name or password is not repeated)
    not_url = ConfigError(f"base URL {shown!r} is not an http(s) URL",
                          "use e.g. https://app.launchdarkly.com or http://127.0.0.1:8765 for the emulator")
    try:
        parts = urlsplit(base_url)
        port = parts.port  # (a port that is not a number from 0 to 65535 raises)
        if not httpx.URL(base_url).host:  # what httpx cannot send to is refused here, not at the first request
            raise ValueError("no host")
        if parts.hostname and not parts.hostname.isascii():
            parts.hostname.encode("idna")  # (an ASCII name is checked when connecting: transport.py)
    except (ValueError, httpx.InvalidURL):  # (UnicodeError is a ValueError)
        raise not_url from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise not_url
    root = f"{parts.scheme}://{parts.hostname if ':' not in parts.hostname else f'[{parts.hostname}]'}" + \
        (f":{port}" if port is not None else "")
    if parts.username is not None or parts.password is not None:
        raise ConfigError("the base URL carries a user name or password (not shown); metrics-sync sends the access "
                          "token", f"use {root}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"refusing to send the access token over plain http to {parts.hostname}",
                          "use https://, or http:// only for a local emulator on 127.0.0.1")
    if parts.path.rstrip("/") or parts.query or parts.fragment or base_url.rstrip("/").endswith(("?", "#")):
        extra = base_url.rstrip("/").partition(parts.netloc)[2] or parts.path
        raise ConfigError(f"the base URL {base_url} carries a path ({extra}); metrics-sync adds /api/v2/... itself",
                          f"use {root}")
    return base_url.rstrip("/")


@dataclass(frozen=True)
class RetryPolicy:
    # Per request, all causes together (5xx answers, timeouts, connections reset mid-way): a retried guarded
    # PATCH whose first attempt landed is then seen as done in the same run, so every change is accounted.
    max_attempts: int = 8
    connect_attempts: int = 2  # nothing listening, or no such host: say so in seconds, not minutes
    # A request that ran into its whole --timeout is tried at most this often: a hung or dripping server stays
    # so, and each such try costs the whole --timeout.
    timeout_attempts: int = 2
    base_delay: float = 0.2
    max_delay: float = 10.0
    max_rate_limit_wait: float = 60.0  # one wait
    max_rate_limit_total: float = 180.0  # all the waits of one request
    # All the waits of the session together (rate-limit pauses and backoffs, whatever the request): --max-wait.
    max_wait_total: float = DEFAULT_MAX_WAIT


class _WholeRequestTimeout(httpx.ReadTimeout):
    """A request that ran into its deadline: it took the whole --timeout."""


class _WaitBudgetSpent(Exception):
    """A wait would pass the session's budget for waiting (`RetryPolicy.max_wait_total`)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


@dataclass(frozen=True)
class Reply:
    status: int
    headers: httpx.Headers
    content: bytes
    method: str
    path: str
    target: str  # the path and query asked for, for the --verbose log
    seconds: float = 0.0  # from sending it to its whole body read (0: not known)


@dataclass(frozen=True)
class Target:
    """What a request is about (a resource's list, or one of its items): the hints of its errors name it."""

    noun: str  # the resource's name, e.g. "metric group"
    project: str
    key: str | None = None


class Session:
    """Sends requests to one LaunchDarkly instance. Thread-safe: several workers share one session."""

    def __init__(self, base_url: str, token: str, *, transport: httpx.BaseTransport | None = None,
                 timeout: float = 30.0, retry: RetryPolicy | None = None, log: Log | None = None,
                 notice: Log | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
                 environ: Mapping[str, str] | None = None, cancel: CancelSignal | None = None) -> None:
        if not token:
            raise ConfigError("no LaunchDarkly access token",
                              f"set {TOKEN_VARIABLES[0]} (or {TOKEN_VARIABLES[1]}) to an API access token")
        if (wrong := token_problem(token)) is not None:  # never sent: the value is not shown
            raise ConfigError(f"the access token {wrong}", "set it to the API access token exactly, nothing around it")
        self.base_url = check_base_url(base_url)
        self.cancel = cancel or CancelSignal()
        self._token, self._timeout, self._log = token, timeout, log
        self._retry = retry or RetryPolicy()
        # time.sleep cannot be woken: real waits are on the cancel signal; an injected sleep (a test's fake
        # clock) is used as given, with the signal checked before and after.
        self._clock, self._sleep = clock, None if sleep is time.sleep else sleep
        # What times each exchange (`Reply.seconds`): the monotonic clock (the wall clock may step while a request
        # is out, and a page timed too fast narrows the read window); a test's own clock stands in for it.
        self._timer: Callable[[], float] = time.monotonic if clock is time.time else clock
        self._rng = rng or random.Random()
        self._waited, self._waited_lock = 0.0, threading.Lock()
        self.calls, self._calls_lock = 0, threading.Lock()  # HTTP exchanges sent, retries included (health says it)
        self._gate = RateGate(clock, self._sleep_for, self._rng, max_wait=self._retry.max_rate_limit_wait,
                              announce=notice, reserve=self._reserve)
        # The environment is read here, from the environment given (never httpx's own reading of os.environ), so
        # what applies is explicit. A transport passed in (the in-process emulator, a fault injector) is used as
        # given: it has no network to bound.
        self.network = network_settings(self.base_url, environ or {})
        self.transport = transport or DeadlineTransport(self.network, timeout=timeout, cancel=self.cancel)
        # Requests go straight to the transport, built here (`_request`): httpx.Client's layers (its cookie jar,
        # auth and redirect handling, a second and third parse of each URL) did nothing this session needs, and
        # cost 0.2 ms of every request (a tenth of listing 100,000 metrics). Nothing is followed or stored.
        self._headers = httpx.Headers({"Connection": "keep-alive", "Authorization": token, "User-Agent": USER_AGENT,
                                       "LD-API-Version": API_VERSION, "Accept": "application/json",
                                       "Accept-Encoding": ACCEPT_ENCODING})
        self._timeouts = httpx.Timeout(timeout).as_dict()
        self._closed = False

    def close(self) -> None:
        self._closed = True
        self.transport.close()

    def _request(self, method: str, path: str, params: Mapping[str, Any] | None, content: bytes | None,
                 headers: Mapping[str, str]) -> httpx.Request:
        """The request as httpx.Client would build it from this session's defaults: the base URL joined with
        `path` (the base URL has no path of its own: `check_base_url`), the query encoded by httpx, and the
        session's headers with `headers` replacing those of the same name (a resource's `LD-API-Version`)."""
        if self._closed:
            raise RuntimeError("the LaunchDarkly session is closed")
        if not path.startswith("/") or "?" in path or "#" in path:  # (joined as text: it must not move the host)
            raise ValueError(f"a request path must start with / and hold no query: {path[:100]!r}")
        merged = self._headers
        if headers:
            merged = httpx.Headers(self._headers)
            merged.update(headers)
        query = f"?{httpx.QueryParams(params)}" if params else ""
        return httpx.Request(method, f"{self.base_url}{path}{query}", content=content, headers=merged,
                             extensions={"timeout": self._timeouts})

    def note(self, message: str) -> None:
        """A --verbose log line, the token redacted."""
        if self._log:
            self._log(self.redact(message))

    def redact(self, text: str) -> str:
        return redact_token(text, self._token)

    def wait(self, seconds: float) -> None:
        """Every backoff wait (and, through the gate, every rate-limit wait): it ends at once, raising
        `Cancelled`, when the run is cancelled. All the waits of the session together stay within
        `max_wait_total` (see `_reserve`)."""
        self._reserve(seconds)
        self._sleep_for(seconds)

    def _reserve(self, seconds: float) -> None:
        """Count a wait against the session's budget for waiting, before it is announced or begun: a wait that
        would pass the budget is refused (the request fails, saying so), so neither rate-limit headers nor
        failures can stretch a run without bound."""
        self.cancel.check()
        with self._waited_lock:
            if self._waited + seconds > self._retry.max_wait_total:
                raise _WaitBudgetSpent(seconds)
            self._waited += seconds

    def _sleep_for(self, seconds: float) -> None:
        self.cancel.check()
        if self._sleep is None:
            self.cancel.wait(seconds)
        else:
            self._sleep(seconds)
        self.cancel.check()

    def request(self, method: str, path: str, route: str, *, params: Mapping[str, Any] | None = None,
                json_body: Any = None, retry_failures: bool = True, headers: Mapping[str, str] | None = None,
                errors_as_answers: bool = False, target: Target | None = None,
                observe: Callable[[int, httpx.Headers], None] | None = None) -> Reply:
        """Send one logical request: rate-limit pacing, retries, bounds, and error mapping.

        429 is retried for every method (the request was not processed). 5xx, timeouts and connection
        errors are retried only when `retry_failures` (never for POST). `route` (the path's template) names
        the request's rate-limit bucket. `observe` sees the status and headers of every answer, the retried
        ones included (the pager's window widens and narrows by them: rate_limits.ReadWindow).
        """
        route_id = f"{method} {route}"
        content = None if json_body is None else json.dumps(json_body, allow_nan=False).encode()
        headers = {**(headers or {}), **({"Content-Type": "application/json"} if content is not None else {})}
        attempt, timeouts, rate_waited, limits = 0, 0, 0.0, self._retry
        while True:
            attempt += 1
            self.cancel.check()
            try:
                self._gate.acquire(route_id)
            except _WaitBudgetSpent as spent:
                raise self._spent(method, path, spent, "before sending it") from None
            started = self._clock()
            reply: Reply | None = None
            with self._calls_lock:
                self.calls += 1
            try:
                reply = self._exchange(method, path, params, content, headers)
            except httpx.TransportError as exc:
                failure = self._failure(method, path, exc)
                limit = limits.connect_attempts if isinstance(exc, httpx.ConnectError) else limits.max_attempts
                timeouts += isinstance(exc, _WholeRequestTimeout)
                hung = timeouts >= limits.timeout_attempts  # it took the whole --timeout again: it stays so
                if retry_failures and failure.retryable and not hung and attempt < min(limit, limits.max_attempts):
                    self._before_retry(failure, attempt, f"{method} {path} {failure.api_message}")
                    continue
                raise failure from None
            finally:
                self._gate.release(route_id, reply.headers if reply is not None else None)
            self.note(f"{method} {reply.target} -> {reply.status} ({(self._clock() - started) * 1000:.0f} ms)")
            status = reply.status
            if observe is not None:
                observe(status, reply.headers)
            if status == 429 and attempt < limits.max_attempts:
                wait = retry_after({k.lower(): v for k, v in reply.headers.items()}, self._clock())
                wait = min(limits.base_delay * 4 if wait is None else wait, limits.max_rate_limit_wait)
                wait += self._rng.uniform(0.05, 0.25)
                if rate_waited >= limits.max_rate_limit_total:
                    raise ApiError(method, path, 429, f"LaunchDarkly's rate limit: still refused after "
                                   f"{limits.max_rate_limit_total:.0f} s of waiting", code="rate_limited",
                                   hint="try again later, or lower --parallelism")
                rate_waited += wait
                self._gate.block_until(route_id, self._clock() + wait)
                self.note(f"rate limited on {route_id}; waiting {wait:.1f} s")
                try:
                    self._gate.pause(wait, f"before retrying {method} {path}")
                except _WaitBudgetSpent as spent:
                    raise self._spent(method, path, spent, "after LaunchDarkly's rate limit refused it") from None
                continue
            if status >= 500 and retry_failures and attempt < limits.max_attempts:
                self._before_retry(self._error(reply, target), attempt, f"{method} {path} answered {status}")
                continue
            if 300 <= status < 400 and not errors_as_answers:
                location = _netloc(reply.headers.get("location", "")) or "elsewhere"
                raise ApiError(method, path, status, f"redirect to {location} not followed",
                               hint="check --base-url (or LD_BASE_URL): it should be LaunchDarkly's own address")
            if not 200 <= status < 300 and not errors_as_answers:
                raise self._error(reply, target)
            return reply

    def decode(self, reply: Reply, *, walk: bool = True, resource: Resource | None = None) -> Any:
        """An answer's JSON (wire.py); with `resource`, checked to be one of its representations."""
        try:
            data = decode(reply.content, walk=walk)
        except BadJson as exc:
            raise ApiError(reply.method, reply.path, reply.status, f"LaunchDarkly's answer cannot be used: {exc}",
                           ambiguous=reply.method != "GET", retryable=True) from None
        if resource is not None and (wrong := problem(resource, data)):
            raise ApiError(reply.method, reply.path, reply.status, f"LaunchDarkly answered with a malformed "
                           f"{resource.name}{named(data)}: {wrong}", ambiguous=reply.method != "GET")
        return data

    # --- plumbing ----------------------------------------------------------------------------------

    def _exchange(self, method: str, path: str, params: Mapping[str, Any] | None, content: bytes | None,
                  headers: Mapping[str, str]) -> Reply:
        """One HTTP exchange, the body read and decoded by bodies.py: up to MAX_ANSWER_BYTES decoded (the cap
        also bounds a compressed answer, while it is inflated); an error answer's start only, so its status is
        kept whatever its size. The transport ends it at its deadline; a timeout at the deadline says so."""
        sent = self._timer()
        deadline = time.monotonic() + self._timeout
        try:
            request = self._request(method, path, params, content, headers)
            response = self.transport.handle_request(request)
            error = not 200 <= response.status_code < 300
            try:
                # An in-process transport (the emulator's, a test's) may hand over a body already read and decoded.
                read = response.is_stream_consumed
                body = read_body([response.content] if read else response.iter_raw(),
                                 "" if read else response.headers.get("content-encoding", ""),
                                 limit=MAX_ERROR_BYTES if error else MAX_ANSWER_BYTES, deadline=deadline,
                                 truncate=error)
            except TooLarge:
                raise ApiError(method, path, None, f"LaunchDarkly's answer is larger than "
                               f"{MAX_ANSWER_BYTES // (1024 * 1024)} MB; it was not read",
                               ambiguous=method != "GET", hint="nothing was read from it; try again later") from None
            except BadEncoding as exc:
                raise ApiError(method, path, response.status_code, f"LaunchDarkly's answer cannot be used: {exc}",
                               ambiguous=method != "GET") from None
            except PastDeadline:  # (inflating, not waiting: the transport's deadline does not see it)
                raise httpx.ReadTimeout("past the deadline", request=request) from None
            finally:
                response.close()
        except httpx.TimeoutException:
            if time.monotonic() < deadline - 0.05:
                if not self.cancel.is_set():
                    raise  # a connect or read timeout of its own
                why = "the run was interrupted, and the request was cut off after its grace period"
            else:
                raise _WholeRequestTimeout(f"the whole request took longer than --timeout ({self._timeout:g} s)",
                                           request=request) from None
            raise httpx.ReadTimeout(why, request=request) from None
        return Reply(response.status_code, response.headers, body, method, path, request.url.raw_path.decode(),
                     self._timer() - sent)

    def _before_retry(self, failure: ApiError, attempt: int, why: str) -> None:
        """Wait before attempt `attempt + 1`. Once the run is cancelled nothing is retried: a failure that may
        have changed something (an ambiguous write) is raised as it is, for the caller to account; otherwise
        the wait raises `Cancelled`."""
        if failure.ambiguous and self.cancel.is_set():
            raise failure
        delay = min(self._retry.max_delay, self._retry.base_delay * (2 ** (attempt - 1)))
        delay = self._rng.uniform(delay / 2, delay)  # jitter: parallel workers do not retry in lockstep
        self.note(f"{why}; retrying in {delay:.2f} s (attempt {attempt + 1} of {self._retry.max_attempts})")
        try:
            self.wait(delay)
        except _WaitBudgetSpent:  # the failure as it is (an ambiguous write stays ambiguous), saying why it stands
            raise ApiError(failure.method, failure.path, failure.status, f"{failure.api_message}; not retried: "
                           f"--max-wait's {self._retry.max_wait_total:g} s of waiting in all are spent",
                           code=failure.code, hint=failure.hint, ambiguous=failure.ambiguous) from None

    def _spent(self, method: str, path: str, spent: _WaitBudgetSpent, when: str) -> ApiError:
        """The error that ends a request whose next wait would pass --max-wait (nothing it sent was carried out)."""
        return ApiError(method, path, None, f"given up: waiting {spent.seconds:.0f} s more {when} would pass "
                        f"--max-wait ({self._retry.max_wait_total:g} s of waiting in all, for rate limits and "
                        "retries)", hint="LaunchDarkly is limiting or failing these requests; try again later, or "
                        "raise --max-wait")

    def _failure(self, method: str, path: str, exc: httpx.TransportError) -> ApiError:
        """A request that got no answer. One that never reached a server (nothing listening, no such host) is not
        ambiguous; a timeout or a connection lost mid-way may have been carried out."""
        detail = f"({self.redact(str(exc)) or type(exc).__name__})"
        host = urlsplit(self.base_url).hostname or ""
        if not isinstance(exc, httpx.ConnectError):
            what = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
            return ApiError(method, path, None, f"{what} {detail}", retryable=True, ambiguous=method != "GET",
                            hint=f"check the network and the LaunchDarkly address {self.base_url}; running the "
                                 "command again is safe")
        if _certificate_failure(exc):  # the same certificate on every attempt: not retried
            return ApiError(method, path, None, f"the TLS certificate of {host} could not be verified {detail}",
                            hint="if a proxy or a private CA signs it, point SSL_CERT_FILE at that CA's PEM bundle")
        if any(word in str(exc).lower() for word in ("name or service", "nodename", "resolution", "getaddrinfo")):
            return ApiError(method, path, None, f"cannot find the host {host} {detail}", retryable=True,
                            hint="check --base-url / LD_BASE_URL for a typo, and the network's DNS (or HTTPS_PROXY)")
        return ApiError(method, path, None, f"nothing answers at {self.base_url} {detail}", retryable=True,
                        hint="is the emulator running? (metrics-sync emulator --port PORT)" if is_loopback(host)
                        else "check --base-url / LD_BASE_URL and the network (a firewall, HTTPS_PROXY)")

    def _error(self, reply: Reply, target: Target | None) -> ApiError:
        status, code = reply.status, None
        try:
            body = decode(reply.content)
        except BadJson:
            text = reply.content[:2000].decode("utf-8", "replace").strip()
            message = text.splitlines()[0][:200] if text else f"HTTP {status}"
        else:
            message = str(body.get("message") or body)[:500] if isinstance(body, dict) else str(body)[:500]
            raw_code = body.get("code") if isinstance(body, dict) else None
            code = raw_code[:60] if isinstance(raw_code, str) else None
        return ApiError(reply.method, reply.path, status, self.redact(message), code=code,
                        hint=_hint(status, code, target), retryable=status >= 500 or status == 429,
                        ambiguous=status >= 500 and reply.method != "GET")


def _hint(status: int, code: str | None, target: Target | None) -> str | None:
    if status == 401:
        return "the access token is invalid or expired, or its role cannot use the API; check LD_ACCESS_TOKEN"
    if status == 403:
        return ("the access token lacks permission for this; see "
                "https://github.com/metrics-sync/metrics-sync#access-tokens-and-roles for the role metrics-sync needs")
    if status == 429:
        return "LaunchDarkly's rate limit; try again later or lower --parallelism"
    if status >= 500:
        return "LaunchDarkly had a problem; running apply again is safe"
    if target is None:
        return None
    if status == 404 and target.key is None:
        return f"unknown project key `{target.project}`; check `project:` in the definitions or --project"
    if status == 404:
        return f"the {target.noun} `{target.key}` or the project `{target.project}` does not exist"
    if status == 409 and code == "optimistic_locking_error":
        return f"the {target.noun} changed since it was read; run plan again"
    if status == 409:
        return f"a {target.noun} with this key already exists; run plan again"
    return None


def _netloc(url: str) -> str:
    """The host part of a URL a server sent (a redirect's Location), or nothing when it is not a URL."""
    try:
        return urlsplit(url).netloc
    except ValueError:
        return ""


def _certificate_failure(exc: BaseException) -> bool:
    """Whether a connection failed because the server's certificate could not be verified: the ssl module's
    error among the causes (httpcore's and httpx's errors wrap it), or, where a cause was not kept, its words."""
    seen: BaseException | None = exc
    for _ in range(10):  # a chain of wrapped errors is short; never follow a cycle
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "certificate verify failed" in str(exc).lower()
