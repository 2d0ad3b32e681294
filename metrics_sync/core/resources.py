"""The resources metrics-sync manages, each described once: its routes, headers, what uses it, and its fields.

Adding a field is one row here (plus its schema entry); adding a resource is one more `Resource` (plus its
schema section and the emulator's routes). Everything else (reading, wire checks, canonical forms, reconcile,
patches, apply, export) is generic and takes a `Resource`. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from metrics_sync.core import event_filters
from metrics_sync.core.fields import (
    COUNT,
    FLAG,
    INTEGER,
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

_HEX = re.compile(r"[a-fA-F0-9]{24}")

# Metric groups are a beta resource: LaunchDarkly answers them only with this header (metrics keep the pin).
BETA = {"LD-API-Version": "beta"}

# --- the metric -------------------------------------------------------------------------------------------

CUSTOM = frozenset({"custom"})
TRACE = frozenset({"trace"})
# The kinds that can be numeric (MetricPost.isNumeric: "Required for custom and trace metrics only").
MEASURED = CUSTOM | TRACE
WEB = frozenset({"pageview", "click"})
# LaunchDarkly's own data source, where SDK events go: what a metric without `dataSource` uses (A35).
HOSTED = "launchdarkly-hosted"
# DenominatorPost's fields (launchdarkly-api 25.0.1), in the order export writes them.
DENOMINATOR_FIELDS = ("eventName", "isNumeric", "dataSource", "unitAggregationType", "unitAggregationField",
                      "valueColumn", "filters", "windowStartOffset", "windowEndOffset", "winsorLowerPercentile",
                      "winsorUpperPercentile", "winsorIncludeImputed")
URL_VALUE_FIELD = {"exact": "url", "canonical": "url", "substring": "substring", "regex": "pattern"}


def _numeric(so_far: Fields) -> bool:
    return bool(so_far.get("isNumeric"))


def _numeric_trace(so_far: Fields) -> bool:
    return so_far.get("kind") == "trace" and _numeric(so_far)


def _percentile(so_far: Fields) -> bool:
    return so_far.get("analysisType") == "percentile"


def _count_distinct(so_far: Fields) -> bool:
    return so_far.get("unitAggregationType") == "count_distinct"


def _is_numeric(value: Any, so_far: Fields) -> bool:
    # Only custom and trace metrics can be numeric; pageview and click are conversions.
    return bool(value) if so_far.get("kind") in MEASURED else False


def _true_or_absent(value: Any, _so_far: Fields) -> Any:
    # A flag LaunchDarkly documents no default for: false and absent mean the same, so both are "absent" (not
    # sent, not exported, removed when the definitions drop it).
    return True if value is True else None


def _data_source(value: Any, _so_far: Fields | None = None) -> Any:
    """`{key, environmentKey}` (the `_name` and `_integrationKey` LaunchDarkly adds are its own); LaunchDarkly's
    hosted source is the same as none (A35)."""
    if not isinstance(value, dict):
        return value or None
    out = {k: v for k, v in value.items() if not str(k).startswith("_") and v not in (None, "")}
    return None if out == {"key": HOSTED} or not out else out


def _denominator(value: Any, _so_far: Fields) -> Any:
    """A ratio metric's denominator in the form it is compared in: DenominatorPost's fields, the filter tree and
    data source canonical, flags LaunchDarkly documents no default for dropped when false."""
    if not isinstance(value, dict) or not value:
        return value or None
    out: dict[str, Any] = {}
    for name in DENOMINATOR_FIELDS:
        item = value.get(name)
        if name == "filters":
            item = event_filters.normalize(item)
        elif name == "dataSource":
            item = _data_source(item) if isinstance(item, dict) else item
        elif isinstance(item, bool):
            item = item or None
        if item not in (None, "", {}):
            out[name] = _number(item)
    return out or None


def _event_default(value: Any, so_far: Fields) -> dict[str, Any]:
    # LaunchDarkly: `disabled` defaults to false, except that percentile metrics cannot include units
    # without events; `value` must be 0 ("No other values are currently supported").
    given = value if isinstance(value, dict) else {}
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
    return [_url_matcher(u) for u in value or [] if isinstance(u, dict)]


def _urls_wire(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, dict) and all(isinstance(v, str) for v in m.values())
                                           for m in value)


def _event_default_wire(value: Any) -> bool | str:
    if not isinstance(value, dict) or not (value.get("disabled") is None or isinstance(value["disabled"], bool)):
        return False
    if value.get("value") is None or NUMBER.check(value["value"]) is True:
        return True
    return "`eventDefault.value` is not a number we can use" if isinstance(value["value"], (int, float)) else False


def _data_source_wire(value: Any) -> bool | str:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return False
    return isinstance(value.get("key"), str) or "a data source has no `key`"


def _denominator_wire(value: Any) -> bool | str:
    if not isinstance(value, dict):
        return False
    for name, item in value.items():
        if item is None:
            continue
        verdict = event_filters.wire(item) if name == "filters" else _data_source_wire(item) \
            if name == "dataSource" else isinstance(item, (str, int, float, bool))
        if verdict is not True:
            return f"`denominator.{name}`: {verdict}" if isinstance(verdict, str) else \
                f"`denominator.{name}` is not a plain value"
    return True


FILTERS = Wire(event_filters.wire, "is not an event filter", shaped=True)
DATA_SOURCE = Wire(_data_source_wire, "is not a data source (`key`, `environmentKey`)", shaped=True)
DENOMINATOR = Wire(_denominator_wire, "is not a denominator", shaped=True)
URLS = Wire(_urls_wire, "is not a list of URL matchers of text", shaped=True)
EVENT_DEFAULT = Wire(_event_default_wire, "is not an object of `disabled` (true or false) and `value` (a number)",
                     shaped=True)


def _member_id(value: Any, _so_far: Fields) -> Any:
    # A member ID is hexadecimal in either case (the Terraform provider's pattern `^[a-fA-F0-9]{24}$`): the
    # same member however it is written. A team's key (a group's maintainer may be a team) is kept as it is.
    return value.lower() if isinstance(value, str) and len(value) == 24 and _HEX.fullmatch(value) else value


def _maintainer(raw: Fields) -> Any:
    maintainer = raw.get("_maintainer")
    return raw.get("maintainerId") or (maintainer.get("_id") if isinstance(maintainer, dict) else None)


def metric_type(canonical_metric: Fields) -> str:
    """The metric type people know from LaunchDarkly's UI, derived from kind/isNumeric/aggregation."""
    kind = canonical_metric.get("kind")
    percentile = canonical_metric.get("analysisType") == "percentile"
    suffix = f", P{canonical_metric.get('percentileValue')}" if percentile else ""
    if canonical_metric.get("denominator"):
        suffix += ", ratio"
    if kind in MEASURED and canonical_metric.get("isNumeric"):
        return f"{kind} numeric{suffix}"
    measure = {"sum": "count", "count_distinct": "count distinct"}.get(
        str(canonical_metric.get("unitAggregationType")), "binary")
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
        Field("traceQuery", kinds=TRACE, required=lambda m: m.get("kind") == "trace", changes_results=True,
              wire=TEXT),
        Field("isNumeric", default=False, normalize=_is_numeric, semantic=True, changes_results=True, wire=FLAG),
        Field("traceValueLocation", kinds=TRACE, when=_numeric, required=_numeric_trace, changes_results=True,
              wire=TEXT),
        Field("unit", kinds=MEASURED, when=_numeric, required=_numeric, wire=TEXT),
        Field("successCriteria", kinds=MEASURED, default="HigherThanBaseline", required=_numeric,
              changes_results=True, wire=TEXT),
        Field("dataSource", compare="object", normalize=_data_source, semantic=True, changes_results=True,
              wire=DATA_SOURCE),
        # Not in MetricRep (launchdarkly-api 25.0.1): sent when the metric is created, never compared (A36).
        Field("valueColumn", kinds=CUSTOM, when=_numeric, export="never", read_back=False, wire=TEXT),
        Field("unitAggregationType", default="average", semantic=True, changes_results=True, wire=TEXT),
        Field("unitAggregationField", when=_count_distinct, required=_count_distinct, changes_results=True,
              wire=TEXT),
        Field("analysisType", default="mean", changes_results=True, wire=TEXT),
        Field("percentileValue", when=_percentile, required=_percentile, changes_results=True, wire=NUMBER),
        Field("eventDefault", compare="object", default=lambda m: {"disabled": _percentile(m), "value": 0},
              normalize=_event_default, explicit=_percentile, changes_results=True,
              to_document=_event_default_document, wire=EVENT_DEFAULT),
        Field("filters", compare="object", normalize=event_filters.normalize, explain=event_filters.explain,
              changes_results=True, wire=FILTERS),
        Field("denominator", compare="object", kinds=CUSTOM, normalize=_denominator, semantic=True,
              changes_results=True, wire=DENOMINATOR),
        # "Not yet implemented" in the spec: validate warns that LaunchDarkly ignores them today.
        Field("windowStartOffset", changes_results=True, wire=INTEGER),
        Field("windowEndOffset", changes_results=True, wire=INTEGER),
        Field("winsorLowerPercentile", kinds=MEASURED, when=_numeric, changes_results=True, wire=NUMBER),
        Field("winsorUpperPercentile", kinds=MEASURED, when=_numeric, changes_results=True, wire=NUMBER),
        Field("winsorIncludeImputed", kinds=MEASURED, when=_numeric, normalize=_true_or_absent,
              changes_results=True, wire=FLAG),
        Field("selector", kinds=frozenset({"click"}), required=lambda m: m.get("kind") == "click",
              changes_results=True, wire=TEXT),
        Field("urls", compare="list", kinds=WEB, normalize=_urls, required=lambda m: m.get("kind") in WEB,
              changes_results=True, wire=URLS),
        Field("analysisUnits", compare="set", default=["user"], assigned_by_server=True, wire=TEXTS,
              aliases=("randomizationUnits",), located=True, in_defaults="inherit"),
        Field("tags", compare="set", default=[], wire=TEXTS, in_defaults="union"),
        # The Terraform provider: "Maintainer can only be set after create" (docs/launchdarkly-contract.md).
        Field("maintainerId", assigned_by_server=True, export="never", read=_maintainer, post=False,
              normalize=_member_id, set_after_create=True, wire=TEXT, located=True, in_defaults="inherit"),
        Field("archived", default=False, post=False, normalize=lambda value, _: bool(value), wire=FLAG),
    ),
    server=(
        ServerField("_version", COUNT, kept=True),
        ServerField("_maintainer", MEMBER, kept=True),
        ServerField("_versionId", TEXT),
        # Deprecated and ignored by LaunchDarkly (gone from launchdarkly-api 25.0.1): read, never written or
        # exported; the schema refuses it in the definitions.
        ServerField("winsorExcludeImputed", FLAG),
        ServerField("experimentCount", COUNT, kept=True),
        ServerField("activeExperimentCount", COUNT, kept=True),
        ServerField("activeGuardedRolloutCount", COUNT, kept=True),
        ServerField("metricGroupCount", COUNT),
        ServerField("experiments", OBJECTS),
        ServerField("guardedRollouts", OBJECTS),
        ServerField("metricGroups", OBJECTS),
        *(ServerField(name) for name in (
            "_id", "_creationDate", "lastModified", "_links", "_site", "_access", "_attachedFlagCount",
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
        if not isinstance(item, dict):
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
    if isinstance(maintainer, dict):
        member = maintainer.get("_member")
        if isinstance(member, dict) and member.get("_id"):
            return member["_id"]
        return maintainer.get("key")
    return raw.get("maintainerId")


def _group_metrics_wire(value: Any) -> bool | str:
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
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
    if not isinstance(value, dict) or not isinstance(value.get("key", ""), str):
        return False
    member = value.get("_member")
    if member is not None and not (isinstance(member, dict) and isinstance(member.get("_id", ""), str)):
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
        Field("maintainerId", assigned_by_server=True, export="never", read=_group_maintainer, normalize=_member_id,
              wire=TEXT),
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
