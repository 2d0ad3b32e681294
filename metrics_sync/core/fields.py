"""What metrics-sync manages of a LaunchDarkly resource, as one table of fields.

Each `Field` says which kinds use it, LaunchDarkly's default, how it compares, whether LaunchDarkly assigns
it when omitted, whether it goes into the POST body, and whether export writes it. Everything that needs
to know what a field *is* reads this table:
  * `Resource.canonical()` — the one form YAML and API representations are compared in (defaults applied to
    both sides, fields a kind does not use dropped, sets sorted), so "apply, then plan" shows no changes;
  * `Resource.post_body()` — the exact create body;
  * `Resource.document()` — what export writes (only what differs from the defaults);
  * the planner — which fields to compare, which are sets, which change what a metric measures.
`tests/core/test_fields.py` holds the table against `schemas/metrics.schema.json`, so the two cannot drift.
Pure: no I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Compare = Literal["scalar", "set", "list", "object"]
Export = Literal["always", "non-default", "never"]
Fields = Mapping[str, Any]
# A condition on the canonical form built so far (the fields before this one), e.g. "the metric is numeric".
Condition = Callable[[Fields], bool]


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()


@dataclass(frozen=True)
class Field:
    name: str
    compare: Compare = "scalar"
    kinds: frozenset[str] | None = None  # the kinds that use this field; None: every kind
    when: Condition | None = None  # a further condition, on the fields before this one in the table
    # LaunchDarkly's value when the field is omitted; a callable computes it from the fields before it.
    default: Any = NO_DEFAULT
    assigned_by_server: bool = False  # LaunchDarkly picks a value when omitted: compared only when the YAML sets it
    post: bool = True  # sent in the create body
    set_after_create: bool = False  # LaunchDarkly does not take it in a POST: apply sets it with a PATCH after
    export: Export = "non-default"
    required: Condition | None = None  # the schema requires it (export writes it even when it equals the default)
    explicit: Condition | None = None  # export writes it even at its default, so the file says so
    semantic: bool = False  # changing it changes what the metric measures (binary <-> count <-> numeric)
    # Changing it changes the results of experiments that use the resource (a warning names the running ones).
    changes_results: bool = False
    # How a value read from YAML or the API becomes canonical; `read` finds it in the raw fields (aliases).
    read: Callable[[Fields], Any] | None = None
    normalize: Callable[[Any, Fields], Any] | None = None
    to_document: Callable[[Any, Fields], Any] | None = None  # how export writes the canonical value
    to_api: Callable[[Any, Fields], Any] | None = None  # how a canonical value is sent (POST body, PATCH value)

    def applies(self, so_far: Fields) -> bool:
        if self.kinds is not None and so_far.get("kind") not in self.kinds:
            return False
        return self.when is None or self.when(so_far)

    def default_for(self, so_far: Fields) -> Any:
        return self.default(so_far) if callable(self.default) else self.default


@dataclass(frozen=True)
class Resource:
    """A kind of LaunchDarkly resource metrics-sync manages, with its fields in display order."""

    name: str  # "metric", "metric group": what messages call it
    fields: tuple[Field, ...]
    # Fields of a representation besides the table that the tool reads (identity, version, counts).
    also_read: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: a field is listed twice")

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @functools.cached_property  # read for every item of every page
    def remote_fields(self) -> frozenset[str]:
        """What plan keeps of each representation: the table's fields, their aliases and `also_read`."""
        return frozenset(self.names) | self.also_read

    def kept(self, rep: Mapping[str, Any]) -> dict[str, Any]:
        """What plan keeps of a representation: the fields it reads, with a maintainer reduced to its ID (a page
        of a big project is held whole in memory until planned)."""
        out = {k: v for k, v in rep.items() if k in self.remote_fields}
        member = out.get("_maintainer")
        if isinstance(member, Mapping):
            out["_maintainer"] = {"_id": member.get("_id")}
        maintainer = out.get("maintainer")
        if isinstance(maintainer, Mapping):
            inner = maintainer.get("_member")
            out["maintainer"] = {"key": maintainer.get("key"),
                                 **({"_member": {"_id": inner.get("_id")}} if isinstance(inner, Mapping) else {})}
        return out

    def with_compare(self, compare: Compare) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.compare == compare)

    @property
    def set_after_create(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.set_after_create)

    @property
    def semantic_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.semantic)

    @property
    def results_fields(self) -> tuple[str, ...]:
        """Fields whose change changes the results of experiments that use the resource."""
        return tuple(f.name for f in self.fields if f.changes_results)

    def api_value(self, name: str, value: Any, canonical_form: Fields) -> Any:
        """A canonical value as LaunchDarkly takes it in a request."""
        f = self.field(name)
        return f.to_api(value, canonical_form) if f.to_api is not None and value is not None else value

    def canonical(self, raw: Fields) -> dict[str, Any]:
        """The canonical form of `raw` (YAML fields or an API representation). Runs for every metric of a plan,
        both sides: `Field.applies` and `_number` are inlined here."""
        out: dict[str, Any] = {}
        for f in self.fields:
            if f.kinds is not None and out.get("kind") not in f.kinds:
                continue
            if f.when is not None and not f.when(out):
                continue
            value = f.read(raw) if f.read is not None else raw.get(f.name)
            if value is None or value == "" or value == []:
                if f.assigned_by_server:
                    continue  # left open: LaunchDarkly's choice is not compared
                value = f.default_for(out) if f.default is not NO_DEFAULT else None
            if f.normalize is not None:
                value = f.normalize(value, out)
            elif f.compare == "set":
                value = sorted({str(v) for v in value or []})
            elif type(value) is float and value.is_integer():  # 1.0 and 1 are the same JSON number
                value = int(value)
            out[f.name] = value
        return out

    def compared(self, desired: Fields, actual: Fields) -> list[str]:
        """Fields to compare, in display order: what either side has, except server-assigned fields the
        YAML leaves open."""
        present = set(desired) | set(actual)
        return [f.name for f in self.fields
                if f.name in present and (not f.assigned_by_server or f.name in desired)]

    def post_body(self, key: str, desired: Fields) -> dict[str, Any]:
        """The create body for a desired canonical form. Every default is sent explicitly, so what
        LaunchDarkly stores does not depend on its defaults; empty text is left out."""
        body: dict[str, Any] = {"key": key}
        for f in self.fields:
            if f.post and f.name in desired and desired[f.name] != "":
                body[f.name] = self.api_value(f.name, desired[f.name], desired)
        return body

    def document(self, canonical_form: Fields, *, leave_out: Iterable[str] = ()) -> dict[str, Any]:
        """What a definitions file says of a resource: only what differs from the defaults, plus what the
        schema requires, in display order. `leave_out` drops tags (e.g. the ownership tag)."""
        skip_tags = set(leave_out)
        out: dict[str, Any] = {}
        for f in self.fields:
            if f.export == "never" or f.name not in canonical_form:
                continue
            value = canonical_form[f.name]
            if f.name == "tags":
                value = [t for t in value if t not in skip_tags]
            default = f.default_for(canonical_form) if f.default is not NO_DEFAULT else NO_DEFAULT
            needed = f.export == "always" or any(rule is not None and rule(canonical_form)
                                                 for rule in (f.required, f.explicit))
            if not needed and (value == default or value in ([], "")):
                continue
            out[f.name] = f.to_document(value, canonical_form) if f.to_document else value
        return out


def _number(value: Any) -> Any:
    """1.0 and 1 are the same JSON number: keep whole floats as ints so they compare equal."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


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


def _analysis_units(raw: Fields) -> Any:
    return raw.get("analysisUnits") or raw.get("randomizationUnits")  # the deprecated name is an alias


def _maintainer(raw: Fields) -> Any:
    maintainer = raw.get("_maintainer")
    return raw.get("maintainerId") or (maintainer.get("_id") if isinstance(maintainer, Mapping) else None)


METRIC = Resource(
    name="metric",
    fields=(
        Field("name", export="always", read=lambda raw: raw.get("name") or raw.get("key")),
        Field("description", default=""),
        Field("kind", export="always"),
        Field("eventKey", kinds=CUSTOM, changes_results=True, required=lambda m: m.get("kind") == "custom"),
        Field("isNumeric", default=False, normalize=_is_numeric, semantic=True, changes_results=True),
        Field("unit", kinds=CUSTOM, when=_numeric, required=_numeric),
        Field("successCriteria", kinds=CUSTOM, default="HigherThanBaseline", required=_numeric,
              changes_results=True),
        Field("unitAggregationType", default="average", semantic=True, changes_results=True),
        Field("analysisType", default="mean", changes_results=True),
        Field("percentileValue", when=_percentile, required=_percentile, changes_results=True),
        Field("eventDefault", compare="object", default=lambda m: {"disabled": _percentile(m), "value": 0},
              normalize=_event_default, explicit=_percentile, changes_results=True,
              to_document=_event_default_document),
        Field("selector", kinds=frozenset({"click"}), required=lambda m: m.get("kind") == "click",
              changes_results=True),
        Field("urls", compare="list", kinds=WEB, normalize=_urls, required=lambda m: m.get("kind") in WEB,
              changes_results=True),
        Field("analysisUnits", compare="set", default=["user"], assigned_by_server=True, read=_analysis_units),
        Field("tags", compare="set", default=[]),
        # The Terraform provider: "Maintainer can only be set after create" (docs/launchdarkly-contract.md).
        Field("maintainerId", assigned_by_server=True, export="never", read=_maintainer, post=False,
              set_after_create=True),
        Field("archived", default=False, post=False, normalize=lambda value, _: bool(value)),
    ),
    also_read=frozenset({"key", "_version", "_maintainer", "randomizationUnits", "experimentCount",
                         "activeExperimentCount", "activeGuardedRolloutCount"}),
)


def metric_type(canonical_metric: Fields) -> str:
    """The metric type people know from LaunchDarkly's UI, derived from kind/isNumeric/aggregation."""
    kind = canonical_metric.get("kind")
    percentile = canonical_metric.get("analysisType") == "percentile"
    suffix = f", P{canonical_metric.get('percentileValue')}" if percentile else ""
    if kind == "custom" and canonical_metric.get("isNumeric"):
        return f"custom numeric{suffix}"
    measure = "count" if canonical_metric.get("unitAggregationType") == "sum" else "binary"
    return f"{kind} conversion {measure}{suffix}"


# --- the metric group ---------------------------------------------------------------------------------------

def _group_metrics(value: Any, so_far: Fields) -> list[dict[str, Any]]:
    """A group's metrics as an ordered list of `{key, nameInGroup}`: the order is a funnel's step order, and
    LaunchDarkly keeps it for standard groups too (its Terraform provider compares the list in order, "verified
    against the live API"). `nameInGroup` belongs to funnels only: whatever a standard group's representation
    carries there (empty text, or nothing) is not compared."""
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


METRIC_GROUP = Resource(
    name="metric group",
    fields=(
        Field("name", export="always", read=lambda raw: raw.get("name") or raw.get("key")),
        Field("description", default=""),
        Field("kind", export="always"),
        Field("metrics", compare="list", export="always", normalize=_group_metrics, to_api=_group_metrics_to_api,
              changes_results=True),
        Field("tags", compare="set", default=[]),
        # LaunchDarkly requires a maintainer in the POST ("maintainer ID is required"); when the definitions
        # name none, plan fills in the token's member, and updates leave LaunchDarkly's value alone.
        Field("maintainerId", assigned_by_server=True, export="never", read=_group_maintainer),
    ),
    also_read=frozenset({"key", "_version", "maintainer", "experimentCount", "activeExperimentCount",
                         "activeGuardedRolloutCount"}),
)

RESOURCES = {"metric": METRIC, "metric-group": METRIC_GROUP}


def group_type(canonical_group: Fields) -> str:
    return f"{canonical_group.get('kind')} metric group"
