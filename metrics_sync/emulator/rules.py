"""LaunchDarkly's rules for a metric's user-editable fields, as the emulator enforces them.

Sources (see docs/emulator.md): the `MetricPost` schema of LaunchDarkly's OpenAPI spec (types, enums,
"required for custom", percentile 0–100, eventDefault value 0), and the per-kind rules LaunchDarkly's
own Terraform provider applies before calling the API (click needs selector + urls, pageview needs
urls, numeric needs unit + successCriteria, percentile needs percentileValue and excludes units
without events). Unknown fields are not errors: LaunchDarkly ignores them silently.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

KEY_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
TAG_PATTERN = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")
# The Terraform provider's pattern for member IDs: hexadecimal in either case.
MEMBER_ID_PATTERN = re.compile(r"^[a-fA-F0-9]{24}$")
FILTER_TYPES = ("contextAttribute", "eventProperty", "group")
# DenominatorPost's fields (launchdarkly-api 25.0.1); `winsorExcludeImputed` is deprecated and ignored.
DENOMINATOR_FIELDS = ("eventName", "isNumeric", "dataSource", "unitAggregationType", "unitAggregationField",
                      "valueColumn", "filters", "windowStartOffset", "windowEndOffset", "winsorLowerPercentile",
                      "winsorUpperPercentile", "winsorIncludeImputed")

KINDS = ("pageview", "click", "custom", "trace")
SUCCESS_CRITERIA = ("HigherThanBaseline", "LowerThanBaseline")
UNIT_AGGREGATIONS = ("average", "sum", "count_distinct")
ANALYSIS_TYPES = ("mean", "percentile")
URL_KINDS = {"exact": "url", "canonical": "url", "substring": "substring", "regex": "pattern"}

# The user-editable fields the emulator stores (MetricPost's fields, plus `archived`); anything else in a
# request body is ignored.
EDITABLE_FIELDS = (
    "name", "description", "kind", "selector", "urls", "isNumeric", "unit", "eventKey", "successCriteria",
    "tags", "randomizationUnits", "analysisUnits", "maintainerId", "unitAggregationType", "analysisType",
    "percentileValue", "eventDefault", "archived", "dataSource", "filters", "windowStartOffset",
    "windowEndOffset", "winsorLowerPercentile", "winsorUpperPercentile", "winsorIncludeImputed", "traceQuery",
    "traceValueLocation", "unitAggregationField", "denominator", "valueColumn",
)

_TYPES: dict[str, tuple[type, ...]] = {
    "key": (str,), "name": (str,), "description": (str,), "kind": (str,), "selector": (str,), "urls": (list,),
    "isNumeric": (bool,), "unit": (str,), "eventKey": (str,), "successCriteria": (str,), "tags": (list,),
    "randomizationUnits": (list,), "analysisUnits": (list,), "maintainerId": (str,),
    "unitAggregationType": (str,), "analysisType": (str,), "percentileValue": (int,),
    "eventDefault": (dict,), "archived": (bool,), "dataSource": (dict,), "filters": (dict,),
    "windowStartOffset": (int,), "windowEndOffset": (int,), "winsorLowerPercentile": (int, float),
    "winsorUpperPercentile": (int, float), "winsorIncludeImputed": (bool,), "traceQuery": (str,),
    "traceValueLocation": (str,), "unitAggregationField": (str,), "denominator": (dict,),
    "valueColumn": (str,),
}


class RuleError(Exception):
    """The metric breaks one of LaunchDarkly's rules (400 invalid_request)."""


def _check_types(metric: dict[str, Any]) -> None:
    for field, types in _TYPES.items():
        value = metric.get(field)
        if value is None:
            continue
        if not isinstance(value, types) or (types == (int,) and isinstance(value, bool)):
            raise RuleError(f"{field}: invalid type")


def _present(metric: dict[str, Any], field: str) -> bool:
    value = metric.get(field)
    return value not in (None, "", [])


def check_metric(metric: dict[str, Any]) -> None:
    """Raise RuleError with LaunchDarkly-style text when `metric` is not a valid metric."""
    _check_types(metric)
    key = metric.get("key")
    if not key:
        raise RuleError("key: required")
    if not KEY_PATTERN.fullmatch(key):
        raise RuleError("key: must contain only letters, numbers, '.', '-', or '_' and must start with an alphanumeric")
    kind = metric.get("kind")
    if not kind:
        raise RuleError("kind: required")
    if kind not in KINDS:
        raise RuleError(f"kind: must be one of {', '.join(KINDS)}")
    for field, allowed in (("successCriteria", SUCCESS_CRITERIA), ("unitAggregationType", UNIT_AGGREGATIONS),
                           ("analysisType", ANALYSIS_TYPES)):
        if metric.get(field) is not None and metric[field] not in allowed:
            raise RuleError(f"{field}: must be one of {', '.join(allowed)}")
    if metric.get("unitAggregationType") == "count_distinct" and not metric.get("unitAggregationField"):
        raise RuleError("unitAggregationField: required for count_distinct")
    source = metric.get("dataSource")
    if source is not None and not isinstance(source.get("key"), str):
        raise RuleError("dataSource.key: required")
    if metric.get("filters") is not None:
        check_filter(metric["filters"], "filters")
    check_winsor(metric, "")
    if metric.get("denominator") is not None:
        check_denominator(metric["denominator"])

    if kind == "custom":
        if not _present(metric, "eventKey"):
            raise RuleError("eventKey: required for custom metrics")
        if metric.get("isNumeric") is None:
            raise RuleError("isNumeric: required for custom metrics")
        if metric["isNumeric"]:
            if not _present(metric, "successCriteria"):
                raise RuleError("successCriteria: required for numeric custom metrics")
            if not _present(metric, "unit"):
                raise RuleError("unit: required for numeric custom metrics")
    elif kind == "click":
        if not _present(metric, "selector"):
            raise RuleError("selector: required for click metrics")
        if not _present(metric, "urls"):
            raise RuleError("urls: required for click metrics")
    elif kind == "pageview" and not _present(metric, "urls"):
        raise RuleError("urls: required for pageview metrics")
    elif kind == "trace":
        if not _present(metric, "traceQuery"):
            raise RuleError("traceQuery: required for trace metrics")
        if metric.get("isNumeric") is None:
            raise RuleError("isNumeric: required for trace metrics")
        if metric["isNumeric"]:
            if not _present(metric, "traceValueLocation"):
                raise RuleError("traceValueLocation: required for numeric trace metrics")
            if not _present(metric, "successCriteria"):
                raise RuleError("successCriteria: required for numeric trace metrics")

    for index, url in enumerate(metric.get("urls") or []):
        if not isinstance(url, dict) or url.get("kind") not in URL_KINDS:
            raise RuleError(f"urls[{index}].kind: must be one of {', '.join(URL_KINDS)}")
        needed = URL_KINDS[url["kind"]]
        if not isinstance(url.get(needed), str) or not url[needed]:
            raise RuleError(f"urls[{index}].{needed}: required for {url['kind']} URLs")

    percentile = metric.get("percentileValue")
    if metric.get("analysisType") == "percentile":
        if percentile is None:
            raise RuleError("percentileValue: required when analysisType is percentile")
        if (metric.get("eventDefault") or {}).get("disabled") is False:
            raise RuleError("eventDefault: units without events are not supported for percentile metrics")
    if percentile is not None and not 0 <= percentile <= 100:
        raise RuleError("percentileValue: must be between 0 and 100")

    default = metric.get("eventDefault")
    if default is not None:
        if "disabled" in default and not isinstance(default["disabled"], bool):
            raise RuleError("eventDefault.disabled: invalid type")
        value = default.get("value", 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RuleError("eventDefault.value: invalid type")
        if not default.get("disabled") and value != 0:
            raise RuleError("eventDefault.value: must be 0. No other values are currently supported")

    for field in ("tags", "randomizationUnits", "analysisUnits"):
        for item in metric.get(field) or []:
            if not isinstance(item, str) or (field == "tags" and not TAG_PATTERN.fullmatch(item)):
                raise RuleError(f"{field}: invalid value {item!r}")
    maintainer = metric.get("maintainerId")
    if maintainer is not None and not MEMBER_ID_PATTERN.fullmatch(maintainer):
        raise RuleError("maintainerId: must be a member ID")


def check_filter(node: Any, where: str, depth: int = 0) -> None:
    """EventFilter: `type`, `op`, `values` and `negate` required; `attribute` unless a group; a group's values
    are nodes; numeric values at most 14 decimal places."""
    if depth > 20 or not isinstance(node, dict):
        raise RuleError(f"{where}: invalid filter")
    for field in ("type", "op", "values", "negate"):
        if node.get(field) is None:
            raise RuleError(f"{where}.{field}: required")
    if node["type"] not in FILTER_TYPES:
        raise RuleError(f"{where}.type: must be one of {', '.join(FILTER_TYPES)}")
    if not isinstance(node["op"], str) or not isinstance(node["negate"], bool) or not isinstance(node["values"], list):
        raise RuleError(f"{where}: invalid type")
    if node["type"] == "group":
        for index, member in enumerate(node["values"]):
            check_filter(member, f"{where}.values[{index}]", depth + 1)
        return
    if not isinstance(node.get("attribute"), str) or not node["attribute"]:
        raise RuleError(f"{where}.attribute: required")
    for index, value in enumerate(node["values"]):
        if not isinstance(value, (str, int, float, bool)):
            raise RuleError(f"{where}.values[{index}]: invalid value")
        exponent = Decimal(repr(value)).as_tuple().exponent if isinstance(value, float) else 0
        if isinstance(exponent, int) and exponent < -14:
            raise RuleError(f"{where}.values[{index}]: Numeric values must not exceed 14 decimal places")


def check_winsor(fields: dict[str, Any], prefix: str) -> None:
    lower, upper = fields.get("winsorLowerPercentile"), fields.get("winsorUpperPercentile")
    for name, value in (("winsorLowerPercentile", lower), ("winsorUpperPercentile", upper)):
        if value is not None and not 0 < value < 100:
            raise RuleError(f"{prefix}{name}: must be in the open interval (0, 100)")
    if lower is not None and upper is not None and upper <= lower:
        raise RuleError(f"{prefix}winsorUpperPercentile: must be greater than winsorLowerPercentile")


def check_denominator(denominator: Any) -> None:
    if not isinstance(denominator, dict):
        raise RuleError("denominator: invalid type")
    if not isinstance(denominator.get("eventName"), str) or not denominator["eventName"]:
        raise RuleError("denominator.eventName: required")
    aggregation = denominator.get("unitAggregationType")
    if aggregation is not None and aggregation not in UNIT_AGGREGATIONS:
        raise RuleError(f"denominator.unitAggregationType: must be one of {', '.join(UNIT_AGGREGATIONS)}")
    if aggregation == "count_distinct" and not denominator.get("unitAggregationField"):
        raise RuleError("denominator.unitAggregationField: required for count_distinct")
    if denominator.get("filters") is not None:
        check_filter(denominator["filters"], "denominator.filters")
    check_winsor(denominator, "denominator.")


def stored_denominator(denominator: dict[str, Any]) -> dict[str, Any]:
    """What LaunchDarkly keeps of a DenominatorPost: its own fields (the deprecated winsorExcludeImputed and
    anything unknown are ignored)."""
    return {k: v for k, v in denominator.items() if k in DENOMINATOR_FIELDS and v is not None}
