"""What `health` found, as frozen values the output layer renders: one row per metric and per metric group, and
the findings (core/findings.py), each tied to what it is about.

Finding codes are stable (scripts and the JSON match on them): CODES lists them worst first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from metrics_sync.core.findings import Finding
from metrics_sync.core.model import Use

RUNNING_WITHOUT_EVENTS = "running-without-events"
NEVER_SEEN = "never-seen"
NOT_SEEN_RECENTLY = "not-seen-recently"
NOT_SENT_BY_CODE = "not-sent-by-code"
UNMEASURED_EVENT = "unmeasured-event"
ARCHIVE_CANDIDATE = "archive-candidate"
UNDEFINED = "undefined"
CODES = (RUNNING_WITHOUT_EVENTS, NEVER_SEEN, NOT_SEEN_RECENTLY, NOT_SENT_BY_CODE, UNMEASURED_EVENT,
         ARCHIVE_CANDIDATE, UNDEFINED)
STRICT_CODES = (RUNNING_WITHOUT_EVENTS, NEVER_SEEN)  # what --strict makes an error (cli-contract.md)
SILENT_HOURS = 24  # a running experiment whose metric's event was not seen for this long collects nothing

Subject = Literal["metric", "event"]


@dataclass(frozen=True)
class Flag:
    """A finding and what it is about: a metric (`key`) or an event the code sends (`key` is the event key)."""

    finding: Finding
    project: str
    key: str
    about: Subject = "metric"

    @property
    def code(self) -> str:
        return self.finding.kind


@dataclass(frozen=True)
class CallSite:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class LastUse:
    """`lastUsedInExperiment` / `lastUsedInGuardedRollout`: which one, and when (epoch ms; None: not said)."""

    key: str
    name: str
    at: int | None


@dataclass(frozen=True)
class MetricRow:
    project: str
    key: str
    name: str
    kind: str  # custom, pageview, click (as defined, else as LaunchDarkly has it)
    type: str  # as LaunchDarkly's UI names it: "custom conversion count", "custom numeric, P95", "pageview ..."
    event: str | None  # a custom metric's eventKey
    description: str
    tags: tuple[str, ...]
    defined_at: str | None  # file:line:col of its definition; None: not defined
    in_launchdarkly: bool
    managed: bool  # LaunchDarkly's copy carries the ownership tag
    archived: bool
    last_seen: int | None  # epoch ms; None: never (or not in LaunchDarkly)
    call_sites: tuple[CallSite, ...] | None  # None: the code was not scanned, or the metric has no event key
    uses: tuple[Use, ...]
    groups: tuple[str, ...]  # the metric groups it is in
    last_experiment: LastUse | None
    last_rollout: LastUse | None
    flags: tuple[Flag, ...] = ()


@dataclass(frozen=True)
class GroupRow:
    project: str
    key: str
    name: str
    kind: str  # funnel, standard
    description: str
    tags: tuple[str, ...]
    defined_at: str | None
    in_launchdarkly: bool
    metrics: tuple[str, ...]  # in order: a funnel's steps
    uses: tuple[Use, ...]


@dataclass(frozen=True)
class Health:
    generated_at: int  # epoch ms, from the run's clock
    stale_days: int
    code_scanned: bool
    metrics: tuple[MetricRow, ...]  # worst first
    groups: tuple[GroupRow, ...]
    flags: tuple[Flag, ...]  # every finding, worst first
    calls: int  # requests sent to LaunchDarkly
    notes: tuple[str, ...] = ()  # what could not be read

    def count(self, code: str) -> int:
        return sum(1 for flag in self.flags if flag.code == code)
