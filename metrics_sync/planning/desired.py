"""A project's definitions as plan compares them: per resource, the items and their canonical forms. Pure.

Canonical forms are the costly part of planning a big project: each is computed once, when the listing first
needs it (in the gaps while pages travel, state.py) or when reconcile does. The form of an item the listing
found in sync is not kept (it would be most of a big plan's memory): only what reconcile still reads of it
(`IN_SYNC_READS`, shared between items) and the 32-byte digest the definitions' hash takes of it
(`item_digest`).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from metrics_sync.core.fields import Resource
from metrics_sync.core.model import Definitions, DesiredGroup, DesiredMetric
from metrics_sync.core.resources import METRIC, RESOURCES
from metrics_sync.launchdarkly.wire import sorted_json

Item = DesiredMetric | DesiredGroup
ORDER = tuple(RESOURCES.values())  # metrics first: groups name metrics, and their checks read the metrics' plan
HASH_LABELS = {"metric": ("", "metric"), "metric-group": ("group:", "group")}  # groups have their own key space
# What reconcile reads of the form of an item found in sync (reconcile.py): a metric's analysis units (checked
# against the project's, MetricHooks.refusals) and its write-only fields (noted as never read back). None: the
# whole form (a group's checks read its metrics; groups are few).
IN_SYNC_READS: dict[str, tuple[str, ...] | None] = {"metric": ("analysisUnits", *METRIC.write_only),
                                                      "metric-group": None}


def desired_canonical(resource: Resource, item: Item, ownership_tag: str) -> dict[str, Any]:
    """The definition in canonical form, carrying the ownership tag."""
    fields = dict(item.fields)
    fields["tags"] = [*(fields.get("tags") or []), ownership_tag]
    return resource.canonical(fields)


def hash_entry(kind: str, item: Item, form: Mapping[str, Any]) -> bytes:
    """What the definitions' hash takes of one item (reconcile.definitions_hash): the compact JSON of
    `[name, {kind: form without None values, "adopt": ...}]`, keys sorted. Fields a definition leaves out are
    left out (optional fields added to the table later must not change the hash of definitions that do not use
    them)."""
    label, name = HASH_LABELS[kind]
    value = {name: {k: v for k, v in form.items() if v is not None}, "adopt": item.adopt}
    return _ENCODER.encode([label + item.key, value]).encode()


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))  # made once: it runs for every item


def item_digest(kind: str, item: Item, form: Mapping[str, Any]) -> bytes:
    """What the definitions' hash takes of the item (reconcile.py): the SHA-256 of the value `hash_entry` writes,
    as compact JSON with sorted keys in UTF-8 (`wire.sorted_json`: the same text as `hash_entry`'s for ASCII, at
    a ninth of its cost: this runs for every metric of a big plan)."""
    label, name = HASH_LABELS[kind]
    value = {name: {k: v for k, v in form.items() if v is not None}, "adopt": item.adopt}
    return hashlib.sha256(sorted_json([label + item.key, value])).digest()


class Forms:
    """One resource's items of one project, and their canonical forms, computed as they are first asked for.
    Thread-safe enough: the listing's read threads share it through single dict operations (atomic), and two
    threads computing the same form compute equal values. No lock per item: a thread that loses the GIL while
    holding it stalls the others."""

    def __init__(self, resource: Resource, items: Sequence[Item], ownership_tag: str) -> None:
        self.resource = resource
        self.items = {item.key: item for item in items}
        self.tag = ownership_tag
        self._forms: dict[str, dict[str, Any]] = {}
        self._reads = IN_SYNC_READS.get(resource.kind)
        # Of each item found in sync: its digest, and what reconcile reads of its form: nearly always the same
        # for all (`_usual`), else its own (`_reads_of`). Its form is not kept.
        self._digests: dict[str, bytes] = {}
        self._usual: Mapping[str, Any] | None = None
        self._reads_of: dict[str, Mapping[str, Any]] = {}
        self._lock = threading.Lock()

    def compute(self, key: str) -> dict[str, Any]:
        """The item's form, without keeping it."""
        form = self._forms.get(key)
        return form if form is not None else desired_canonical(self.resource, self.items[key], self.tag)

    def keep(self, key: str, form: dict[str, Any]) -> None:
        """Keep the form of an item reconcile compares in full."""
        self._forms.setdefault(key, form)

    def settle(self, key: str, form: dict[str, Any]) -> None:
        """The item was found in sync: keep only what reconcile and the hash read of its form."""
        if self._reads is None:
            self.keep(key, form)
            return
        reads = {name: form[name] for name in self._reads if name in form}
        digest = item_digest(self.resource.kind, self.items[key], form)
        usual = self._usual
        if usual is None:  # the first item settled (the lock only here: each read thread settles every item)
            with self._lock:
                if self._usual is None:
                    self._usual = reads
                usual = self._usual
        if reads != usual:
            self._reads_of[key] = reads
        self._digests[key] = digest  # (single dict operations: atomic)
        self._forms.pop(key, None)

    def in_sync_reads(self, key: str) -> Mapping[str, Any]:
        """What reconcile reads of the form of an item found in sync (`IN_SYNC_READS`)."""
        if key not in self._digests:
            return self[key]
        return self._reads_of.get(key) or self._usual or {}

    def digest(self, key: str) -> bytes:
        """The item's `item_digest` (its form is computed for it, not kept, when it is not kept already)."""
        digest = self._digests.get(key)
        return digest if digest is not None else item_digest(self.resource.kind, self.items[key], self.compute(key))

    def get(self, key: str) -> dict[str, Any] | None:
        """The item's whole form (kept, unless the item was found in sync), or None for a key not defined."""
        form = self._forms.get(key)
        if form is None and key in self.items:
            form = desired_canonical(self.resource, self.items[key], self.tag)
            if key not in self._digests:
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
