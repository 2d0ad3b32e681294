"""The `filter` query parameter of LaunchDarkly's metric list, e.g. `tags contains ["a","b"]`.

Expressions are comma-separated (commas inside brackets or quotes do not split); values are JSON
lists, quoted strings ('x' or "x") or bare words. Supported fields follow LaunchDarkly's
documentation of the metrics list endpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class FilterError(Exception):
    pass


@dataclass(frozen=True)
class Expression:
    field: str
    op: str
    values: tuple[str, ...]


# field -> allowed operators, as the spec's `getMetrics` documents them.
SUPPORTED = {
    "dataSourceKeys": ("anyOf", "notEquals"),
    "eventKeys": ("anyOf",),
    "eventKind": ("equals",),
    "hasConnections": ("equals",),
    "isNumeric": ("equals",),
    "maintainerIds": ("anyOf",),
    "maintainerTeamKey": ("equals",),
    "metricUsedIn": ("equals",),
    "query": ("equals",),  # a string or a list
    "tags": ("contains",),
    "unitAggregationType": ("equals",),
    "versionIds": ("anyOf",),
    "view": ("equals",),
}


def _split(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quote or depth:
        raise FilterError("unbalanced quotes or brackets")
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _values(raw: str) -> tuple[str, ...]:
    raw = raw.strip()
    if raw.startswith("["):
        try:
            items = json.loads(raw.replace("'", '"'))
        except ValueError:
            raise FilterError(f"cannot read list {raw}") from None
        return tuple(str(i).lower() if isinstance(i, bool) else str(i) for i in items)
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return (raw[1:-1],)
    return (raw,)


# field -> allowed operators for the metric group list (the spec's `getMetricGroups`).
GROUP_SUPPORTED: dict[str, tuple[str, ...]] = {
    "experimentStatus": ("equals",),
    "hasConnections": ("equals",),
    "kind": ("equals",),
    "maintainerIds": ("anyOf",),
    "maintainerTeamKey": ("equals",),
    "query": ("equals",),
}


def parse_filter(text: str, supported: dict[str, tuple[str, ...]] = SUPPORTED) -> list[Expression]:
    expressions = []
    for part in _split(text):
        pieces = part.split(None, 2)
        if len(pieces) < 3:
            raise FilterError(f"cannot read {part!r}; expected `<field> <operator> <value>`")
        field, op, raw = pieces
        if field not in supported:
            raise FilterError(f"unsupported field {field!r}")
        if op not in supported[field]:
            raise FilterError(f"{field} supports {', '.join(supported[field])}, not {op!r}")
        values = _values(raw)
        if field == "metricUsedIn" and values[0] not in ("experiments", "guarded_rollouts", "any", "none"):
            raise FilterError("metricUsedIn must be experiments, guarded_rollouts, any or none")
        expressions.append(Expression(field, op, values))
    return expressions


def _connected(record: dict[str, Any], where: str) -> bool:
    experiments = (record.get("experimentCount") or 0) > 0 or (record.get("activeExperimentCount") or 0) > 0
    rollouts = (record.get("activeGuardedRolloutCount") or 0) > 0
    return {"experiments": experiments, "guarded_rollouts": rollouts,
            "any": experiments or rollouts, "none": not (experiments or rollouts)}[where]


def matches(record: dict[str, Any], expressions: list[Expression]) -> bool:
    for e in expressions:
        if e.field == "tags" and not set(e.values) <= set(record.get("tags") or []):
            return False
        if e.field == "query":
            text = (record["key"] + " " + str(record.get("name", ""))).lower()
            if not any(value.lower() in text for value in e.values):
                return False
        if e.field == "dataSourceKeys":
            source = (record.get("dataSource") or {}).get("key")
            if (source in e.values) != (e.op == "anyOf"):
                return False
        if e.field == "versionIds" and record.get("_versionId") not in e.values:
            return False
        if e.field == "maintainerTeamKey":
            return False  # the emulator's metrics are maintained by members, never by teams
        # `view` (LaunchDarkly's views feature) is accepted and does not narrow: the emulator has no views.
        if e.field == "eventKind" and record.get("kind") != e.values[0]:
            return False
        if e.field == "isNumeric" and str(bool(record.get("isNumeric"))).lower() != e.values[0].lower():
            return False
        if e.field == "hasConnections" and str(_connected(record, "any")).lower() != e.values[0].lower():
            return False
        if e.field == "unitAggregationType" and record.get("unitAggregationType") != e.values[0]:
            return False
        if e.field == "maintainerIds" and record.get("maintainerId") not in e.values:
            return False
        if e.field == "eventKeys" and record.get("eventKey") not in e.values:
            return False
        if e.field == "metricUsedIn" and not _connected(record, e.values[0]):
            return False
    return True


def group_matches(record: dict[str, Any], expressions: list[Expression], statuses: set[str]) -> bool:
    """Whether a metric group (with its connections, see Store.connected) passes the filter; `statuses` are the
    statuses of the experiments that use it."""
    for e in expressions:
        if e.field == "kind" and record.get("kind") != e.values[0]:
            return False
        if e.field == "query":
            text = (record["key"] + " " + str(record.get("name", ""))).lower()
            if not any(value.lower() in text for value in e.values):
                return False
        connected = bool(record.get("experimentCount") or record.get("activeGuardedRolloutCount"))
        if e.field == "hasConnections" and str(connected).lower() != e.values[0].lower():
            return False
        if e.field == "maintainerIds" and record.get("maintainerId") not in e.values:
            return False
        if e.field == "maintainerTeamKey" and record.get("maintainerTeamKey") != e.values[0]:
            return False  # a seeded group may be maintained by a team (the API sets members only)
        if e.field == "experimentStatus":
            wanted = e.values[0]
            if not (wanted in statuses or (wanted == "started" and statuses & {"running", "stopped"})):
                return False
    return True
