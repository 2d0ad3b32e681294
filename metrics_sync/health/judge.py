"""From the definitions, the code's track calls and LaunchDarkly's record, each metric's row and findings.
Pure: the time is given (the run's clock), so the same inputs give the same findings.

What LaunchDarkly's `lastSeen` means is not documented (docs/launchdarkly-contract.md, A50): per event key
(metrics sharing a key share it) or per metric (events before the metric existed do not count). The findings
hold under both: each metric is judged by its own `lastSeen`, and the messages say LaunchDarkly has seen no
event *for the metric*, which is true under either reading. It is one value for all environments (the
representation has none), so an event seen only in a test environment keeps a metric from being "never seen".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from metrics_sync.coderefs.report import Report
from metrics_sync.core.findings import Finding, Severity, code
from metrics_sync.core.model import Definitions, DesiredGroup, DesiredMetric, Use
from metrics_sync.core.resources import METRIC
from metrics_sync.health.model import (
    ARCHIVE_CANDIDATE,
    CODES,
    NEVER_SEEN,
    NOT_SEEN_RECENTLY,
    NOT_SENT_BY_CODE,
    RUNNING_WITHOUT_EVENTS,
    SILENT_HOURS,
    UNDEFINED,
    UNMEASURED_EVENT,
    CallSite,
    Flag,
    GroupRow,
    Health,
    LastUse,
    MetricRow,
)
from metrics_sync.health.read import Observed
from metrics_sync.planning.usage import groups_of, uses_of

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
SEVERITY: dict[str, Severity] = {RUNNING_WITHOUT_EVENTS: "alert", NEVER_SEEN: "warning", NOT_SEEN_RECENTLY: "warning",
                                 NOT_SENT_BY_CODE: "warning", UNMEASURED_EVENT: "note", ARCHIVE_CANDIDATE: "note",
                                 UNDEFINED: "note"}
_RANK = {"refusal": 0, "alert": 1, "warning": 2, "note": 3}


@dataclass(frozen=True)
class Inputs:
    definitions: Definitions
    observed: Mapping[str, Observed]  # by project
    report: Report | None  # the code's track calls; None: not scanned
    ownership_tag: str
    now: int  # epoch ms
    stale_days: int
    calls: int = 0


def judge(inputs: Inputs) -> Health:
    sent = _sent(inputs.report)
    metrics: list[MetricRow] = []
    groups: list[GroupRow] = []
    flags: list[Flag] = []
    projects = sorted({*inputs.observed, *inputs.definitions.metrics, *inputs.definitions.groups})
    for project in projects:
        observed = inputs.observed.get(project) or Observed(project, {}, {})
        defined_groups = {g.key: g for g in inputs.definitions.groups.get(project, [])}
        group_rows = _group_rows(project, defined_groups, observed)
        groups.extend(group_rows)
        members: dict[str, list[str]] = {}
        for group_row in group_rows:
            for key in group_row.metrics:
                members.setdefault(key, []).append(group_row.key)
        group_uses = {g.key: g.uses for g in group_rows}
        defined = {m.key: m for m in inputs.definitions.metrics.get(project, [])}
        for key in [*defined, *sorted(k for k in observed.metrics if k not in defined)]:
            rep = observed.metrics.get(key)
            if key not in defined and (rep is None or rep.get("archived")):
                continue  # an archived metric nobody defines: history, not the catalogue
            row = _metric_row(project, defined.get(key), rep, observed, members.get(key, []), group_uses,
                              sent if inputs.report is not None else None, inputs.ownership_tag)
            row = replace(row, flags=tuple(_findings(row, inputs)))
            metrics.append(row)
            flags.extend(row.flags)
    if inputs.report is not None:
        flags.extend(_unmeasured(inputs.report, inputs.observed))
    metrics.sort(key=lambda r: (_worst(r.flags), r.project, r.key))
    flags.sort(key=lambda f: (_RANK[f.finding.severity], CODES.index(f.code), f.project, f.key))
    notes = tuple(f"{project}: {note}" for project in projects
                  for note in (inputs.observed[project].notes if project in inputs.observed else ()))
    return Health(inputs.now, inputs.stale_days, inputs.report is not None, tuple(metrics), tuple(groups),
                  tuple(flags), inputs.calls, notes)


def _worst(flags: Sequence[Flag]) -> tuple[int, int]:
    return min(((_RANK[f.finding.severity], CODES.index(f.code)) for f in flags), default=(9, 9))


def _sent(report: Report | None) -> dict[str, list[CallSite]]:
    sent: dict[str, list[CallSite]] = {}
    for ref in report.scan.refs if report is not None else ():
        if ref.event is not None:
            sent.setdefault(ref.event, []).append(CallSite(ref.file, ref.line, ref.column))
    return sent


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _tags(value: Any) -> tuple[str, ...]:
    return tuple(str(t) for t in value) if isinstance(value, list) else ()


def _uses(project: str, rep: Mapping[str, Any] | None, observed: Observed, kind: str, key: str,
          groups: Sequence[str], group_uses: Mapping[str, Sequence[Use]]) -> tuple[Use, ...]:
    found: dict[tuple[str, str, str], Use] = {}
    own = uses_of(project, rep, observed.statuses) if rep is not None else []
    through = [replace(u, via=u.via or g) for g in groups for u in group_uses.get(g, ())]
    held = observed.holders.of(kind, key, groups) if observed.holders is not None else []
    for use in (*own, *held, *through):
        found.setdefault((use.kind, use.environment, use.key), use)
    return tuple(found.values())


def _group_rows(project: str, defined: Mapping[str, DesiredGroup], observed: Observed) -> list[GroupRow]:
    rows = []
    for key in [*defined, *sorted(k for k in observed.groups if k not in defined)]:
        group, rep = defined.get(key), observed.groups.get(key)
        fields: Mapping[str, Any] = group.fields if group is not None else rep or {}
        steps = [str(m.get("key")) for m in fields.get("metrics") or [] if isinstance(m, Mapping)]
        rows.append(GroupRow(project, key, _text(fields.get("name")) or key, _text(fields.get("kind")),
                             _text(fields.get("description")), _tags(fields.get("tags")),
                             str(group.source) if group is not None else None, rep is not None, tuple(steps),
                             _uses(project, rep, observed, "metric-group", key, (), {})))
    return rows


def _last_use(value: Any, name_field: str) -> LastUse | None:
    if not isinstance(value, Mapping):
        return None
    key = value.get("key") or value.get("flagKey") or value.get("_id")
    times = [t for t in (value.get("archivedDate"), value.get("creationDate"), value.get("lastModified"))
             if isinstance(t, int) and not isinstance(t, bool)]
    return LastUse(str(key or "(unnamed)"), _text(value.get(name_field)), max(times, default=None))


def _metric_row(project: str, metric: DesiredMetric | None, rep: Mapping[str, Any] | None, observed: Observed,
                groups: Sequence[str], group_uses: Mapping[str, Sequence[Use]],
                sent: Mapping[str, Sequence[CallSite]] | None, tag: str) -> MetricRow:
    fields: Mapping[str, Any] = metric.fields if metric is not None else rep or {}
    key = metric.key if metric is not None else str((rep or {}).get("key"))
    event = fields.get("eventKey") if isinstance(fields.get("eventKey"), str) else None
    in_groups = list(dict.fromkeys([*groups, *(groups_of(rep) if rep is not None else [])]))
    seen = (rep or {}).get("lastSeen")
    return MetricRow(
        project, key, _text(fields.get("name")) or key, _text(fields.get("kind")), METRIC.describe(
            METRIC.canonical(fields)), event,
        _text(fields.get("description")), _tags(fields.get("tags")),
        str(metric.source) if metric is not None else None, rep is not None,
        rep is not None and tag in _tags(rep.get("tags")), bool((rep or {}).get("archived")),
        seen if isinstance(seen, int) and not isinstance(seen, bool) else None,
        None if sent is None or event is None else tuple(sent.get(event, ())),
        _uses(project, rep, observed, "metric", key, in_groups, group_uses), tuple(in_groups),
        _last_use((rep or {}).get("lastUsedInExperiment"), "name"),
        _last_use((rep or {}).get("lastUsedInGuardedRollout"), "flagName"))


def _subject(row: MetricRow) -> str:
    return f"metric {code(row.key)} in project {code(row.project)}"


def _flag(row: MetricRow, kind: str, message: str, hint: str | None = None) -> Flag:
    return Flag(Finding(kind, SEVERITY[kind], message, _subject(row), hint, row.defined_at), row.project, row.key)


def _ago(ms: int) -> str:
    if ms < 2 * HOUR_MS:
        return f"{max(ms // 60_000, 0)} minutes"
    if ms < 2 * DAY_MS:
        return f"{ms // HOUR_MS} hours"
    return f"{ms // DAY_MS} days"


def _findings(row: MetricRow, inputs: Inputs) -> list[Flag]:
    out: list[Flag] = []
    what = f"event {code(row.event)}" if row.event else "event"
    if row.in_launchdarkly and not row.archived:
        running = [u for u in row.uses if u.running is True and u.kind != "release policy"]
        age = None if row.last_seen is None else inputs.now - row.last_seen
        if running and (age is None or age > SILENT_HOURS * HOUR_MS):
            when = "ever" if age is None else f"in the last {SILENT_HOURS} hours (last {_ago(age)} ago)"
            users = ", ".join(u.describe() for u in running)
            out.append(_flag(row, RUNNING_WITHOUT_EVENTS,
                             f"LaunchDarkly has seen no {what} for it {when}, but {users} measures it: it is "
                             "collecting nothing", "check that the code sends the event with exactly this key"))
        if age is None:
            out.append(_flag(row, NEVER_SEEN, f"LaunchDarkly has never seen an {what} for it",
                             "send the event, or remove the metric if nothing will"))
        elif age > inputs.stale_days * DAY_MS:
            out.append(_flag(row, NOT_SEEN_RECENTLY,
                             f"LaunchDarkly last saw an {what} for it {_ago(age)} ago (more than "
                             f"{inputs.stale_days} days)", "check that the code still sends the event"))
    if row.call_sites is not None and not row.call_sites and row.event:
        folders = ", ".join(code(f) for f in inputs.report.scan.folders) if inputs.report is not None else ""
        out.append(_flag(row, NOT_SENT_BY_CODE, f"no track call under {folders} sends its {what}",
                         "send it with the SDK's track call; if a wrapper sends it, add the wrapper to "
                         "codeRefs.aliases"))
    if row.defined_at and row.in_launchdarkly and not row.archived and not row.uses and not row.groups:
        last = [u.at for u in (row.last_experiment, row.last_rollout) if u is not None and u.at is not None]
        recent = any(inputs.now - at <= inputs.stale_days * DAY_MS for at in last)
        if not recent:
            out.append(_flag(row, ARCHIVE_CANDIDATE,
                             f"nothing uses it, it is in no metric group, and no experiment or guarded rollout used "
                             f"it in the last {inputs.stale_days} days",
                             "remove it from the definitions (plan --prune then archives it)"))
    if not row.defined_at and row.managed and not row.archived:
        out.append(_flag(row, UNDEFINED, f"it carries the ownership tag {code(inputs.ownership_tag)} but no "
                         "definitions file defines it", "define it again, or archive it with plan/apply --prune"))
    return out


def _unmeasured(report: Report, observed: Mapping[str, Observed]) -> list[Flag]:
    flags = []
    for event, refs in report.unmeasured:
        in_ld = sorted(code(f"{p}/{r.get('key')}") for p, o in observed.items()
                       for r in o.metrics.values() if r.get("eventKey") == event and not r.get("archived"))
        also = f" (in LaunchDarkly, outside the definitions: {', '.join(in_ld)})" if in_ld else ""
        places = len(refs)
        first = refs[0]
        finding = Finding(UNMEASURED_EVENT, SEVERITY[UNMEASURED_EVENT],
                          f"the code sends it ({places} track call{'s' if places != 1 else ''}) but no defined metric "
                          f"measures it{also}", f"event {code(event)}",
                          "define a metric for it, or remove the track call",
                          f"{first.file}:{first.line}:{first.column}")
        flags.append(Flag(finding, "", event, "event"))
    return flags
