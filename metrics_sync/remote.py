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


def decode(content: bytes) -> Any:
    """Parse an answer's body: standard JSON only, nested at most MAX_DEPTH deep."""
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
    if depth(data) > MAX_DEPTH:
        raise BadJson(f"it is nested deeper than {MAX_DEPTH} levels")
    return data


def depth(value: Any) -> int:
    """How deeply `value` nests lists and mappings (iterative: any depth is measured safely)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in node.values())
        elif isinstance(node, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in node)
    return deepest


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_problem(item: Any) -> str | None:
    """Why `item` is not a metric representation metrics-sync can use (None when it is)."""
    if not isinstance(item, Mapping):
        return "an item of the list is not an object"
    key = item.get("key")
    if not isinstance(key, str) or not KEY.fullmatch(key):
        return "its key does not follow LaunchDarkly's key pattern"
    for name in _TEXT:
        if item.get(name) is not None and not isinstance(item[name], str):
            return f"`{name}` is not text"
    for name in _FLAGS:
        if item.get(name) is not None and not isinstance(item[name], bool):
            return f"`{name}` is not true or false"
    for name in _COUNTERS:
        value = item.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            return f"`{name}` is not a whole number"
    for name in _TEXT_LISTS:
        value = item.get(name)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            return f"`{name}` is not a list of text"
    for name in _OBJECT_LISTS:
        value = item.get(name)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value)):
            return f"`{name}` is not a list of objects"
    for matcher in item.get("urls") or []:
        if not all(isinstance(v, str) for v in matcher.values()):
            return "a URL matcher holds something other than text"
    if item.get("percentileValue") is not None and not _is_number(item["percentileValue"]):
        return "`percentileValue` is not a number"
    default = item.get("eventDefault")
    if default is not None:
        if not isinstance(default, Mapping):
            return "`eventDefault` is not an object"
        if default.get("disabled") is not None and not isinstance(default["disabled"], bool):
            return "`eventDefault.disabled` is not true or false"
        if default.get("value") is not None and not _is_number(default["value"]):
            return "`eventDefault.value` is not a number"
    maintainer = item.get("_maintainer")
    if maintainer is not None and not (isinstance(maintainer, Mapping) and isinstance(maintainer.get("_id", ""), str)):
        return "`_maintainer` is not a member"
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
