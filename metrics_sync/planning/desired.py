"""A project's definitions as plan compares them: per resource, the items and their canonical forms. Pure.

Canonical forms are the costly part of planning a big project: each is computed once, when the listing first
needs it (in the gaps while pages travel, state.py) or when reconcile does, and shared by both.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from metrics_sync.core.fields import Resource
from metrics_sync.core.model import Definitions, DesiredGroup, DesiredMetric
from metrics_sync.core.resources import RESOURCES

Item = DesiredMetric | DesiredGroup
ORDER = tuple(RESOURCES.values())  # metrics first: groups name metrics, and their checks read the metrics' plan


def desired_canonical(resource: Resource, item: Item, ownership_tag: str) -> dict[str, Any]:
    """The definition in canonical form, carrying the ownership tag."""
    fields = dict(item.fields)
    fields["tags"] = [*(fields.get("tags") or []), ownership_tag]
    return resource.canonical(fields)


class Forms:
    """One resource's items of one project, and their canonical forms, computed as they are first asked for.
    Thread-safe enough: two threads computing the same form compute equal values."""

    def __init__(self, resource: Resource, items: Sequence[Item], ownership_tag: str) -> None:
        self.resource = resource
        self.items = {item.key: item for item in items}
        self.tag = ownership_tag
        self._forms: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        form = self._forms.get(key)
        if form is None and key in self.items:
            form = desired_canonical(self.resource, self.items[key], self.tag)
            with self._lock:
                form = self._forms.setdefault(key, form)
        return form

    def __getitem__(self, key: str) -> dict[str, Any]:
        form = self.get(key)
        if form is None:
            raise KeyError(key)
        return form

    def all(self) -> dict[str, dict[str, Any]]:
        """Every item's form, keyed like the definitions (in their order)."""
        return {key: self[key] for key in self.items}


class Desired:
    """A project's definitions, per resource kind."""

    def __init__(self, definitions: Definitions, project: str, ownership_tag: str) -> None:
        items: Mapping[str, Sequence[Item]] = {"metric": definitions.metrics.get(project, []),
                                               "metric-group": definitions.groups.get(project, [])}
        self.project = project
        self.forms = {kind: Forms(RESOURCES[kind], items[kind], ownership_tag) for kind in items}

    def __getitem__(self, kind: str) -> Forms:
        return self.forms[kind]
