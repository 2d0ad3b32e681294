"""The reads of what else uses a metric: a project's environments, the holdouts of each environment and its
release policies (docs/launchdarkly-contract.md, A40-A44). Each list is read whole or not at all, by bounded
sequential pages, and each item is checked before it is kept: an answer of the wrong shape is an `ApiError`
naming it, never a crash and never a shorter list (a shorter list would let prune archive a metric in use).

These lists are small and read only when a plan changes or may retire something, so they are read one page
at a time (through the session: pacing, retries and the rate-limit budget as for every other call).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from metrics_sync.core.errors import ApiError
from metrics_sync.core.fields import KEY
from metrics_sync.core.resources import BETA
from metrics_sync.launchdarkly.session import Session

ROUTE_ENVIRONMENTS = "/api/v2/projects/{projectKey}/environments"
ROUTE_HOLDOUTS = "/api/v2/projects/{projectKey}/environments/{environmentKey}/holdouts"
ROUTE_HOLDOUT = "/api/v2/projects/{projectKey}/environments/{environmentKey}/holdouts/{holdoutKey}"
ROUTE_POLICIES = "/api/v2/projects/{projectKey}/release-policies"
PAGE = 20  # both lists' documented default; no maximum is documented, so no more is asked for
MAX_ENVIRONMENTS = 200  # more than this in one project is not believed
MAX_HOLDOUTS = 500  # per environment
MAX_POLICIES = 1000
JSONDict = dict[str, Any]
Check = Callable[[Mapping[str, Any]], str | None]  # why an item is unusable, or None


def read_list(session: Session, path: str, route: str, what: str, *, most: int,
              check: Check, headers: Mapping[str, str] | None = None, paged: bool = True) -> list[JSONDict]:
    """Every item of a list (`items`, and a count in `totalCount` or, as `HoldoutsCollectionRep` spells it,
    `total_count`), paged by `limit`/`offset` when `paged`. Stops at the count, at an empty or short page; fails
    past `most` items or on a page of the wrong shape."""
    found: dict[str, JSONDict] = {}
    offset = 0
    while True:
        params = {"limit": PAGE, "offset": offset} if paged else None
        data = session.decode(session.request("GET", path, route, params=params, headers=headers))
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ApiError("GET", path, 200, f"the {what} list has no `items` array")
        total = data.get("totalCount", data.get("total_count"))
        if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total < 0):
            raise ApiError("GET", path, 200, f"the {what} list gives no usable count")
        before = len(found)
        for item in items:
            wrong = "it is not an object" if not isinstance(item, dict) else _keyed(item) or check(item)
            if wrong:
                raise ApiError("GET", path, 200, f"LaunchDarkly sent a malformed {what}{_named(item)}: {wrong}",
                               hint="nothing was changed; report it to LaunchDarkly if it persists")
            found.setdefault(item["key"], item)
        if items and len(found) == before:  # the same items again in place of the next page
            raise ApiError("GET", path, 200, f"LaunchDarkly sent the same {what}s again at offset {offset}",
                           hint="nothing was changed; try again later")
        if len(found) > most or (isinstance(total, int) and total > most):
            raise ApiError("GET", path, 200, f"more than {most} {what}s: not read",
                           hint="nothing was changed; report it if the project really has that many")
        offset += len(items)
        # The count, when given, says where the list ends (a server whose pages are smaller than asked for is
        # still read whole); without one, a short page does.
        if not paged or not items or (offset >= total if isinstance(total, int) else len(items) < PAGE):
            return list(found.values())


def read_item(session: Session, path: str, route: str, what: str, check: Check,
              params: Mapping[str, Any] | None = None) -> JSONDict:
    data = session.decode(session.request("GET", path, route, params=params))
    wrong = "it is not an object" if not isinstance(data, dict) else check(data)
    if wrong:
        raise ApiError("GET", path, 200, f"LaunchDarkly sent a malformed {what}: {wrong}",
                       hint="nothing was changed; report it to LaunchDarkly if it persists")
    assert isinstance(data, dict)
    return data


def _keyed(item: Mapping[str, Any]) -> str | None:
    key = item.get("key")
    return None if isinstance(key, str) and KEY.fullmatch(key) else "its key does not follow LaunchDarkly's key pattern"


def _named(item: Any) -> str:
    key = item.get("key") if isinstance(item, Mapping) else None
    return f" `{key}`" if isinstance(key, str) and KEY.fullmatch(key) else ""


def _texts(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _text(value: Any) -> bool:
    return value is None or isinstance(value, str)


# --- the shapes (generated client `launchdarkly-api` 25.0.1) ------------------------------------------------

def check_environment(item: Mapping[str, Any]) -> str | None:
    return None  # only its key is used


def check_simple_holdout(item: Mapping[str, Any]) -> str | None:
    """SimpleHoldoutRep: key, name, status (text)."""
    if not (_text(item.get("name")) and _text(item.get("status"))):
        return "`name` or `status` is not text"
    return None


def _check_metric_entry(entry: Any) -> str | None:
    """DependentMetricOrMetricGroupRep (an iteration's metric): key, isGroup, a group's `metrics`, analysisUnit."""
    if not isinstance(entry, Mapping) or not isinstance(entry.get("key"), str):
        return "a metric of its iteration has no key"
    if entry.get("isGroup") is not None and not isinstance(entry["isGroup"], bool):
        return "a metric's `isGroup` is not true or false"
    if not _text(entry.get("analysisUnit")):
        return "a metric's `analysisUnit` is not text"
    members = entry.get("metrics")
    if members is not None and not (isinstance(members, list) and all(
            isinstance(m, Mapping) and isinstance(m.get("key"), str) for m in members)):
        return "a group's `metrics` are not metrics with keys"
    return None


def check_holdout_detail(item: Mapping[str, Any]) -> str | None:
    """HoldoutDetailRep: status, isDirty, and a base experiment whose iterations list metrics."""
    if not _text(item.get("status")) or not (item.get("isDirty") is None or isinstance(item["isDirty"], bool)):
        return "`status` is not text or `isDirty` is not true or false"
    base = item.get("baseExperiment")
    if not isinstance(base, Mapping):
        return "it has no `baseExperiment` object"
    if base.get("archivedDate") is not None and not isinstance(base["archivedDate"], int):
        return "`baseExperiment.archivedDate` is not a number"
    for name in ("currentIteration", "draftIteration"):
        iteration = base.get(name)
        if iteration is None:
            continue
        if not isinstance(iteration, Mapping) or not _text(iteration.get("status")):
            return f"`baseExperiment.{name}` is not an iteration"
        metrics = iteration.get("metrics")
        if metrics is not None and not isinstance(metrics, list):
            return f"`baseExperiment.{name}.metrics` is not a list"
        for entry in [*(metrics or []), *(iteration[p] for p in ("primaryMetric", "primarySingleMetric",
                                                                  "primaryFunnel") if iteration.get(p) is not None)]:
            wrong = _check_metric_entry(entry)
            if wrong:
                return wrong
    return None


def check_policy(item: Mapping[str, Any]) -> str | None:
    """ReleasePolicy: name, releaseMethod, scope.environmentKeys, guardedReleaseConfig.metricKeys/metricGroupKeys."""
    if not (_text(item.get("name")) and _text(item.get("releaseMethod"))):
        return "`name` or `releaseMethod` is not text"
    scope = item.get("scope")
    if scope is not None and not (isinstance(scope, Mapping) and _texts(scope.get("environmentKeys"))):
        return "`scope.environmentKeys` is not a list of text"
    config = item.get("guardedReleaseConfig")
    if config is not None and not (isinstance(config, Mapping) and _texts(config.get("metricKeys"))
                                   and _texts(config.get("metricGroupKeys"))):
        return "`guardedReleaseConfig` does not list metric and metric group keys as text"
    return None


POLICY_HEADERS = BETA  # "Release policies (beta)"
