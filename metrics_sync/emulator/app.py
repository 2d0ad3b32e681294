"""The emulator's WSGI application: LaunchDarkly's metric endpoints, auth, errors and fault knobs.

Endpoints (LaunchDarkly REST API v2):
    GET    /api/v2/metrics/{projectKey}              list (limit ≤ 50, offset, sort, filter, expand)
    POST   /api/v2/metrics/{projectKey}              create → 201
    GET    /api/v2/metrics/{projectKey}/{metricKey}  get (expand)
    PATCH  /api/v2/metrics/{projectKey}/{metricKey}  RFC 6902 JSON Patch → 200
    DELETE /api/v2/metrics/{projectKey}/{metricKey}  → 204
and, outside LaunchDarkly's namespace, GET /_emulator/stats (request counts, for tests and benchmarks).

Errors use LaunchDarkly's body `{"code", "message", "id"}` and status codes. Stdlib only.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from metrics_sync.emulator.filters import FilterError, matches, parse_filter
from metrics_sync.emulator.jsonpatch import PatchError, PatchTestFailed
from metrics_sync.emulator.rules import RuleError
from metrics_sync.emulator.store import TOKEN_MEMBER_ID, Conflict, NotFound, Store

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

COLLECTION = "/api/v2/metrics/{projectKey}"
ITEM = "/api/v2/metrics/{projectKey}/{metricKey}"
_ROUTES = [
    (re.compile(r"^/api/v2/metrics/(?P<project>[^/]+)/?$"), COLLECTION, ("GET", "POST")),
    (re.compile(r"^/api/v2/metrics/(?P<project>[^/]+)/(?P<key>[^/]+)/?$"), ITEM, ("GET", "PATCH", "DELETE")),
]
RATE_WINDOW_SECONDS = 10.0
MAX_LIMIT = 50
DEFAULT_LIMIT = 20

_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
            403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable"}


class ApiProblem(Exception):
    def __init__(self, status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or []


# A fault the HTTP layer must carry out (there is no WSGI way to reset a connection). The loopback server
# acts on it and never sends the header; an in-process client can map it to its own transport errors.
FAULT_HEADER = "X-Emulator-Fault"


@dataclass
class Faults:
    """Knobs for realism and fault testing. Rates are shares of requests (0..1).

    For writes, half of the error, reset and timeout faults strike *after* the change was made: the client
    cannot know whether it happened, the case a careful client must handle.
    """

    latency_ms: float = 0.0
    fail_rate: float = 0.0  # answered with a random 500/502/503
    rate_limit: int | None = None  # requests per 10-second window per route
    reset_rate: float = 0.0  # the connection is reset without an answer
    timeout_rate: float = 0.0  # no answer for `hang_seconds` (the client times out)
    hang_seconds: float = 30.0
    throttle_rate: float = 0.0  # starts a burst of 429s lasting `burst_seconds`
    throttle_header: str = "retry-after"  # how bursts say when to retry: retry-after | reset
    burst_seconds: float = 1.0
    slow_rate: float = 0.0  # answered after an extra `slow_ms`
    slow_ms: float = 1000.0


@dataclass
class _Window:
    start: float
    used: int = 0


@dataclass
class Stats:
    total: int = 0  # every API request, whatever its route or outcome
    requests: Counter[str] = field(default_factory=Counter)  # "METHOD /route/template" -> count
    statuses: Counter[int] = field(default_factory=Counter)  # what clients were told
    route_statuses: Counter[str] = field(default_factory=Counter)  # "METHOD /route/template STATUS" -> count
    faults: Counter[str] = field(default_factory=Counter)  # injected faults by kind
    writes: Counter[str] = field(default_factory=Counter)  # changes really made: created/patched/deleted

    def as_json(self) -> dict[str, Any]:
        return {"requests": self.total, "byRoute": dict(sorted(self.requests.items())),
                "byStatus": {str(k): v for k, v in sorted(self.statuses.items())},
                "byRouteAndStatus": dict(sorted(self.route_statuses.items())),
                "faults": dict(sorted(self.faults.items())), "writes": dict(sorted(self.writes.items()))}


class EmulatorApp:
    """A WSGI callable. Construct with a Store; pass `rng`, `clock` and `sleep` for deterministic tests."""

    def __init__(
        self,
        store: Store,
        *,
        token: str = "emulator-token",
        reader_token: str | None = None,
        faults: Faults | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.token = token
        self.reader_token = reader_token
        self.faults = faults or Faults()
        self.rng = rng or random.Random()
        self.clock = clock
        self.sleep = sleep
        self.log = log
        self.stats = Stats()
        self._windows: dict[str, _Window] = {}
        self._burst_until = 0.0
        self._lock = threading.Lock()

    # --- WSGI entry ----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "") or "/"
        status, body, headers = self._handle(method, path, environ)
        if self.log:
            self.log(f"{method} {path} {status}")
        payload = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        content_type = "text/plain; charset=utf-8" if isinstance(body, bytes) else "application/json"
        all_headers = list(headers)
        if status != 204:
            all_headers.append(("Content-Type", content_type))
        all_headers.append(("Content-Length", str(len(payload))))
        start_response(f"{status} {_REASONS.get(status, 'Unknown')}", all_headers)
        return [payload]

    def _handle(self, method: str, path: str, environ: dict[str, Any]) -> tuple[int, Any, list[tuple[str, str]]]:
        if self.faults.latency_ms:
            self.sleep(self.faults.latency_ms / 1000.0)
        headers: list[tuple[str, str]] = []
        route_id = f"{method} (no route)"
        try:
            if path == "/_emulator/stats":
                self._authorize(environ, method)
                with self._lock:
                    return 200, self.stats.as_json(), headers
            with self._lock:
                self.stats.total += 1
            match = self._route(method, path)
            route, params = match
            route_id = f"{method} {route}"
            with self._lock:
                self.stats.requests[route_id] += 1
            self._authorize(environ, method)
            headers.extend(self._rate_limit(route_id))
            self._throttle()
            fault = self._draw_fault(method)
            if fault is not None and not fault.after:
                return self._fault(fault, route_id)
            status, body = self._dispatch(method, route, params, environ)
            if fault is not None:  # the write happened, but the client never learns it did
                return self._fault(fault, route_id)
            self._count(status, route_id)
            return status, body, headers
        except ApiProblem as problem:
            self._count(problem.status, route_id)
            return problem.status, _error(problem.code, problem.message), headers + problem.headers

    def _count(self, status: int, route_id: str) -> None:
        with self._lock:
            self.stats.statuses[status] += 1
            self.stats.route_statuses[f"{route_id} {status}"] += 1

    def _fault(self, fault: _Fault, route_id: str) -> tuple[int, Any, list[tuple[str, str]]]:
        with self._lock:
            self.stats.faults[fault.kind] += 1
        if fault.kind == "reset":
            return 500, _error("emulator_fault", "connection reset"), [(FAULT_HEADER, "reset")]
        if fault.kind == "timeout":
            return 500, _error("emulator_fault", "no answer"), [(FAULT_HEADER, f"hang {self.faults.hang_seconds}")]
        self._count(fault.status, route_id)
        if fault.status == 500:
            return 500, _error("internal_server_error", "An internal error occurred"), []
        # 502/503 usually come from a proxy in front of the API: not JSON.
        return fault.status, f"{fault.status} {_REASONS[fault.status]}\n".encode(), []

    # --- cross-cutting concerns -------------------------------------------------------------------

    def _route(self, method: str, path: str) -> tuple[str, dict[str, str]]:
        for pattern, route, methods in _ROUTES:
            found = pattern.match(path)
            if found:
                if method not in methods:
                    raise ApiProblem(405, "method_not_allowed", "Method not allowed",
                                     [("Allow", ", ".join(methods))])
                return route, {k: v for k, v in found.groupdict().items() if v is not None}
        raise ApiProblem(404, "not_found", "Invalid resource identifier")

    def _authorize(self, environ: dict[str, Any], method: str) -> None:
        # LaunchDarkly takes the raw access token in Authorization (no "Bearer").
        given = environ.get("HTTP_AUTHORIZATION", "")
        if given == self.token:
            return
        if self.reader_token and given == self.reader_token:
            if method in ("GET", "HEAD"):
                return
            raise ApiProblem(403, "forbidden", "Forbidden. Access to the requested resource was denied.")
        raise ApiProblem(401, "unauthorized", "Invalid access token")

    def _rate_limit(self, route_id: str) -> list[tuple[str, str]]:
        limit = self.faults.rate_limit
        if not limit:
            return []
        now = self.clock()
        with self._lock:
            window = self._windows.get(route_id)
            if window is None or now >= window.start + RATE_WINDOW_SECONDS:
                window = self._windows[route_id] = _Window(start=now)
            reset_ms = int((window.start + RATE_WINDOW_SECONDS) * 1000)
            if window.used >= limit:
                headers = [("X-Ratelimit-Route-Limit", str(limit)), ("X-Ratelimit-Route-Remaining", "0"),
                           ("X-Ratelimit-Reset", str(reset_ms))]
                raise ApiProblem(429, "rate_limited", "You've exceeded the API rate limit. Try again later.",
                                 headers)
            window.used += 1
            return [("X-Ratelimit-Route-Limit", str(limit)),
                    ("X-Ratelimit-Route-Remaining", str(limit - window.used)),
                    ("X-Ratelimit-Reset", str(reset_ms))]

    def _throttle(self) -> None:
        """429 bursts: while one lasts, every request is refused with Retry-After or X-Ratelimit-Reset."""
        f = self.faults
        if not f.throttle_rate:
            return
        now = self.clock()
        with self._lock:
            if now >= self._burst_until and self.rng.random() < f.throttle_rate:
                self._burst_until = now + f.burst_seconds
                self.stats.faults["throttle"] += 1
            if now >= self._burst_until:
                return
            left = self._burst_until - now
        if f.throttle_header == "reset":
            header = ("X-Ratelimit-Reset", str(int(self._burst_until * 1000)))
        else:
            header = ("Retry-After", str(max(1, math.ceil(left))))
        raise ApiProblem(429, "rate_limited", "You've exceeded the API rate limit. Try again later.", [header])

    def _draw_fault(self, method: str) -> _Fault | None:
        """Maybe pick a fault for this request; slow answers are only delayed."""
        f = self.faults
        with self._lock:
            slow = f.slow_rate and self.rng.random() < f.slow_rate
            chosen: _Fault | None = None
            for kind, rate in (("error", f.fail_rate), ("reset", f.reset_rate), ("timeout", f.timeout_rate)):
                if rate and self.rng.random() < rate:
                    status = self.rng.choice((500, 502, 503))
                    after = method != "GET" and self.rng.random() < 0.5
                    chosen = _Fault(kind, status, after)
                    break
            if slow:
                self.stats.faults["slow"] += 1
        if slow:
            self.sleep(f.slow_ms / 1000.0)
        return chosen

    # --- endpoints -------------------------------------------------------------------------------

    def _dispatch(self, method: str, route: str, params: dict[str, str],
                  environ: dict[str, Any]) -> tuple[int, Any]:
        project = params["project"]
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        try:
            if route == COLLECTION and method == "GET":
                return 200, self._list(project, query)
            if route == COLLECTION:
                body = _json_body(environ)
                if not isinstance(body, dict):
                    raise ApiProblem(400, "invalid_request", "Invalid request body: expected a JSON object")
                record = self.store.create(project, body)
                self._wrote("created")
                return 201, representation(project, record, detail=True, expand=set())
            key = params["key"]
            if method == "GET":
                expand = _expand(query)
                return 200, representation(project, self.store.get(project, key), detail=True, expand=expand)
            if method == "PATCH":
                record, changed = self.store.patch_changed(project, key, _json_body(environ))
                if changed:
                    self._wrote("patched")
                return 200, representation(project, record, detail=True, expand=set())
            self.store.delete(project, key)
            self._wrote("deleted")
            return 204, None
        except NotFound as exc:
            raise ApiProblem(404, "not_found", str(exc)) from None
        except Conflict as exc:
            raise ApiProblem(409, "conflict", str(exc)) from None
        except PatchTestFailed as exc:
            # RFC 5789: a patch that cannot apply to the resource's current state is a conflict.
            raise ApiProblem(409, "optimistic_locking_error", f"Conflict. {exc}") from None
        except (RuleError, PatchError) as exc:
            raise ApiProblem(400, "invalid_request", str(exc)) from None

    def _wrote(self, kind: str) -> None:
        with self._lock:
            self.stats.writes[kind] += 1

    def _list(self, project: str, query: dict[str, list[str]]) -> dict[str, Any]:
        limit = _int_param(query, "limit", DEFAULT_LIMIT)
        offset = _int_param(query, "offset", 0)
        if limit < 1 or limit > MAX_LIMIT:
            raise ApiProblem(400, "invalid_request", f"limit: must be between 1 and {MAX_LIMIT}")
        if offset < 0:
            raise ApiProblem(400, "invalid_request", "offset: must not be negative")
        sort = (query.get("sort") or [""])[0]
        raw_filter = (query.get("filter") or [""])[0]
        if sort and sort.lstrip("-") not in ("createdAt", "name"):
            raise ApiProblem(400, "invalid_request", "sort: must be createdAt or name")
        try:
            expressions = parse_filter(raw_filter) if raw_filter else []
        except FilterError as exc:
            raise ApiProblem(400, "invalid_request", f"filter: {exc}") from None
        if sort or expressions:
            records = [r for r in self.store.records(project) if matches(r, expressions)]
            if sort:
                sort_key = "_creationDate" if sort.lstrip("-") == "createdAt" else "name"
                records.sort(key=lambda r: (r.get(sort_key), r["key"]), reverse=sort.startswith("-"))
            total, page = len(records), records[offset:offset + limit]
        else:  # the common case (creation order, no filter): only the page is touched
            total, page = self.store.count(project), self.store.page(project, offset, limit)
        expand = _expand(query) & {"experimentCount"}
        return {
            "items": [representation(project, r, detail=False, expand=expand) for r in page],
            "totalCount": total,
            "_links": _page_links(project, query, limit, offset, total),
        }


@dataclass(frozen=True)
class _Fault:
    kind: str  # error | reset | timeout
    status: int  # for errors: 500, 502 or 503
    after: bool  # strike after the change was made (writes only)


def _error(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message, "id": str(uuid.uuid4())}


def _json_body(environ: dict[str, Any]) -> Any:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiProblem(400, "invalid_request", "Invalid request body: not valid JSON") from None


def _int_param(query: dict[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    if not values or values[0] == "":
        return default
    try:
        return int(values[0])
    except ValueError:
        raise ApiProblem(400, "invalid_request", f"{name}: must be an integer") from None


def _expand(query: dict[str, list[str]]) -> set[str]:
    return {part.strip() for value in query.get("expand", []) for part in value.split(",") if part.strip()}


def _page_links(project: str, query: dict[str, list[str]], limit: int, offset: int, total: int) -> dict[str, Any]:
    base = f"/api/v2/metrics/{project}"
    keep = {k: v[0] for k, v in query.items() if k not in ("limit", "offset") and v}

    def link(at: int) -> dict[str, str]:
        return {"href": f"{base}?{urlencode({**keep, 'limit': limit, 'offset': at})}", "type": "application/json"}

    last = max(0, ((total - 1) // limit) * limit) if total else 0
    links = {"self": link(offset), "first": link(0), "last": link(last)}
    if offset + limit < total:
        links["next"] = link(offset + limit)
    if offset > 0:
        links["prev"] = link(max(0, offset - limit))
    return links


def _member(member_id: str) -> dict[str, Any]:
    known = member_id == TOKEN_MEMBER_ID
    return {
        "_links": {"self": {"href": f"/api/v2/members/{member_id}", "type": "application/json"}},
        "_id": member_id,
        "firstName": "Emulator" if known else "Member",
        "lastName": "Token" if known else member_id[:6],
        "role": "admin" if known else "writer",
        "email": "emulator@metrics-sync.invalid" if known else f"{member_id}@metrics-sync.invalid",
    }


_DETAIL_ONLY = ("isActive",)
_EXPANDABLE = ("experimentCount", "metricGroupCount", "experiments", "metricGroups")


def representation(project: str, record: dict[str, Any], *, detail: bool, expand: set[str]) -> dict[str, Any]:
    """A stored record as LaunchDarkly returns it: MetricRep (detail) or MetricListingRep (list item)."""
    rep = {k: v for k, v in record.items() if k not in _EXPANDABLE and (detail or k not in _DETAIL_ONLY)}
    for name in _EXPANDABLE:
        if name in expand and name in record:
            rep[name] = record[name]
    key = record["key"]
    rep["_links"] = {
        "self": {"href": f"/api/v2/metrics/{project}/{key}", "type": "application/json"},
        "parent": {"href": f"/api/v2/metrics/{project}", "type": "application/json"},
    }
    rep["_site"] = {"href": f"/{project}/metrics/{key}/details", "type": "text/html"}
    if "analysisUnits" in record:
        rep["randomizationUnits"] = record["analysisUnits"]  # the deprecated name, mirrored
    if record.get("maintainerId"):
        rep["_maintainer"] = _member(record["maintainerId"])
    if detail:
        rep.setdefault("_attachedFlagCount", 0)
    return rep
