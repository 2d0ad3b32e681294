"""Value types shared by the modules: problems, desired metrics, plans and apply results.

They are plain frozen dataclasses: the plan is a value that can be printed, saved, compared in tests
and applied later. JSON-like payloads (metric fields, patch operations) are stored as dicts/lists and
are never mutated after construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

JSON = Any  # a JSON-compatible value (dict, list, str, int, float, bool, None)

Severity = Literal["error", "warning"]
Action = Literal["create", "update", "archive"]


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


@dataclass(frozen=True)
class SourceRef:
    """Where a definition came from, for messages that point back at the YAML."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.column or 1}"


@dataclass(frozen=True)
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
    field_sources: dict[str, SourceRef] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Definitions:
    """Every valid metric found, grouped by project, plus what was read to find them."""

    metrics: dict[str, list[DesiredMetric]]  # project -> metrics in file order
    files: list[str]
    # project -> where it is named first: a file's `project:` line, or "--project" / the config
    project_sources: dict[str, str] = field(default_factory=dict)

    @property
    def metric_count(self) -> int:
        return sum(len(m) for m in self.metrics.values())


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: its canonical value remotely and in the definitions."""

    field: str
    before: JSON  # None when absent remotely
    after: JSON  # None when it is to be removed
    details: tuple[str, ...] = ()  # item-level changes of lists and mappings, for display


@dataclass(frozen=True)
class Change:
    """One planned change to one metric."""

    action: Action
    key: str
    metric_type: str  # e.g. "custom conversion count"
    before: dict[str, JSON] | None  # canonical remote form (None for create)
    after: dict[str, JSON] | None  # canonical desired form (None for archive)
    fields: list[FieldChange]
    patch: list[dict[str, JSON]]  # exact JSON Patch ops for update/archive; [] for create
    body: dict[str, JSON] | None = None  # exact POST body for create
    remote_version: int | None = None  # remote `_version` the change was planned against
    adopt: bool = False  # an existing unmanaged metric taken under management
    restore: bool = False  # an archived metric the definitions still define is brought back
    warnings: tuple[str, ...] = ()
    source: str | None = None  # where the definition is written (file:line:col), for messages about it
    type_before: str | None = None  # the metric type before an update that changes it (e.g. binary → count)


@dataclass(frozen=True)
class Blocked:
    """A managed metric that left the definitions but cannot be archived yet."""

    key: str
    reason: str


@dataclass(frozen=True)
class ProjectPlan:
    project: str
    definitions_hash: str
    changes: list[Change]
    unchanged: int
    unmanaged: int  # remote metrics without the ownership tag and not in the YAML (never touched)
    would_archive: list[str]  # managed metrics that left the YAML, archived only with --prune
    blocked: list[Blocked]
    refused: list[str]  # changes LaunchDarkly cannot make (e.g. a kind change); plan fails
    warnings: list[str] = field(default_factory=list)  # e.g. a check that could not be made
    unmanaged_sample: list[str] = field(default_factory=list)  # the first unmanaged keys, to name them

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)


@dataclass(frozen=True)
class Plan:
    projects: list[ProjectPlan]
    prune: bool
    ownership_tag: str
    base_url_host: str
    tool_version: str
    targets: tuple[str, ...] = ()  # --target patterns the plan was limited to

    @property
    def changes(self) -> list[tuple[str, Change]]:
        return [(p.project, c) for p in self.projects for c in p.changes]

    @property
    def has_changes(self) -> bool:
        return any(p.changes for p in self.projects)

    @property
    def refused(self) -> list[str]:
        return [r for p in self.projects for r in p.refused]

    def total(self, action: Action) -> int:
        return sum(p.count(action) for p in self.projects)

    @property
    def would_archive(self) -> int:
        return sum(len(p.would_archive) for p in self.projects)

    @property
    def blocked(self) -> int:
        return sum(len(p.blocked) for p in self.projects)

    @property
    def unchanged(self) -> int:
        return sum(p.unchanged for p in self.projects)


Outcome = Literal["created", "updated", "restored", "archived", "failed", "skipped"]


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
