"""How a desired canonical form differs from a LaunchDarkly representation, and the guarded JSON Patch that
closes the difference. `compare` is plan's one decision for an item the definitions define: the listing's
in-sync fast path (state.py) and the reconcile loop both ask it. Used by apply too. Pure."""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from metrics_sync.core.fields import Resource
from metrics_sync.core.model import FieldChange
from metrics_sync.core.resources import METRIC

SET_FIELDS = METRIC.with_compare("set")


@dataclass(frozen=True)
class Comparison:
    """An item of the definitions against its LaunchDarkly representation: both canonical, and what differs."""

    before: dict[str, Any]  # the representation, canonical
    after: dict[str, Any]  # the definition, canonical, owned as it will be (see `owned`)
    fields: list[FieldChange]  # what an update changes (empty on a kind change: that is refused, not diffed)
    adopts: bool = False  # the update adds the ownership tag to an item that lacks it

    @property
    def kind_changed(self) -> bool:
        return bool(self.before.get("kind") != self.after.get("kind"))

    @property
    def in_sync(self) -> bool:
        """Plan makes no change for the item: the listing keeps only a marker for it."""
        return not self.kind_changed and not self.fields


def compare(resource: Resource, after: Mapping[str, Any], rep: Mapping[str, Any], *, adopt: bool,
            tag: str, before: dict[str, Any] | None = None) -> Comparison:
    """The one decision for an item both sides have (a kind change, an update, or nothing to do). `before`:
    the canonical form of `rep`, when the caller has it."""
    before = resource.canonical(rep) if before is None else before
    owned = dict(after)
    if tag not in before.get("tags", ()) and not adopt:  # `adopt: false`: update it, but leave it unowned
        owned["tags"] = [t for t in owned.get("tags", ()) if t != tag]
    if before.get("kind") != owned.get("kind"):
        return Comparison(before, owned, [])
    fields = differences(owned, before, resource) + missing_required(owned, rep, before, resource)
    return Comparison(before, owned, fields, tag in owned.get("tags", ()) and tag not in before.get("tags", ()))


def in_sync(resource: Resource, after: Mapping[str, Any], rep: Mapping[str, Any], *, adopt: bool, tag: str) -> bool:
    """`compare(...).in_sync`, decided without building the comparison when the item is plainly equal (as
    nearly every item of a project in sync is): each field of the definition's form has the same value in the
    representation's (kind and tags included, the tags carrying the ownership tag), what only the
    representation has is None or not compared (LaunchDarkly's choice left open, or never read back), and no
    required field is missing. Anything else gets the whole comparison."""
    before = resource.canonical(rep)
    if after.items() <= before.items() and tag in before.get("tags", ()) and \
            all(before[name] is None or name in resource.left_open for name in before.keys() - after.keys()) and \
            not missing_required(after, rep, before, resource):
        return True
    return compare(resource, after, rep, adopt=adopt, tag=tag, before=before).in_sync


def diff(after: Mapping[str, Any], rep: Mapping[str, Any],
         resource: Resource = METRIC) -> tuple[list[FieldChange], list[dict[str, Any]]]:
    """The fields in which the representation `rep` differs from the desired canonical form `after`, and the
    guarded JSON Patch that makes it so (apply uses it too, to restore a metric the list did not show)."""
    before = resource.canonical(rep)
    fields = differences(after, before, resource) + missing_required(after, rep, before, resource)
    return fields, guarded_patch(rep, fields, resource)


def missing_required(after: Mapping[str, Any], rep: Mapping[str, Any], before: Mapping[str, Any],
                     resource: Resource = METRIC) -> list[FieldChange]:
    """Fields the definitions require (`Field.required`) whose default compares equal to what LaunchDarkly
    sends, yet LaunchDarkly sends none: it requires them present. A conversion made numeric needs
    `successCriteria` even when the default value already compares equal."""
    return [FieldChange(f.name, None, after[f.name]) for f in resource.required_with_default
            if after.get(f.name) is not None
            and f.name not in rep and after[f.name] == before.get(f.name) and f.required is not None
            and f.required(after)]


def differences(after: Mapping[str, Any], before: Mapping[str, Any],
                 resource: Resource = METRIC) -> list[FieldChange]:
    changed = [f for f in resource.compared(after, before) if after.get(f) != before.get(f)]
    sets = resource.with_compare("set")
    return [FieldChange(f, copy.deepcopy(before.get(f)), copy.deepcopy(after.get(f)),
                        _explained(resource, f, before.get(f), after.get(f), sets)) for f in changed]


def _explained(resource: Resource, field: str, old: Any, new: Any, sets: Collection[str]) -> tuple[str, ...]:
    """The field's own way of showing a change (`Field.explain`, e.g. an event filter's conditions), else the
    generic item-level lines."""
    explain = resource.field(field).explain
    if explain is not None:
        return explain(old, new)
    return _details(field, old, new, sets)


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
