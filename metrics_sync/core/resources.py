"""The resources metrics-sync manages, each described once: its routes, headers, what uses it, and its fields.

Adding a field is one row here (plus its schema entry); adding a resource is one more `Resource` (plus its
schema section and the emulator's routes). Everything else (reading, wire checks, canonical forms, reconcile,
patches, apply, export) is generic and takes a `Resource`. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metrics_sync.core.fields import (
    COUNT,
    FLAG,
    KEY,
    MEMBER,
    NUMBER,
    OBJECTS,
    TEXT,
    TEXTS,
    Field,
    Fields,
    Resource,
    ServerField,
    Wire,
    _number,
)

# Metric groups are a beta resource: LaunchDarkly answers them only with this header (metrics keep the pin).
BETA = {"LD-API-Version": "beta"}

# --- the metric -------------------------------------------------------------------------------------------

CUSTOM = frozenset({"custom"})
WEB = frozenset({"pageview", "click"})
URL_VALUE_FIELD = {"exact": "url", "canonical": "url", "substring": "substring", "regex": "pattern"}


def _numeric(so_far: Fields) -> bool:
    return bool(so_far.get("isNumeric"))


def _percentile(so_far: Fields) -> bool:
    return so_far.get("analysisType") == "percentile"


def _is_numeric(value: Any, so_far: Fields) -> bool:
    # Only custom metrics can be numeric; pageview and click are conversions.
    return bool(value) if so_far.get("kind") == "custom" else False


def _event_default(value: Any, so_far: Fields) -> dict[str, Any]:
    # LaunchDarkly: `disabled` defaults to false, except that percentile metrics cannot include units
    # without events; `value` must be 0 ("No other values are currently supported").
    given = value if isinstance(value, Mapping) else {}
    return {"disabled": bool(given.get("disabled", _percentile(so_far))), "value": _number(given.get("value", 0))}


def _event_default_document(value: Any, so_far: Fields) -> Any:
    # A percentile metric says so explicitly, as the schema's examples do.
    if _percentile(so_far) and value == {"disabled": True, "value": 0}:
        return {"disabled": True}
    return value


def _url_matcher(matcher: Mapping[str, Any]) -> dict[str, Any]:
    kind = matcher.get("kind")
    out: dict[str, Any] = {"kind": kind}
    value_field = URL_VALUE_FIELD.get(str(kind))
    if value_field and matcher.get(value_field) is not None:
        out[value_field] = matcher[value_field]
    return out


def _urls(value: Any, so_far: Fields) -> list[dict[str, Any]]:
    # An ordered list: LaunchDarkly keeps the order written (its Terraform provider's tests read back
    # `urls.0`, `urls.1` as configured), so the UI and export show the author's order.
    return [_url_matcher(u) for u in value or [] if isinstance(u, Mapping)]


def _urls_wire(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, Mapping) and all(isinstance(v, str) for v in m.values())
                                           for m in value)


def _event_default_wire(value: Any) -> bool:
    return isinstance(value, Mapping) and (value.get("disabled") is None or isinstance(value["disabled"], bool)) \
        and (value.get("value") is None or NUMBER.check(value["value"]) is True)


URLS = Wire(_urls_wire, "is not a list of URL matchers of text", shaped=True)
EVENT_DEFAULT = Wire(_event_default_wire, "is not an object of `disabled` (true or false) and `value` (a number)",
                     shaped=True)


def _maintainer(raw: Fields) -> Any:
    maintainer = raw.get("_maintainer")
    return raw.get("maintainerId") or (maintainer.get("_id") if isinstance(maintainer, Mapping) else None)


def metric_type(canonical_metric: Fields) -> str:
    """The metric type people know from LaunchDarkly's UI, derived from kind/isNumeric/aggregation."""
    kind = canonical_metric.get("kind")
    percentile = canonical_metric.get("analysisType") == "percentile"
    suffix = f", P{canonical_metric.get('percentileValue')}" if percentile else ""
    if kind == "custom" and canonical_metric.get("isNumeric"):
        return f"custom numeric{suffix}"
    measure = "count" if canonical_metric.get("unitAggregationType") == "sum" else "binary"
    return f"{kind} conversion {measure}{suffix}"


METRIC = Resource(
    kind="metric",
    name="metric",
    describe=metric_type,
    collection="/api/v2/metrics/{projectKey}",
    item="/api/v2/metrics/{projectKey}/{key}",
    list_params={"expand": "experimentCount"},
    usage_expansions=("experiments", "experimentCount", "guardedRollouts", "guardedRolloutCount", "metricGroups"),
    retire="archive",
    patch_comment=True,
    tag_filter=True,
    fields=(
        Field("name", export="always", read=lambda raw: raw.get("name") or raw.get("key"), wire=TEXT),
        Field("description", default="", wire=TEXT),
        Field("kind", export="always", wire=TEXT, located=True),
        Field("eventKey", kinds=CUSTOM, changes_results=True, required=lambda m: m.get("kind") == "custom",
              wire=TEXT, located=True),
        Field("isNumeric", default=False, normalize=_is_numeric, semantic=True, changes_results=True, wire=FLAG),
        Field("unit", kinds=CUSTOM, when=_numeric, required=_numeric, wire=TEXT),
        Field("successCriteria", kinds=CUSTOM, default="HigherThanBaseline", required=_numeric,
              changes_results=True, wire=TEXT),
        Field("unitAggregationType", default="average", semantic=True, changes_results=True, wire=TEXT),
        Field("analysisType", default="mean", changes_results=True, wire=TEXT),
        Field("percentileValue", when=_percentile, required=_percentile, changes_results=True, wire=NUMBER),
        Field("eventDefault", compare="object", default=lambda m: {"disabled": _percentile(m), "value": 0},
              normalize=_event_default, explicit=_percentile, changes_results=True,
              to_document=_event_default_document, wire=EVENT_DEFAULT),
        Field("selector", kinds=frozenset({"click"}), required=lambda m: m.get("kind") == "click",
              changes_results=True, wire=TEXT),
        Field("urls", compare="list", kinds=WEB, normalize=_urls, required=lambda m: m.get("kind") in WEB,
              changes_results=True, wire=URLS),
        Field("analysisUnits", compare="set", default=["user"], assigned_by_server=True, wire=TEXTS,
              aliases=("randomizationUnits",), located=True, in_defaults="inherit"),
        Field("tags", compare="set", default=[], wire=TEXTS, in_defaults="union"),
        # The Terraform provider: "Maintainer can only be set after create" (docs/launchdarkly-contract.md).
        Field("maintainerId", assigned_by_server=True, export="never", read=_maintainer, post=False,
              set_after_create=True, wire=TEXT, located=True, in_defaults="inherit"),
        Field("archived", default=False, post=False, normalize=lambda value, _: bool(value), wire=FLAG),
    ),
    server=(
        ServerField("_version", COUNT, kept=True),
        ServerField("_maintainer", MEMBER, kept=True),
        ServerField("experimentCount", COUNT, kept=True),
        ServerField("activeExperimentCount", COUNT, kept=True),
        ServerField("activeGuardedRolloutCount", COUNT, kept=True),
        ServerField("metricGroupCount", COUNT),
        ServerField("experiments", OBJECTS),
        ServerField("guardedRollouts", OBJECTS),
        ServerField("metricGroups", OBJECTS),
        *(ServerField(name) for name in (
            "_id", "_versionId", "_creationDate", "lastModified", "_links", "_site", "_access", "_attachedFlagCount",
            "_attachedFeatures", "category", "lastSeen", "archivedAt", "lastUsedInExperiment",
            "lastUsedInGuardedRollout", "isActive")),
    ),
)


# --- the metric group ---------------------------------------------------------------------------------------

def _group_metrics(value: Any, so_far: Fields) -> list[dict[str, Any]]:
    """A group's metrics as an ordered list of `{key, nameInGroup}`: the order is a funnel's step order, and
    LaunchDarkly keeps it for standard groups too (its Terraform provider compares the list in order, "verified
    against the live API"). `nameInGroup` belongs to funnels only: whatever a standard group's representation
    carries there (empty text, or nothing) is not compared. `MetricInGroupRep.analysisUnit` ("the context kind
    used as the analysis unit for this metric in the experiment iteration") is not the group's to set: the group
    input (`MetricInMetricGroupInput`) has only key and nameInGroup, so comparing it would show a change no apply
    can make; it matters where an iteration analyses a metric by it (a holdout: plan names the unit, and alerts
    when an update takes it out of the metric's analysis units)."""
    funnel = so_far.get("kind") == "funnel"
    out = []
    for item in value or []:
        if not isinstance(item, Mapping):
            continue
        entry: dict[str, Any] = {"key": item.get("key")}
        if funnel and item.get("nameInGroup"):
            entry["nameInGroup"] = item["nameInGroup"]
        out.append(entry)
    return out


def _group_metrics_to_api(value: Any, so_far: Fields) -> list[dict[str, Any]]:
    # MetricInMetricGroupInput requires `nameInGroup`; for a standard group it is sent empty, as the Terraform
    # provider sends it (docs/launchdarkly-contract.md, A24).
    return [{"key": m["key"], "nameInGroup": m.get("nameInGroup", "")} for m in value]


def _group_maintainer(raw: Fields) -> Any:
    # MaintainerRep: `key` is the member's ID (or a team's key); `_member._id` when the member is expanded.
    maintainer = raw.get("maintainer")
    if isinstance(maintainer, Mapping):
        member = maintainer.get("_member")
        if isinstance(member, Mapping) and member.get("_id"):
            return member["_id"]
        return maintainer.get("key")
    return raw.get("maintainerId")


def _group_metrics_wire(value: Any) -> bool | str:
    if not isinstance(value, list) or not all(isinstance(m, Mapping) for m in value):
        return False
    for metric in value:
        if not isinstance(metric.get("key"), str) or not KEY.fullmatch(metric["key"]):
            return "a metric of the group has no key that follows LaunchDarkly's key pattern"
        if metric.get("nameInGroup") is not None and not isinstance(metric["nameInGroup"], str):
            return "a metric's `nameInGroup` is not text"
        if metric.get("analysisUnit") is not None and not isinstance(metric["analysisUnit"], str):
            return "a metric's `analysisUnit` is not text"
    return True


def _maintainer_wire(value: Any) -> bool | str:
    if not isinstance(value, Mapping) or not isinstance(value.get("key", ""), str):
        return False
    member = value.get("_member")
    if member is not None and not (isinstance(member, Mapping) and isinstance(member.get("_id", ""), str)):
        return "`maintainer._member` is not a member"
    return True


GROUP_METRICS = Wire(_group_metrics_wire, "is not a list of objects")
MAINTAINER = Wire(_maintainer_wire, "is not a member or team")


def group_type(canonical_group: Fields) -> str:
    return f"{canonical_group.get('kind')} metric group"


METRIC_GROUP = Resource(
    kind="metric-group",
    name="metric group",
    describe=group_type,
    collection="/api/v2/projects/{projectKey}/metric-groups",
    item="/api/v2/projects/{projectKey}/metric-groups/{key}",
    headers=BETA,
    usage_expansions=("experiments", "experimentCount"),
    retire="delete",
    # A bare JSON Patch, as the spec declares it and LaunchDarkly's Terraform provider sends it (no comment
    # wrapper is documented for metric groups).
    patch_comment=False,
    # Whether a PATCH's `test` compares with the representation (metrics with names and links) or with the stored
    # group is undocumented (A24): a guarded patch refused while the group is exactly as planned against (same
    # `_version`, same values) is sent once more without its `test` operations.
    unguarded_retry=True,
    fields=(
        Field("name", export="always", read=lambda raw: raw.get("name") or raw.get("key"), wire=TEXT),
        Field("description", default="", wire=TEXT),
        Field("kind", export="always", wire=TEXT),
        Field("metrics", compare="list", export="always", normalize=_group_metrics, to_api=_group_metrics_to_api,
              changes_results=True, wire=GROUP_METRICS),
        Field("tags", compare="set", default=[], wire=TEXTS),
        # LaunchDarkly requires a maintainer in the POST ("maintainer ID is required"); when the definitions
        # name none, plan fills in the token's member, and updates leave LaunchDarkly's value alone.
        Field("maintainerId", assigned_by_server=True, export="never", read=_group_maintainer, wire=TEXT),
    ),
    server=(
        ServerField("_version", COUNT, kept=True),
        ServerField("maintainer", MAINTAINER, kept=True),
        ServerField("experimentCount", COUNT, kept=True),
        ServerField("activeExperimentCount", COUNT, kept=True),
        ServerField("activeGuardedRolloutCount", COUNT, kept=True),
        ServerField("experiments", OBJECTS),
        *(ServerField(name) for name in ("_id", "_links", "_creationDate", "_lastModified", "_access")),
    ),
)

RESOURCES: dict[str, Resource] = {r.kind: r for r in (METRIC, METRIC_GROUP)}
