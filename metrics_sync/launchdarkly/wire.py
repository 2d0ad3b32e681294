"""What LaunchDarkly sends is outside input: parse it strictly and check its shape before anything uses it.

* JSON: no NaN or Infinity (not JSON), nesting at most `MAX_DEPTH` deep (a deeply nested answer would
  otherwise exhaust recursion in any code that walks it);
* a metric representation: a mapping whose `key` follows LaunchDarkly's key pattern (so a key can never
  be `.` or `..`, which would change the meaning of a URL path) and whose fields metrics-sync reads have
  the types the spec gives them. A metric of the wrong shape is an error naming it, never a skipped
  metric: skipping one would plan a create for a metric that exists.
Pure functions; the client turns a problem into an `ApiError`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 32
# LaunchDarkly's key pattern for metrics and projects (MetricPost.key; the schema's `key`), matched whole.
KEY = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{0,255}")

_TEXT = ("name", "description", "kind", "eventKey", "unit", "selector", "successCriteria", "unitAggregationType",
         "analysisType", "maintainerId")
_FLAGS = ("isNumeric", "archived")
_COUNTERS = ("_version", "experimentCount", "activeExperimentCount", "activeGuardedRolloutCount", "metricGroupCount")
_TEXT_LISTS = ("tags", "analysisUnits", "randomizationUnits")
_OBJECT_LISTS = ("urls", "experiments", "guardedRollouts", "metricGroups")


class BadJson(ValueError):
    pass


def _no_constants(name: str) -> Any:
    raise BadJson(f"it holds {name}, which is not JSON")


def decode(content: bytes, *, walk: bool = True) -> Any:
    """Parse an answer's body: standard JSON only, nested at most MAX_DEPTH deep. With `walk=False` the depth
    is left to the caller (a page of the list checks each item it keeps: walking whole pages cost more than
    parsing them); the parser's own recursion guard still stops an answer nested thousands deep."""
    try:
        data = json.loads(content, parse_constant=_no_constants)
    except RecursionError:
        raise BadJson(f"it is nested deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError:
        raise BadJson("it is not UTF-8 text") from None
    except BadJson:
        raise
    except ValueError:
        raise BadJson("it is not valid JSON") from None
    if walk and depth(data) > MAX_DEPTH:
        raise BadJson(f"it is nested deeper than {MAX_DEPTH} levels")
    return data


def depth(value: Any) -> int:
    """How deeply `value` nests lists and mappings (iterative: any depth is measured safely; scalars are never
    pushed, so the walk costs one step per list or mapping)."""
    if not isinstance(value, (dict, list)):
        return 0
    deepest, stack = 1, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if level > deepest:
            deepest = level
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


# Fields of a metric whose whole shape metric_problem checks (so their depth is known): not walked again.
SHAPED_METRIC_FIELDS = frozenset({"urls", "eventDefault", "tags", "analysisUnits", "randomizationUnits"})


def kept_depth(item: Mapping[str, Any], shaped: frozenset[str] = frozenset()) -> int:
    """How deeply the fields of `item` nest, leaving out those whose shape is already checked."""
    deepest = 0
    for name, value in item.items():
        if isinstance(value, (dict, list)) and name not in shaped:
            deepest = max(deepest, depth(value))
    return deepest


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _flag(value: Any) -> bool:
    return isinstance(value, bool)


def _counter(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, Mapping) for v in value)


def _urls(value: Any) -> bool:
    return _objects(value) and all(isinstance(v, str) for matcher in value for v in matcher.values())


def _event_default(value: Any) -> bool:
    return isinstance(value, Mapping) and (value.get("disabled") is None or isinstance(value["disabled"], bool)) \
        and (value.get("value") is None or _is_number(value["value"]))


def _member(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("_id", ""), str)


# What each field metrics-sync reads must be, and what to say when it is not. One pass over the fields an item
# has (not one look-up per field it might have): this check runs on every metric of every page.
_METRIC_RULES: dict[str, tuple[Any, str]] = {
    **{name: (_text, "is not text") for name in _TEXT},
    **{name: (_flag, "is not true or false") for name in _FLAGS},
    **{name: (_counter, "is not a whole number") for name in _COUNTERS},
    **{name: (_texts, "is not a list of text") for name in _TEXT_LISTS},
    **{name: (_objects, "is not a list of objects") for name in _OBJECT_LISTS},
    "urls": (_urls, "is not a list of URL matchers of text"),
    "percentileValue": (_is_number, "is not a number"),
    "eventDefault": (_event_default, "is not an object of `disabled` (true or false) and `value` (a number)"),
    "_maintainer": (_member, "is not a member"),
}


def metric_problem(item: Any) -> str | None:
    """Why `item` is not a metric representation metrics-sync can use (None when it is)."""
    if not isinstance(item, Mapping):
        return "an item of the list is not an object"
    key = item.get("key")
    if not isinstance(key, str) or not KEY.fullmatch(key):
        return "its key does not follow LaunchDarkly's key pattern"
    rules = _METRIC_RULES
    for name, value in item.items():
        rule = rules.get(name)
        if rule is not None and value is not None and not rule[0](value):
            return f"`{name}` {rule[1]}"
    return None


_GROUP_COUNTERS = ("_version", "experimentCount", "activeExperimentCount", "activeGuardedRolloutCount")


def group_problem(item: Any) -> str | None:
    """Why `item` is not a metric group representation metrics-sync can use (None when it is)."""
    if not isinstance(item, Mapping):
        return "an item of the list is not an object"
    key = item.get("key")
    if not isinstance(key, str) or not KEY.fullmatch(key):
        return "its key does not follow LaunchDarkly's key pattern"
    for name in ("name", "kind", "description"):
        if item.get(name) is not None and not isinstance(item[name], str):
            return f"`{name}` is not text"
    for name in _GROUP_COUNTERS:
        value = item.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            return f"`{name}` is not a whole number"
    tags = item.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(v, str) for v in tags)):
        return "`tags` is not a list of text"
    metrics = item.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, list) or not all(isinstance(m, Mapping) for m in metrics):
            return "`metrics` is not a list of objects"
        for metric in metrics:
            if not isinstance(metric.get("key"), str) or not KEY.fullmatch(metric["key"]):
                return "a metric of the group has no key that follows LaunchDarkly's key pattern"
            if metric.get("nameInGroup") is not None and not isinstance(metric["nameInGroup"], str):
                return "a metric's `nameInGroup` is not text"
    experiments = item.get("experiments")
    if experiments is not None and (not isinstance(experiments, list)
                                    or not all(isinstance(e, Mapping) for e in experiments)):
        return "`experiments` is not a list of objects"
    maintainer = item.get("maintainer")
    if maintainer is not None:
        if not isinstance(maintainer, Mapping) or not isinstance(maintainer.get("key", ""), str):
            return "`maintainer` is not a member or team"
        member = maintainer.get("_member")
        if member is not None and not (isinstance(member, Mapping) and isinstance(member.get("_id", ""), str)):
            return "`maintainer._member` is not a member"
    return None
