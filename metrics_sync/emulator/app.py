"""The emulator's WSGI application: LaunchDarkly's metric endpoints, auth, errors and fault knobs.

Endpoints (LaunchDarkly REST API v2):
    GET    /api/v2/metrics/{projectKey}              list (limit ≤ 50, offset, sort, filter, expand)
    POST   /api/v2/metrics/{projectKey}              create → 201
    GET    /api/v2/metrics/{projectKey}/{metricKey}  get (expand)
    PATCH  /api/v2/metrics/{projectKey}/{metricKey}  RFC 6902 JSON Patch (or {"comment", "patch"}) → 200
    DELETE /api/v2/metrics/{projectKey}/{metricKey}  → 204 (archived and unused metrics only)
    GET    /api/v2/projects/{projectKey}/experimentation-settings   context kinds available for experiments
    PUT    /api/v2/projects/{projectKey}/experimentation-settings
    GET    /api/v2/members, /api/v2/members/{id|me}   the account's members (the token's own and one more)
    GET    /api/v2/projects/{projectKey}/metric-groups                 list (beta: needs LD-API-Version: beta)
    POST   /api/v2/projects/{projectKey}/metric-groups                 create → 201
    GET    /api/v2/projects/{projectKey}/metric-groups/{groupKey}      get (expand experiments, experimentCount)
    PATCH  /api/v2/projects/{projectKey}/metric-groups/{groupKey}      RFC 6902 JSON Patch → 200
    DELETE /api/v2/projects/{projectKey}/metric-groups/{groupKey}      → 204 (unused groups only)
    GET    /api/v2/projects/{projectKey}/environments/{env}/experiments/{key}   a seeded experiment
    GET    /api/v2/projects/{projectKey}/environments                  the project's environments (limit, offset)
    GET    /api/v2/projects/{projectKey}/environments/{env}/holdouts   seeded holdouts (limit, offset)
    GET    /api/v2/projects/{projectKey}/environments/{env}/holdouts/{key}   one, with its base experiment
    GET    /api/v2/projects/{projectKey}/release-policies[/{key}]      seeded release policies (beta)
and, outside LaunchDarkly's namespace, GET /_emulator/stats (request counts, for tests and benchmarks),
GET /_emulator/audit (the comments PATCH requests carried, as LaunchDarkly's audit log would show them),
POST /_emulator/clock (`{"advance": seconds}`: time passes) and POST /_emulator/events (`{"project", "eventKey"}`:
an event arrives, which sets the `lastSeen` of the metrics counting it; emulator/observed.py).
Where LaunchDarkly's behaviour is unconfirmed, `Readings` (readings.py) chooses it.

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

from metrics_sync.emulator.filters import GROUP_SUPPORTED, FilterError, group_matches, matches, parse_filter
from metrics_sync.emulator.groups import experiment_representation, group_links, maintainer_rep, metric_in_group
from metrics_sync.emulator.holders import environment_rep, holdout_detail, policy_rep, simple_holdout
from metrics_sync.emulator.jsonpatch import PatchError, PatchTestFailed
from metrics_sync.emulator.rules import RuleError
from metrics_sync.emulator.store import TOKEN_MEMBER_ID, Conflict, DuplicateKey, NotFound, Store

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

COLLECTION = "/api/v2/metrics/{projectKey}"
ITEM = "/api/v2/metrics/{projectKey}/{metricKey}"
SETTINGS = "/api/v2/projects/{projectKey}/experimentation-settings"
MEMBERS = "/api/v2/members"
MEMBER = "/api/v2/members/{id}"
GROUPS = "/api/v2/projects/{projectKey}/metric-groups"
GROUP = "/api/v2/projects/{projectKey}/metric-groups/{metricGroupKey}"
EXPERIMENT = "/api/v2/projects/{projectKey}/environments/{environmentKey}/experiments/{experimentKey}"
ENVIRONMENTS = "/api/v2/projects/{projectKey}/environments"
HOLDOUTS = "/api/v2/projects/{projectKey}/environments/{environmentKey}/holdouts"
HOLDOUT = "/api/v2/projects/{projectKey}/environments/{environmentKey}/holdouts/{holdoutKey}"
POLICIES = "/api/v2/projects/{projectKey}/release-policies"
POLICY = "/api/v2/projects/{projectKey}/release-policies/{policyKey}"
# LaunchDarkly's "Metrics (beta)" and "Release policies (beta)": answered only with LD-API-Version: beta
BETA_ROUTES = (GROUPS, GROUP, POLICIES, POLICY)
HOLDER_ROUTES = (ENVIRONMENTS, HOLDOUTS, HOLDOUT, POLICIES, POLICY)
_ROUTES = [
    (re.compile(r"^/api/v2/projects/(?P<project>[^/]+)/environments/?$"), ENVIRONMENTS, ("GET",)),
    (re.compile(r"^/api/v2/projects/(?P<project>[^/]+)/environments/(?P<environment>[^/]+)/holdouts/?$"), HOLDOUTS,
     ("GET",)),
    (re.compile(r"^/api/v2/projects/(?P<project>[^/]+)/environments/(?P<environment>[^/]+)/holdouts/"
                r"(?P<key>[^/]+)/?$"), HOLDOUT, ("GET",)),
    (re.compile(r"^/api/v2/projects/(?P<project>[^/]+)/release-policies/?$"), POLICIES, ("GET",)),
    (re.compile(r"^/api/v2/projects/(?P<project>[^/]+)/release-policies/(?P<key>[^/]+)/?$"), POLICY, ("GET",)),
    (re.compile(r"^/api/v2/projects/(?P<project>[^/]+)/metric-groups/?$"), GROUPS, ("GET", "POST")),
    (re.compile(r"^/api/v2/projects/(?P<project>[^/]+)/metric-groups/(?P<key>[^/]+)/?$"), GROUP,
     ("GET", "PATCH", "DELETE")),
    (re.compile(r"^/api/v2/projects/(?P<project>[^/]+)/environments/(?P<environment>[^/]+)/experiments/"
                r"(?P<key>[^/]+)/?$"), EXPERIMENT, ("GET",)),
    (re.compile(r"^/api/v2/members/?$"), MEMBERS, ("GET",)),
    (re.compile(r"^/api/v2/members/(?P<member>[^/]+)/?$"), MEMBER, ("GET",)),
    (re.compile(r"^/api/v2/metrics/(?P<project>[^/]+)/?$"), COLLECTION, ("GET", "POST")),
    (re.compile(r"^/api/v2/metrics/(?P<project>[^/]+)/(?P<key>[^/]+)/?$"), ITEM, ("GET", "PATCH", "DELETE")),
    (re.compile(r"^/api/v2/projects/(?P<project>[^/]+)/experimentation-settings/?$"), SETTINGS, ("GET", "PUT")),
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
        self.audit: list[dict[str, Any]] = []  # {"project", "key", "comment"} of each PATCH that carried one
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
            if path in ("/_emulator/stats", "/_emulator/audit"):
                self._authorize(environ, method)
                with self._lock:
                    body = self.stats.as_json() if path.endswith("stats") else {"items": list(self.audit)}
                    return 200, body, headers
            if path in ("/_emulator/clock", "/_emulator/events") and method == "POST":
                self._authorize(environ, method)
                return 200, self._control(path, _json_body(environ)), headers
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

    def _control(self, path: str, body: Any) -> dict[str, Any]:
        """The test controls: `{"advance": seconds}` moves the clock ahead; `{"project", "eventKey", "at"?}`
        is an event LaunchDarkly receives (now, or at `at`: epoch ms or "-3d"), which sets `lastSeen`."""
        if not isinstance(body, dict):
            raise ApiProblem(400, "invalid_request", "expected a JSON object")
        try:
            if path.endswith("clock"):
                advance = body.get("advance", 0)
                if not isinstance(advance, int | float) or isinstance(advance, bool):
                    raise ValueError("advance must be a number of seconds")
                return {"now": self.store.advance(float(advance))}
            project, event = body.get("project"), body.get("eventKey")
            if not isinstance(project, str) or not isinstance(event, str) or not event:
                raise ValueError("give the event's `project` and `eventKey`")
            return {"eventKey": event, "seen": self.store.record_event(project, event, body.get("at"))}
        except NotFound as exc:
            raise ApiProblem(404, "not_found", str(exc)) from None
        except ValueError as exc:
            raise ApiProblem(400, "invalid_request", str(exc)) from None

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

    def accepts(self, token: str) -> bool:
        """Whether `token` is one of the emulator's tokens (the server checks it before reading a body)."""
        return token == self.token or (bool(self.reader_token) and token == self.reader_token)

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
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        readings = self.store.readings
        if route == MEMBERS:
            items = [_member(m) for m in MEMBER_IDS]
            return 200, {"items": items, "totalCount": len(items),
                         "_links": {"self": {"href": MEMBERS, "type": "application/json"}}}
        if route == MEMBER:
            wanted = TOKEN_MEMBER_ID if params["member"] == "me" else params["member"]
            if wanted not in MEMBER_IDS:
                raise ApiProblem(404, "not_found", "Unknown member")
            return 200, _member(wanted)
        project = params["project"]
        if route in BETA_ROUTES and environ.get("HTTP_LD_API_VERSION") != "beta":
            raise ApiProblem(403, "forbidden", "This is a beta resource: send the header LD-API-Version: beta")
        try:
            if route in (GROUPS, GROUP):
                return self._groups(method, route, project, params.get("key"), query, environ)
            if route in HOLDER_ROUTES:
                return 200, self._holders(route, project, params, query)
            if route == EXPERIMENT:
                found = self.store.experiment(project, params["environment"], params["key"])
                return 200, experiment_representation(project, found)
            if route == SETTINGS:
                return 200, self._settings(project, method, environ)
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
                version = (query.get("versionId") or [""])[0]
                # `versionId` reads one version of the metric (A47): the current one, or one an update superseded.
                found = self.store.version(project, key, version) if version else self.store.get(project, key)
                record = self.store.connected(project, found)
                return 200, representation(project, record, detail=True, expand=expand)
            if method == "PATCH":
                operations, comment = self._patch_body(_json_body(environ))
                record, changed = self.store.patch_changed(project, key, operations)
                if changed:
                    self._wrote("patched")
                    if comment is not None:
                        with self._lock:
                            self.audit.append({"project": project, "key": key, "comment": comment})
                return 200, representation(project, record, detail=True, expand=set())
            self.store.delete(project, key)
            self._wrote("deleted")
            return 204, None
        except NotFound as exc:
            raise ApiProblem(404, "not_found", str(exc)) from None
        except DuplicateKey as exc:
            if readings.duplicate_key_status == 400:
                raise ApiProblem(400, "invalid_request", str(exc)) from None
            raise ApiProblem(409, "conflict", str(exc)) from None
        except Conflict as exc:
            raise ApiProblem(409, "conflict", str(exc)) from None
        except PatchTestFailed as exc:
            # The spec lists both 400 and 409 for a PATCH; which one a failed `test` gets is unconfirmed.
            if readings.failed_test_status == 400:
                raise ApiProblem(400, "invalid_request", str(exc)) from None
            raise ApiProblem(409, "optimistic_locking_error", f"Conflict. {exc}") from None
        except (RuleError, PatchError) as exc:
            raise ApiProblem(400, "invalid_request", str(exc)) from None

    def _groups(self, method: str, route: str, project: str, key: str | None, query: dict[str, list[str]],
                environ: dict[str, Any]) -> tuple[int, Any]:
        store = self.store
        if route == GROUPS and method == "GET":
            return 200, self._group_list(project, query)
        if route == GROUPS:
            body = _json_body(environ)
            if not isinstance(body, dict):
                raise ApiProblem(400, "invalid_request", "Invalid request body: expected a JSON object")
            record = store.create_group(project, body)
            self._wrote("created")
            return 201, self._group_rep(project, record, set())
        assert key is not None
        if method == "GET":
            return 200, self._group_rep(project, store.get_group(project, key), _expand(query))
        if method == "PATCH":
            operations = _json_body(environ)
            visible = None
            if store.readings.group_patch_test == "representation":
                visible = self._group_rep(project, store.get_group(project, key), set())
            record, changed = store.patch_group(project, key, operations, visible)
            if changed:
                self._wrote("patched")
            return 200, self._group_rep(project, record, set())
        store.delete_group(project, key)
        self._wrote("deleted")
        return 204, None

    def _holders(self, route: str, project: str, params: dict[str, str], query: dict[str, list[str]]) -> Any:
        """Environments, holdouts and release policies (emulator/holders.py): seeded, read-only."""
        store = self.store
        if route == POLICIES:
            items = [policy_rep(p) for p in store.release_policies(project)]
            return {"items": items, "totalCount": len(items)}
        if route == POLICY:
            for policy in store.release_policies(project):
                if policy["key"] == params["key"]:
                    return policy_rep(policy)
            raise NotFound(f"Unknown release policy key {params['key']!r}")
        if route == ENVIRONMENTS:
            keys = store.environment_keys(project)
            limit, offset = _window(query)
            return {"items": [environment_rep(project, k) for k in keys[offset:offset + limit]],
                    "totalCount": len(keys), "_links": {"self": {"href": f"/api/v2/projects/{project}/environments",
                                                                 "type": "application/json"}}}
        holdouts = store.holdouts_in(project, params["environment"])
        if route == HOLDOUT:
            found = [h for h in holdouts if h["key"] == params["key"]]
            if not found:
                raise NotFound(f"Unknown holdout key {params['key']!r}")
            metrics = store.projects.get(project, {})
            return holdout_detail(project, found[0], store.groups.get(project, {}), metrics)
        limit, offset = _window(query)
        return {"items": [simple_holdout(project, h) for h in holdouts[offset:offset + limit]],
                "total_count": len(holdouts),
                "_links": {"self": {"href": f"/api/v2/projects/{project}/environments/{params['environment']}/"
                                            "holdouts", "type": "application/json"}}}

    def _group_rep(self, project: str, record: dict[str, Any], expand: set[str]) -> dict[str, Any]:
        """MetricGroupRep. `experiments` and `experimentCount` only when expanded (the spec); the active counts
        always (they are not expansions in the spec)."""
        used = self.store.connected(project, record, "metric-group")
        metrics = self.store.projects.get(project, {})
        rep: dict[str, Any] = {
            "_id": record["_id"], "key": record["key"], "name": record["name"], "kind": record["kind"],
            "_links": group_links(project, record["key"]), "tags": list(record["tags"]),
            "_creationDate": record["_creationDate"], "_lastModified": record["_lastModified"],
            "maintainer": maintainer_rep(record, _member(record.get("maintainerId") or "")),
            "metrics": [metric_in_group(project, m, metrics.get(m["key"]), record["kind"]) for m in record["metrics"]],
            "_version": record["_version"],
            "activeExperimentCount": used.get("activeExperimentCount", 0),
            "activeGuardedRolloutCount": used.get("activeGuardedRolloutCount", 0),
        }
        if record.get("description"):
            rep["description"] = record["description"]
        if "experiments" in expand:
            rep["experiments"] = list(used.get("experiments", []))
        if "experimentCount" in expand:
            rep["experimentCount"] = used.get("experimentCount", 0)
        return rep

    def _group_list(self, project: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """MetricGroupCollectionRep: paged (limit ≤ 50, offset), filtered and sorted as the spec documents;
        `expand` is accepted and ignored ("reserved for future use")."""
        limit = min(max(_int_param(query, "limit", DEFAULT_LIMIT), 1), MAX_LIMIT)
        offset = max(_int_param(query, "offset", 0), 0)
        raw_filter = (query.get("filter") or [""])[0]
        try:
            expressions = parse_filter(raw_filter, GROUP_SUPPORTED) if raw_filter else []
        except FilterError as exc:
            raise ApiProblem(400, "invalid_request", f"filter: {exc}") from None
        records = self.store.group_records(project)
        if expressions:
            statuses = {key: {e["status"] for e in self.store.experiments.get(project, {}).values()
                              if key in e["metricGroups"]} for key in (r["key"] for r in records)}
            records = [r for r in records if group_matches(self.store.connected(project, r, "metric-group"),
                                                           expressions, statuses[r["key"]])]
        sort = (query.get("sort") or [""])[0]
        field = sort.lstrip("-")
        if field in ("name", "createdAt", "connectionCount"):
            def sort_key(r: dict[str, Any]) -> Any:
                if field == "connectionCount":
                    return self.store.connected(project, r, "metric-group").get("experimentCount", 0), r["key"]
                return r["name" if field == "name" else "_creationDate"], r["key"]
            records = sorted(records, key=sort_key, reverse=sort.startswith("-"))
        page = records[offset:offset + limit]
        base = f"/api/v2/projects/{project}/metric-groups"
        return {"items": [self._group_rep(project, r, set()) for r in page], "totalCount": len(records),
                "_links": {"self": {"href": f"{base}?{urlencode({'limit': limit, 'offset': offset})}",
                                    "type": "application/json"},
                           "parent": {"href": f"/api/v2/projects/{project}", "type": "application/json"}}}

    def _patch_body(self, body: Any) -> tuple[Any, str | None]:
        """A bare JSON Patch array, or LaunchDarkly's documented `{"comment": ..., "patch": [...]}` wrapper."""
        if isinstance(body, dict) and "patch" in body:
            if self.store.readings.comment_wrapper == "rejected":
                raise ApiProblem(400, "invalid_request", "Invalid request body: expected a JSON Patch array")
            comment = body.get("comment")
            if comment is not None and not isinstance(comment, str):
                raise ApiProblem(400, "invalid_request", "comment: must be a string")
            return body["patch"], comment
        return body, None

    def _settings(self, project: str, method: str, environ: dict[str, Any]) -> dict[str, Any]:
        """RandomizationSettingsRep: the context kinds available for experiments in a project."""
        if method == "PUT":
            body = _json_body(environ)
            units = body.get("randomizationUnits") if isinstance(body, dict) else None
            if not isinstance(units, list) or not all(
                    isinstance(u, dict) and isinstance(u.get("randomizationUnit"), str) for u in units):
                raise ApiProblem(400, "invalid_request", "randomizationUnits: required, a list of objects")
            saved = self.store.set_experimentation_settings(project, [
                {"randomizationUnit": u["randomizationUnit"], "default": bool(u.get("default", False)),
                 "_hidden": False} for u in units])
        else:
            saved = self.store.experimentation_settings(project)
        return {"_projectKey": project, "randomizationUnits": saved,
                "_links": {"self": {"href": f"/api/v2/projects/{project}/experimentation-settings",
                                    "type": "application/json"}}}

    def _wrote(self, kind: str) -> None:
        with self._lock:
            self.stats.writes[kind] += 1

    def _list(self, project: str, query: dict[str, list[str]]) -> dict[str, Any]:
        # The spec documents `limit` (default 20, maximum 50), `offset`, `sort` (createdAt or name) and the
        # filter fields; what LaunchDarkly answers to values outside that is unconfirmed, so the emulator
        # invents no 400s: a larger limit is served as 50, an unknown sort as creation order.
        limit = min(max(_int_param(query, "limit", DEFAULT_LIMIT), 1), MAX_LIMIT)
        offset = max(_int_param(query, "offset", 0), 0)
        sort = (query.get("sort") or [""])[0]
        if sort.lstrip("-") not in ("createdAt", "name"):
            sort = ""
        raw_filter = (query.get("filter") or [""])[0]
        try:
            expressions = parse_filter(raw_filter) if raw_filter else []
        except FilterError as exc:
            raise ApiProblem(400, "invalid_request", f"filter: {exc}") from None
        hide_archived = self.store.readings.archived_in_list == "hidden"
        connected = self.store.connected
        # Creation order is `createdAt` order unless a seed preloaded older dates: then it is sorted.
        by_creation = sort == "createdAt" and self.store.in_creation_order(project)
        if (sort and not by_creation) or expressions or hide_archived:
            records = [r for r in (connected(project, r) for r in self.store.records(project))
                       if matches(r, expressions) and not (hide_archived and r.get("archived"))]
            if sort.lstrip("-") == "createdAt":  # a stable sort: equal dates keep the creation order
                records.sort(key=lambda r: r.get("_creationDate") or 0, reverse=sort.startswith("-"))
            elif sort:
                records.sort(key=lambda r: (r.get("name"), r["key"]), reverse=sort.startswith("-"))
            total, page = len(records), records[offset:offset + limit]
        else:  # the common case (creation order, no filter): only the page is touched
            total = self.store.count(project)
            page = [connected(project, r) for r in self.store.page(project, offset, limit)]
        expand = _expand(query) & {"experimentCount"}
        items = [representation(project, r, detail=False, expand=expand) for r in page]
        if self.store.readings.list_counters == "omitted":
            for item in items:
                item.pop("activeExperimentCount", None)
                item.pop("activeGuardedRolloutCount", None)
        return {
            "items": items,
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
        raise ApiProblem(400, "invalid_request", f"{name}: must be an integer") from None  # the spec's int64


def _window(query: dict[str, list[str]]) -> tuple[int, int]:
    """`limit` (default 20; served as at most 100, undocumented for these lists) and `offset` of a paged list."""
    return max(1, min(_int_param(query, "limit", DEFAULT_LIMIT), 100)), max(0, _int_param(query, "offset", 0))


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


# The account's members: the token's own and one more (so that a maintainer can be someone else).
MEMBER_IDS = (TOKEN_MEMBER_ID, "6b1fdeadbeef1644facecafe")


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
# MetricPost fields MetricRep does not have (launchdarkly-api 25.0.1): stored, never returned (A36).
_WRITE_ONLY = ("valueColumn",)
# `expand` of the single-metric GET (the spec); `guardedRollouts` have no declared shape: the emulator returns
# what a seed gave (DependentMeasuredRolloutRep-like items).
_EXPANDABLE = ("experimentCount", "metricGroupCount", "experiments", "metricGroups", "guardedRollouts",
               "lastUsedInExperiment", "lastUsedInGuardedRollout")


def representation(project: str, record: dict[str, Any], *, detail: bool, expand: set[str]) -> dict[str, Any]:
    """A stored record as LaunchDarkly returns it: MetricRep (detail) or MetricListingRep (list item)."""
    rep = {k: v for k, v in record.items() if k not in _EXPANDABLE and k not in _WRITE_ONLY
           and (detail or k not in _DETAIL_ONLY)}
    for name in _EXPANDABLE:
        if name in expand and name in record:
            rep[name] = record[name]
    if "guardedRolloutCount" in expand:
        rep["guardedRolloutCount"] = len(record.get("guardedRollouts") or [])
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
