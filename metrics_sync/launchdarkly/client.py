"""LaunchDarkly's API for metrics-sync: one generic set of calls for every resource, driven by the resource
descriptions (core/resources.py: routes, headers, list parameters, audit comment, retire action), plus the few
other reads plans need. The only package that imports `httpx` and `httpcore`; its parts:

  * transport.py: the connection, with a deadline for each whole request (and proxy, CA bundle);
  * session.py: headers, base-URL policy, rate-limit pacing, retries, error mapping, cancellation;
  * paging.py: whole lists read by concurrent pages;
  * wire.py: strict JSON and the shape of each item; rate_limits.py: LaunchDarkly's rate-limit windows.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload
from urllib.parse import quote, urlsplit

from metrics_sync.core.cancel import CancelSignal
from metrics_sync.core.errors import REDACTED, ApiError
from metrics_sync.core.fields import KEY, Resource
from metrics_sync.core.resources import BETA
from metrics_sync.launchdarkly import holders
from metrics_sync.launchdarkly.paging import READ_CONCURRENCY, Keep, Kept, Pager
from metrics_sync.launchdarkly.rate_limits import START_IN_FLIGHT, ReadWindow
from metrics_sync.launchdarkly.session import Log, Reply, RetryPolicy, Session, Target
from metrics_sync.launchdarkly.wire import BadJson, decode

if TYPE_CHECKING:
    import httpx

ROUTE_EXPERIMENT = "/api/v2/projects/{projectKey}/environments/{environmentKey}/experiments/{experimentKey}"
ROUTE_UNITS = "/api/v2/projects/{projectKey}/experimentation-settings"
JSONDict = dict[str, Any]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: Any


class Client:
    """LaunchDarkly's endpoints. Thread-safe: apply uses one client from several workers."""

    def __init__(self, base_url: str, token: str, *, transport: httpx.BaseTransport | None = None,
                 timeout: float = 30.0, retry: RetryPolicy | None = None, log: Log | None = None,
                 notice: Log | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
                 environ: Mapping[str, str] | None = None, read_concurrency: int = READ_CONCURRENCY,
                 cancel: CancelSignal | None = None) -> None:
        self.session = Session(base_url, token, transport=transport, timeout=timeout, retry=retry, log=log,
                               notice=notice, clock=clock, sleep=sleep, rng=rng, environ=environ, cancel=cancel)
        self._pager = Pager(self.session, read_concurrency)
        self.base_url, self.network = self.session.base_url, self.session.network
        # Plan's reads of single items (what uses each change, holdouts) at once: their pools are not windowed,
        # and each of their threads waits out a rate-limit window on its own, every wait counted against
        # --max-wait; so they stay at the window's start (32 of them spent the 300 s in one 10-second window
        # of a 100-request limit). Page reads go up to `window.cap`.
        self.read_concurrency = min(START_IN_FLIGHT, self._pager.read_concurrency)
        # LaunchDarkly documents a `{"comment", "patch"}` PATCH body, but the metric endpoint's schema declares
        # only the bare array: when a wrapped patch is refused, the bare one is tried and the wrapper is not sent
        # again for that resource (docs/launchdarkly-contract.md, A10).
        self._bare_patches: set[str] = set()

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r}, token={REDACTED!r})"

    @property
    def calls(self) -> int:
        """How many requests this client has sent so far (each retry counts)."""
        return self.session.calls

    @property
    def host(self) -> str:
        """Host (and port) of the LaunchDarkly instance, as plans record it."""
        return urlsplit(self.base_url).netloc

    def close(self) -> None:
        """Wait for the early reads never taken over (`read_ahead`), then close the connections."""
        try:
            self._pager.close()
        finally:
            self.session.close()

    def abandon(self) -> None:
        """Give up every read in flight at once (no grace: nobody waits for them), then close: what plan does with
        its early read when the definitions fail."""
        self.session.cancel.set(grace=0.0)
        self.close()

    @property
    def window(self) -> ReadWindow:
        """How many page reads may be in flight now (adaptive; see rate_limits.ReadWindow)."""
        return self._pager.window

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one API for every resource -----------------------------------------------------------------

    @overload
    def list_items(self, resource: Resource, project: str, *, keep: None = None, expected: int = 0,
                   tags: Sequence[str] = ()) -> list[JSONDict]: ...

    @overload
    def list_items(self, resource: Resource, project: str, *, keep: Keep, expected: int = 0,
                   tags: Sequence[str] = ()) -> list[Kept]: ...

    def list_items(self, resource: Resource, project: str, *, keep: Keep | None = None, expected: int = 0,
                   tags: Sequence[str] = ()) -> list[JSONDict] | list[Kept]:
        """Every item of `project` (having all `tags`, for a resource whose list filters by tag), read with paged
        list calls only (paging.py). With `keep`, what of each item is kept (e.g. `METRIC.kept`: less memory on
        large projects). `expected` (how many the caller expects, e.g. the definitions' count) lets the first
        pages go at once."""
        params: dict[str, Any] = dict(resource.list_params)
        if tags:
            if not resource.tag_filter:
                raise ValueError(f"the {resource.name} list cannot be filtered by tag")
            params["filter"] = f"tags contains {json.dumps(list(tags))}"
        return self._pager.read(resource, _path(resource, project), params, Target(resource.name, project),
                                keep=keep, expected=expected)

    def read_ahead(self, resource: Resource, project: str) -> None:
        """Start listing `project`'s items now; the `list_items` call for them (without tags) takes the pages
        over. Nothing is raised or printed here: an error is raised by that call. Plan starts the metrics list so
        while it reads the definitions (at a distance, the first round trips are then free)."""
        self._pager.start(resource, _path(resource, project), dict(resource.list_params),
                          Target(resource.name, project))

    def get_item(self, resource: Resource, project: str, key: str, expand: Sequence[str] = (),
                 version_id: str | None = None) -> JSONDict:
        """One item; with `version_id`, a metric as it was at that `_versionId` (the single read's `versionId`, A47:
        an update may leave the version a running iteration measures behind the current one)."""
        params = {"expand": ",".join(expand)} if expand else {}
        if version_id:
            params["versionId"] = version_id
        rep = self._rep("GET", resource, project, key, params=params or None)
        if rep["key"] != key:
            raise ApiError("GET", _path(resource, project, key), 200, f"LaunchDarkly answered with another "
                           f"{resource.name} than the one asked for")
        return rep

    def find_item(self, resource: Resource, project: str, key: str) -> JSONDict | None:
        """The item, or None when LaunchDarkly answers 404 for it."""
        try:
            return self.get_item(resource, project, key)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create_item(self, resource: Resource, project: str, body: JSONDict) -> tuple[JSONDict, bool]:
        """POST an item. Returns (representation, recovered).

        A POST is sent at most 3 times, and again only after a read proved the item absent: an ambiguous failure
        (timeout, reset, 5xx) may have created it, so a create is never duplicated. `recovered` is True when
        such a read showed it exists: the create had in fact happened. Once the run is cancelled, an ambiguous
        failure is raised as it is (nothing more is sent).
        """
        key = str(body.get("key"))
        last: ApiError | None = None
        for _ in range(3):
            try:
                return self._rep("POST", resource, project, json_body=body, retry_failures=False), False
            except ApiError as exc:
                if not exc.ambiguous or self.session.cancel.is_set():
                    raise
                last = exc
                self.session.note(f"POST {exc.path} failed ambiguously ({exc.api_message}); checking whether {key} "
                                  "exists")
                existing = self.find_item(resource, project, key)
                if existing is not None:
                    return existing, True
        assert last is not None
        raise last

    def patch_item(self, resource: Resource, project: str, key: str, operations: list[JSONDict], *,
                   comment: str | None = None) -> JSONDict:
        """Apply a JSON Patch. `comment` goes to LaunchDarkly's audit log for a resource whose PATCH takes the
        comment wrapper; the others get the bare JSON Patch their spec declares."""
        if not (comment and resource.patch_comment and resource.kind not in self._bare_patches):
            return self._rep("PATCH", resource, project, key, json_body=operations)
        try:
            return self._rep("PATCH", resource, project, key, json_body={"comment": comment, "patch": operations})
        except ApiError as exc:
            if exc.status != 400:
                raise
            wrapped_error = exc
        try:
            rep = self._rep("PATCH", resource, project, key, json_body=operations)
        except ApiError as exc:
            if exc.status == 400:
                raise wrapped_error from None  # the patch itself is refused, wrapped or not
            raise
        self._bare_patches.add(resource.kind)
        self.session.note("LaunchDarkly refused the comment wrapper on PATCH; sending bare JSON Patch from now on")
        return rep

    def delete_item(self, resource: Resource, project: str, key: str) -> bool:
        """DELETE an item; False when it was already gone (404), as the Terraform provider treats it."""
        if resource.retire != "delete":
            raise ValueError(f"a {resource.name} is archived, not deleted")
        try:
            self._call("DELETE", resource, project, key)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # --- what plans and doctor read besides the resources ------------------------------------------

    def experiment_units(self, project: str) -> list[str]:
        """The context kinds available for experiments in `project` (its experimentation settings)."""
        path = _fill(ROUTE_UNITS, projectKey=project)
        reply = self._read_beta(path, ROUTE_UNITS)
        data = self.session.decode(reply)
        units = data.get("randomizationUnits") if isinstance(data, dict) else None
        if not isinstance(units, list):
            raise ApiError("GET", path, reply.status, "the experimentation settings have no `randomizationUnits` list")
        return [u["randomizationUnit"] for u in units
                if isinstance(u, dict) and isinstance(u.get("randomizationUnit"), str)]

    def experiment(self, project: str, environment: str, key: str) -> JSONDict:
        """One experiment (for its current iteration's status)."""
        path = _fill(ROUTE_EXPERIMENT, projectKey=project, environmentKey=environment, experimentKey=key)
        reply = self._read_beta(path, ROUTE_EXPERIMENT)
        data = self.session.decode(reply)
        if not isinstance(data, dict):
            raise ApiError("GET", path, reply.status, "the experiment is not an object")
        return data

    # --- what else uses a metric (holders.py): read only when a plan changes or may retire something -----

    def environments(self, project: str) -> list[str]:
        """The keys of the project's environments (where its holdouts are)."""
        path = _fill(holders.ROUTE_ENVIRONMENTS, projectKey=project)
        items = holders.read_list(self.session, path, holders.ROUTE_ENVIRONMENTS, "environment",
                                  most=holders.MAX_ENVIRONMENTS, check=holders.check_environment)
        return [str(e["key"]) for e in items]

    def holdouts(self, project: str, environment: str) -> list[JSONDict]:
        """The holdouts of one environment (`SimpleHoldoutRep`: key, name, status; no metrics)."""
        path = _fill(holders.ROUTE_HOLDOUTS, projectKey=project, environmentKey=environment)
        return holders.read_list(self.session, path, holders.ROUTE_HOLDOUTS, "holdout", most=holders.MAX_HOLDOUTS,
                                 check=holders.check_simple_holdout)

    def holdout(self, project: str, environment: str, key: str) -> JSONDict:
        """One holdout (`HoldoutDetailRep`), with its base experiment's draft iteration: its metrics."""
        path = _fill(holders.ROUTE_HOLDOUT, projectKey=project, environmentKey=environment, holdoutKey=key)
        return holders.read_item(self.session, path, holders.ROUTE_HOLDOUT, f"holdout `{key}`",
                                 holders.check_holdout_detail, params={"expand": "draftIteration"})

    def release_policies(self, project: str) -> list[JSONDict]:
        """The project's release policies (beta; one unpaged list)."""
        path = _fill(holders.ROUTE_POLICIES, projectKey=project)
        return holders.read_list(self.session, path, holders.ROUTE_POLICIES, "release policy",
                                 most=holders.MAX_POLICIES, check=holders.check_policy,
                                 headers=holders.POLICY_HEADERS, paged=False)

    def my_member_id(self) -> tuple[str | None, str | None]:
        """(the ID of the member the access token belongs to, None) or (None, why there is none): LaunchDarkly
        requires a maintainer for a new metric group, and its Terraform provider defaults it to this member.
        Service tokens have no member."""
        try:
            data = self.session.decode(self.session.request("GET", "/api/v2/members/me", "/api/v2/members/{id}"))
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
        reply = self.session.request(method, path, route, params=params, json_body=json_body, headers=headers,
                                     retry_failures=method == "GET", errors_as_answers=True)
        try:
            body = decode(reply.content) if reply.content else None
        except BadJson:
            body = None
        return Answer(reply.status, {k.lower(): v for k, v in reply.headers.items()}, body)

    # --- plumbing ----------------------------------------------------------------------------------

    def _call(self, method: str, resource: Resource, project: str, key: str | None = None, **options: Any) -> Reply:
        """One request on a resource's list (`key` None) or on one of its items, with the resource's headers."""
        return self.session.request(method, _path(resource, project, key),
                                    resource.collection if key is None else resource.item, headers=resource.headers,
                                    target=Target(resource.name, project, key), **options)

    def _rep(self, method: str, resource: Resource, project: str, key: str | None = None, **options: Any) -> JSONDict:
        """The representation of `resource` the answer holds, checked (wire.py)."""
        rep: JSONDict = self.session.decode(self._call(method, resource, project, key, **options), resource=resource)
        return rep

    def _read_beta(self, path: str, route: str) -> Reply:
        """A GET that older API clients list as beta: when the pinned version gets 403, it is asked again with
        `LD-API-Version: beta` (docs/launchdarkly-contract.md, A12)."""
        try:
            return self.session.request("GET", path, route)
        except ApiError as exc:
            if exc.status != 403:
                raise
            return self.session.request("GET", path, route, headers=BETA)


def _fill(route: str, **keys: str) -> str:
    """`route` with its keys in place: only keys that follow LaunchDarkly's pattern go into a URL path (never `.`
    or `..`)."""
    if not all(KEY.fullmatch(key) for key in keys.values()):
        raise ApiError("GET", route, None, "a key does not follow LaunchDarkly's key pattern",
                       hint="keys use letters, numbers, '.', '_' and '-', and start with a letter or number")
    return route.format(**{name: quote(key, safe="") for name, key in keys.items()})


def _path(resource: Resource, project: str, key: str | None = None) -> str:
    return _fill(resource.collection, projectKey=project) if key is None else \
        _fill(resource.item, projectKey=project, key=key)
