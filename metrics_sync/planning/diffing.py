"""How a desired canonical form differs from a LaunchDarkly representation, and the guarded JSON Patch that
closes the difference. Shared by the metric and metric-group planners and by apply. Pure."""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from metrics_sync.core.fields import Resource
from metrics_sync.core.model import FieldChange
from metrics_sync.core.resources import METRIC

SET_FIELDS = METRIC.with_compare("set")


def diff(after: Mapping[str, Any], rep: Mapping[str, Any],
         resource: Resource = METRIC) -> tuple[list[FieldChange], list[dict[str, Any]]]:
    """The fields in which the representation `rep` differs from the desired canonical form `after`, and the
    guarded JSON Patch that makes it so (apply uses it too, to restore a metric the list did not show)."""
    before = resource.canonical(rep)
    fields = differences(after, before, resource)
    if resource is METRIC:
        fields += missing_required(after, rep, before)
    return fields, guarded_patch(rep, fields, resource)


def missing_required(after: Mapping[str, Any], rep: Mapping[str, Any],
                      before: Mapping[str, Any]) -> list[FieldChange]:
    """Fields the canonical form defaults but LaunchDarkly requires to be present: a conversion made numeric
    needs `successCriteria` even when the default value already compares equal."""
    if after.get("isNumeric") and "successCriteria" not in rep and after.get("successCriteria") == \
            before.get("successCriteria"):
        return [FieldChange("successCriteria", None, after["successCriteria"])]
    return []


def differences(after: Mapping[str, Any], before: Mapping[str, Any],
                 resource: Resource = METRIC) -> list[FieldChange]:
    changed = [f for f in resource.compared(after, before) if after.get(f) != before.get(f)]
    sets = resource.with_compare("set")
    return [FieldChange(f, copy.deepcopy(before.get(f)), copy.deepcopy(after.get(f)),
                        _details(f, before.get(f), after.get(f), sets)) for f in changed]


def _details(field: str, old: Any, new: Any, sets: Collection[str] = SET_FIELDS) -> tuple[str, ...]:
    """Item-level lines for a changed list or mapping, e.g. `tags: + kpi` or `eventDefault.disabled: ...`."""
    if not isinstance(old, (list, dict)) or not isinstance(new, (list, dict)):
        return ()
    if field in sets:
        return (*(f"+ {item}" for item in sorted(set(new) - set(old))),
                *(f"- {item}" for item in sorted(set(old) - set(new))))
    # Only reached for fields that differ (equal objects never get here): deepdiff is slow to import.
    from deepdiff import DeepDiff

    diff = DeepDiff(old, new, ignore_order=True, cutoff_intersection_for_pairs=1, view="tree")
    lines = []
    for report, levels in diff.items():
        for level in levels:
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in level.path(output_format="list"))
            if report.endswith("_added"):
                lines.append(f"+ {where.lstrip('.')}: {to_text(level.t2)}" if isinstance(old, dict)
                             else f"+ {to_text(level.t2)}")
            elif report.endswith("_removed"):
                lines.append(f"- {where.lstrip('.')}: {to_text(level.t1)}" if isinstance(old, dict)
                             else f"- {to_text(level.t1)}")
            else:
                lines.append(f"{where.lstrip('.')}: {to_text(level.t1)} → {to_text(level.t2)}")
    return tuple(sorted(lines))


def to_text(value: Any) -> str:
    """A value as compact JSON, the way plan output shows it."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def guarded_patch(rep: Mapping[str, Any], fields: Sequence[FieldChange],
                  resource: Resource = METRIC) -> list[dict[str, Any]]:
    """JSON Patch for the changed fields: `test` each on the raw value seen now, then set it (in the form
    LaunchDarkly takes, e.g. a standard group's metrics with empty `nameInGroup`)."""
    tests: list[dict[str, Any]] = []
    sets: list[dict[str, Any]] = []
    for change in fields:
        path = f"/{change.field}"
        present = change.field in rep
        if present:
            tests.append({"op": "test", "path": path, "value": copy.deepcopy(rep[change.field])})
        if change.after is None:
            if present:
                sets.append({"op": "remove", "path": path})
        else:
            value = resource.api_value(change.field, copy.deepcopy(change.after), {"kind": rep.get("kind")})
            sets.append({"op": "replace" if present else "add", "path": path, "value": value})
    return tests + sets
