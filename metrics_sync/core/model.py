"""Value types shared by the modules: problems, desired metrics, plans and apply results.

They are plain frozen dataclasses: the plan is a value that can be printed, saved, compared in tests
and applied later. JSON-like payloads (metric fields, patch operations) are stored as dicts/lists and
are never mutated after construction.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from metrics_sync.core.findings import Finding, code

JSON = Any  # a JSON-compatible value (dict, list, str, int, float, bool, None)

Severity = Literal["error", "warning"]
Action = Literal["create", "update", "archive", "delete"]
# What a change is to: metrics are archived when they leave the definitions, metric groups deleted.
ResourceKind = Literal["metric", "metric-group"]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the definitions, located as precisely as the YAML allows."""

    file: str
    line: int | None
    column: int | None
    message: str
    path: str | None = None  # e.g. "metrics[2].unit"
    hint: str | None = None
    severity: Severity = "error"

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.line or 0, self.column or 0, self.message)


@dataclass(frozen=True, slots=True)  # one per metric (and per located field): small is worth it
class SourceRef:
    """Where a definition came from, for messages that point back at the YAML."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.column or 1}"


class Positions(Mapping[str, "SourceRef"]):
    """Where each located field of one definition is written, as a mapping of field name to `SourceRef`, kept
    small (a big project has one per metric): the file, the field names (one tuple shared by every definition
    that locates the same fields) and their lines and columns packed into bytes. Each `SourceRef` is made when
    asked for."""

    __slots__ = ("_file", "_names", "_places")

    def __init__(self, file: str, places: Mapping[str, tuple[int, int]]) -> None:
        names = tuple(places)
        self._file = file
        self._names = _NAMES.setdefault(names, names)
        self._places = struct.pack(f"<{2 * len(names)}i", *(n for at in places.values() for n in at))

    def __getitem__(self, name: str) -> SourceRef:
        try:
            index = self._names.index(name)
        except ValueError:
            raise KeyError(name) from None
        line, column = struct.unpack_from("<ii", self._places, 8 * index)
        return SourceRef(self._file, line, column)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return repr(dict(self))

    def __reduce__(self) -> tuple[Any, ...]:  # (from worker processes: names shared again on arrival)
        return Positions, (self._file, {name: (ref.line, ref.column) for name, ref in self.items()})


_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}  # the field names of `Positions`, one tuple of each


@dataclass(frozen=True, slots=True)
class DesiredMetric:
    """A metric as the YAML defines it, with the file's defaults merged in.

    `fields` uses LaunchDarkly's API field names (deprecated `randomizationUnits` already folded into
    `analysisUnits`); `project` is resolved from the file, `--project` or the config.
    """

    project: str
    key: str
    fields: dict[str, JSON]
    source: SourceRef
    adopt: bool = True  # take ownership (add the tag) when the key exists in LaunchDarkly without it
    # Where each field is written (the metric's own line, or the file's `defaults` for inherited ones),
    # so that errors about a field point at it.
    field_sources: Mapping[str, SourceRef] = field(default_factory=dict, compare=False)  # (often `Positions`)


@dataclass(frozen=True)
class DesiredGroup:
    """A metric group as the YAML defines it (`defaults` do not apply to groups)."""

    project: str
    key: str
    fields: dict[str, JSON]
    source: SourceRef
    adopt: bool = True
    field_sources: dict[str, SourceRef] = field(default_factory=dict, compare=False)
    # Where each entry of `metrics` is written, in order, for errors about a metric the group names.
    metric_sources: tuple[SourceRef, ...] = field(default=(), compare=False)
    path: str = ""  # e.g. "metricGroups[0]"


@dataclass(frozen=True)
class Definitions:
    """Every valid metric and metric group found, grouped by project, plus what was read to find them."""

    metrics: dict[str, list[DesiredMetric]]  # project -> metrics in file order
    files: list[str]
    # project -> where it is named first: a file's `project:` line, or "--project" / the config
    project_sources: dict[str, str] = field(default_factory=dict)
    groups: dict[str, list[DesiredGroup]] = field(default_factory=dict)  # project -> metric groups in file order

    @property
    def metric_count(self) -> int:
        return sum(len(m) for m in self.metrics.values())

    @property
    def group_count(self) -> int:
        return sum(len(g) for g in self.groups.values())


UseKind = Literal["experiment", "guarded rollout", "holdout", "release policy"]
# How each kind says `running`: a release policy runs nothing itself, it is in force (a guarded-release policy:
# every new guarded release in its scope measures its metrics) or not.
_STATES: dict[str, dict[bool | None, str]] = {
    "release policy": {True: "in force for new guarded releases", False: "not a guarded-release policy",
                       None: "release method unknown"},
}
_RUNNING = {True: "running", False: "not running", None: "running or not: unknown"}


@dataclass(frozen=True)
class Use:
    """An experiment, guarded rollout, holdout or release policy that uses a metric or metric group, as
    LaunchDarkly described it."""

    kind: UseKind
    key: str
    name: str = ""
    environment: str = ""  # a release policy's: the environments of its scope, comma-separated
    running: bool | None = None  # None: LaunchDarkly did not say (treated as running where that matters)
    via: str | None = None  # the metric group through which it uses a metric
    analysis_unit: str | None = None  # the context kind a holdout analyses the metric by (`analysisUnit`)

    @property
    def state(self) -> str:
        return _STATES.get(self.kind, _RUNNING)[self.running]

    def describe(self) -> str:
        """`experiment `checkout-redesign` (production, running)`: how every output names a use."""
        where = f"{self.environment}, " if self.environment else ""
        via = f", through metric group {code(self.via)}" if self.via else ""
        unit = f", analysed by {code(self.analysis_unit)}" if self.analysis_unit else ""
        return f"{self.kind} {code(self.key)} ({where}{self.state}{via}{unit})"


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: its canonical value remotely and in the definitions."""

    field: str
    before: JSON  # None when absent remotely
    after: JSON  # None when it is to be removed
    details: tuple[str, ...] = ()  # item-level changes of lists and mappings, for display


@dataclass(frozen=True)
class Change:
    """One planned change to one metric or metric group."""

    action: Action
    key: str
    metric_type: str  # e.g. "custom conversion count", "funnel metric group"
    before: dict[str, JSON] | None  # canonical remote form (None for create)
    after: dict[str, JSON] | None  # canonical desired form (None for archive)
    fields: list[FieldChange]
    patch: list[dict[str, JSON]]  # exact JSON Patch ops for update/archive; [] for create
    body: dict[str, JSON] | None = None  # exact POST body for create
    remote_version: int | None = None  # remote `_version` the change was planned against
    adopt: bool = False  # an existing unmanaged metric taken under management
    restore: bool = False  # an archived metric the definitions still define is brought back
    source: str | None = None  # where the definition is written (file:line:col), for messages about it
    type_before: str | None = None  # the metric type before an update that changes it (e.g. binary → count)
    resource: ResourceKind = "metric"
    used_by: tuple[Use, ...] = ()  # experiments and guarded rollouts that use what an update/archive/delete touches
    # What plan says about the change: alerts (a running experiment's results change: the plan's most
    # prominent warnings), warnings and notes.
    findings: tuple[Finding, ...] = ()

    @property
    def noun(self) -> str:
        from metrics_sync.core.resources import RESOURCES  # (resources.py builds on this module's types)

        return RESOURCES[self.resource].name

    @property
    def alerts(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "alert")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """Warnings and notes (shown alike, after the alerts)."""
        return tuple(f for f in self.findings if f.severity in ("warning", "note"))


@dataclass(frozen=True)
class Blocked:
    """A managed metric (or metric group) that left the definitions but cannot be archived (deleted) yet."""

    key: str
    reason: str  # e.g. "used by 1 running experiment"
    resource: ResourceKind = "metric"
    used_by: tuple[Use, ...] = ()  # the experiments and guarded rollouts that use it, as far as they were read


@dataclass(frozen=True)
class UnsentEvent:
    """A metric whose event no code sends (plan --code, or the config's codeRefs.paths): it gets no data from
    now on. A pull request that removes an event's last track call shows it, whether or not the plan changes the
    metric."""

    key: str
    event: str
    source: str  # where the metric's eventKey is written (file:line:col)
    used_by: tuple[Use, ...] = ()  # the running experiments and guarded rollouts that use it (and lose its data)


@dataclass(frozen=True)
class ProjectPlan:
    project: str
    definitions_hash: str
    changes: list[Change]
    unchanged: int
    unmanaged: int  # remote metrics without the ownership tag and not in the YAML (never touched)
    would_archive: list[str]  # managed metrics that left the YAML, archived only with --prune
    blocked: list[Blocked]
    # Refusals (changes that cannot be made as defined, e.g. a kind change: plan fails) and the project's
    # warnings and notes (e.g. a check that could not be made).
    findings: list[Finding]
    unmanaged_sample: list[str] = field(default_factory=list)  # the first unmanaged keys, to name them
    unchanged_groups: int = 0
    unmanaged_groups: int = 0
    would_delete: list[str] = field(default_factory=list)  # managed metric groups that left the YAML (--prune)
    # Metrics whose event no code sends (with code to scan); each is also a finding of kind `event-not-sent`.
    unsent: list[UnsentEvent] = field(default_factory=list)

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def refused(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "refusal"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity != "refusal"]


@dataclass(frozen=True)
class Plan:
    projects: list[ProjectPlan]
    prune: bool
    ownership_tag: str
    base_url_host: str
    tool_version: str
    targets: tuple[str, ...] = ()  # --target patterns the plan was limited to
    files: tuple[str, ...] = ()  # the definition files it was made from, as named (apply --plan says which differ)

    @property
    def changes(self) -> list[tuple[str, Change]]:
        return [(p.project, c) for p in self.projects for c in p.changes]

    @property
    def has_changes(self) -> bool:
        return any(p.changes for p in self.projects)

    @property
    def refused(self) -> list[Finding]:
        return [r for p in self.projects for r in p.refused]

    def total(self, action: Action) -> int:
        return sum(p.count(action) for p in self.projects)

    @property
    def would_archive(self) -> int:
        return sum(len(p.would_archive) for p in self.projects)

    @property
    def would_delete(self) -> int:
        return sum(len(p.would_delete) for p in self.projects)

    @property
    def alerts(self) -> list[tuple[str, Change]]:
        return [(p, c) for p, c in self.changes if c.alerts]

    @property
    def blocked(self) -> int:
        return sum(len(p.blocked) for p in self.projects)

    @property
    def unsent(self) -> list[tuple[str, UnsentEvent]]:
        """The metrics whose event no code sends, with their projects."""
        return [(p.project, u) for p in self.projects for u in p.unsent]

    @property
    def unchanged(self) -> int:
        return sum(p.unchanged for p in self.projects)

    @property
    def unchanged_groups(self) -> int:
        return sum(p.unchanged_groups for p in self.projects)


Outcome = Literal["created", "updated", "restored", "archived", "deleted", "failed", "skipped"]


@dataclass(frozen=True)
class ChangeResult:
    project: str
    key: str
    action: Action
    outcome: Outcome
    message: str | None = None  # failure reason, or a note (e.g. "recovered after a timeout")
    not_kept: tuple[str, ...] = ()  # fields LaunchDarkly did not keep (read back after writing)
    source: str | None = None  # where the definition is written
    denied: bool = False  # LaunchDarkly refused the token's permission for this write (401/403)
    resource: ResourceKind = "metric"


@dataclass(frozen=True)
class ApplyResult:
    results: list[ChangeResult]
    interrupted: bool = False
    stopped: str | None = None  # why apply stopped starting changes (a permission error), when it did

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def failed(self) -> bool:
        return self.interrupted or any(r.outcome in ("failed", "skipped") for r in self.results)
