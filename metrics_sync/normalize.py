"""One canonical form for a metric, whether it comes from the YAML or from LaunchDarkly's API.

Comparing canonical forms is what makes "apply, then plan" show no changes for every kind:
  * defaults LaunchDarkly fills in are applied to both sides (`analysisType: mean`,
    `unitAggregationType: average`, `eventDefault`, `successCriteria: HigherThanBaseline` for custom
    conversions, empty description and tags), so a field the YAML omits equals the server's default;
  * fields a kind does not use are dropped (a pageview has no eventKey, a conversion no unit);
  * `tags` and `analysisUnits` are sets (sorted, unique); `urls` are compared as a sorted set of
    matchers; `randomizationUnits` is folded into `analysisUnits`;
  * server-owned fields (`_id`, `_version`, `_links`, `dataSource`, counts, ...) are ignored;
  * `analysisUnits` and `maintainerId` are chosen by LaunchDarkly when omitted, so they are compared
    only when the YAML sets them (see `ASSIGNED_BY_SERVER`).
Pure functions only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from metrics_sync.model import DesiredMetric

# The fields metrics-sync manages, in the order they are shown and sent.
FIELDS = (
    "name", "description", "kind", "eventKey", "isNumeric", "unit", "successCriteria", "unitAggregationType",
    "analysisType", "percentileValue", "eventDefault", "selector", "urls", "analysisUnits", "tags",
    "maintainerId", "archived",
)
# What plan needs of a remote metric (the rest of the representation is dropped as pages arrive).
PLANNED_REMOTE_FIELDS = frozenset((*FIELDS, "key", "_version", "_maintainer", "randomizationUnits",
                                   "experimentCount", "activeExperimentCount", "activeGuardedRolloutCount"))
# LaunchDarkly assigns these when a metric is created without them; only compared when the YAML sets them.
ASSIGNED_BY_SERVER = ("analysisUnits", "maintainerId")
_URL_VALUE_FIELD = {"exact": "url", "canonical": "url", "substring": "substring", "regex": "pattern"}


def _number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _sorted_set(values: Iterable[Any]) -> list[Any]:
    return sorted({str(v) for v in values})


def _url(matcher: Mapping[str, Any]) -> dict[str, Any]:
    kind = matcher.get("kind")
    field = _URL_VALUE_FIELD.get(str(kind))
    out: dict[str, Any] = {"kind": kind}
    if field and matcher.get(field) is not None:
        out[field] = matcher[field]
    return out


def canonical(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical form of a metric given as API fields (a YAML metric or an API representation)."""
    kind = fields.get("kind")
    numeric = bool(fields.get("isNumeric")) if kind == "custom" else False
    analysis = fields.get("analysisType") or "mean"
    out: dict[str, Any] = {
        "name": fields.get("name") or fields.get("key"),
        "description": fields.get("description") or "",
        "kind": kind,
    }
    if kind == "custom":
        out["eventKey"] = fields.get("eventKey")
    out["isNumeric"] = numeric
    if numeric:
        out["unit"] = fields.get("unit")
    if kind == "custom":
        out["successCriteria"] = fields.get("successCriteria") or "HigherThanBaseline"
    out["unitAggregationType"] = fields.get("unitAggregationType") or "average"
    out["analysisType"] = analysis
    if analysis == "percentile":
        out["percentileValue"] = _number(fields.get("percentileValue"))
    default = fields.get("eventDefault") or {}
    out["eventDefault"] = {
        "disabled": bool(default.get("disabled", analysis == "percentile")),
        "value": _number(default.get("value", 0)),
    }
    if kind == "click":
        out["selector"] = fields.get("selector")
    if kind in ("pageview", "click"):
        urls = [_url(u) for u in fields.get("urls") or [] if isinstance(u, Mapping)]
        if len(urls) > 1:
            urls.sort(key=lambda u: (str(u.get("kind")), str(u.get("url") or u.get("substring") or u.get("pattern"))))
        out["urls"] = urls
    units = fields.get("analysisUnits") or fields.get("randomizationUnits")
    if units:
        out["analysisUnits"] = _sorted_set(units)
    out["tags"] = _sorted_set(fields.get("tags") or [])
    maintainer = fields.get("maintainerId") or (fields.get("_maintainer") or {}).get("_id")
    if maintainer:
        out["maintainerId"] = maintainer
    out["archived"] = bool(fields.get("archived", False))
    return out


def desired_canonical(metric: DesiredMetric, ownership_tag: str) -> dict[str, Any]:
    """The YAML metric in canonical form, carrying the ownership tag."""
    fields = dict(metric.fields)
    fields["tags"] = [*(fields.get("tags") or []), ownership_tag]
    return canonical(fields)


def post_body(key: str, desired: Mapping[str, Any]) -> dict[str, Any]:
    """The exact `MetricPost` body for a desired canonical metric.

    Every default is sent explicitly, so what LaunchDarkly stores does not depend on its defaults.
    """
    body: dict[str, Any] = {"key": key}
    for field in FIELDS:
        if field == "archived" or field not in desired:
            continue
        value = desired[field]
        if field == "description" and not value:
            continue
        body[field] = value
    return body


def compared_fields(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """Fields to compare, in display order: everything either side has, except server-assigned
    fields the YAML leaves open."""
    present = set(desired) | set(actual)
    return [f for f in FIELDS if f in present and (f not in ASSIGNED_BY_SERVER or f in desired)]


def metric_type(canonical_metric: Mapping[str, Any]) -> str:
    """The metric type people know from LaunchDarkly's UI, derived from kind/isNumeric/aggregation."""
    kind = canonical_metric.get("kind")
    percentile = canonical_metric.get("analysisType") == "percentile"
    suffix = f", P{canonical_metric.get('percentileValue')}" if percentile else ""
    if kind == "custom" and canonical_metric.get("isNumeric"):
        return f"custom numeric{suffix}"
    measure = "count" if canonical_metric.get("unitAggregationType") == "sum" else "binary"
    return f"{kind} conversion {measure}{suffix}"


def connections(remote: Mapping[str, Any]) -> tuple[int, int]:
    """(experiments, guarded rollouts) a remote metric is used by, from its list representation."""
    experiments = max(int(remote.get("experimentCount") or 0), int(remote.get("activeExperimentCount") or 0))
    rollouts = int(remote.get("activeGuardedRolloutCount") or 0)
    return experiments, rollouts


def definitions_hash(desired: Iterable[tuple[str, Mapping[str, Any]]]) -> str:
    """A stable hash of a project's desired metrics (canonical, so formatting changes do not matter)."""
    payload = json.dumps(sorted(desired, key=lambda item: item[0]), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()
