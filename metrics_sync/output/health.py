"""Render a health run (`metrics-sync health`): a text table for people, JSON for scripts (schemas/
health.schema.json), Markdown for the issue a scheduled job keeps up to date. The HTML catalogue page is in
health_page.py. Pure functions.

A finding's code, subject and message are the same in every format (the subject and message as core/findings.py
made them; Markdown quotes their code spans as code). Every outside string is escaped where it is printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from metrics_sync.core.model import Use
from metrics_sync.health.model import CODES, Flag, GroupRow, Health, LastUse, MetricRow
from metrics_sync.output.escape import compact, markdown_code, markdown_inline, markdown_text, shown

FORMAT_VERSION = 1
# An issue body is limited to 65,536 characters, and the nightly workflow puts the drift report in the same issue
# (it keeps the first 30,000 characters of this output): the findings list and the table stop whole lines short
# of these, worst first, and say how many more the JSON and HTML outputs list.
MARKDOWN_ROWS = 200  # metric rows in the Markdown table
MARKDOWN_FINDINGS_CHARS = 16_000
MARKDOWN_TABLE_CHARS = 10_000
LABELS = {"running-without-events": "running without events", "never-seen": "never seen",
          "not-seen-recently": "not seen recently", "not-sent-by-code": "not sent by code",
          "unmeasured-event": "unmeasured event", "archive-candidate": "archive candidate", "undefined": "undefined"}


def when(ms: int | None) -> str:
    """An epoch-ms time as UTC, to the minute (`2026-12-04 23:20Z`); "never" for None."""
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%MZ")


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def summary(health: Health) -> str:
    """One line: what was judged, how many of each finding, and how many calls it took."""
    counts = [f"{health.count(c)} {LABELS[c]}" for c in CODES if health.count(c)]
    found = ", ".join(counts) if counts else "no findings"
    return (f"{len(health.metrics)} metrics, {len(health.groups)} metric groups: {found}; "
            f"{health.calls} call{'s' if health.calls != 1 else ''} to LaunchDarkly")


def _status(row: MetricRow) -> str:
    return row.flags[0].code if row.flags else "ok"


def _used(uses: Sequence[Use]) -> str:
    if not uses:
        return "-"
    running = sum(1 for u in uses if u.running is True)
    return f"{len(uses)} ({running} running)" if running else str(len(uses))


def _sites(row: MetricRow) -> str:
    if row.call_sites is None:
        return "-"
    return str(len(row.call_sites))


def _label(row: MetricRow, several: bool) -> str:
    return f"{row.project}/{row.key}" if several else row.key


# --- text ------------------------------------------------------------------------------------------------


def finding_line(flag: Flag) -> str:
    """`[code] subject: message` (every format shows these three the same), then where and what to do."""
    finding = flag.finding
    where = f" ({finding.source})" if finding.source else ""
    hint = f"; {finding.hint}" if finding.hint else ""
    return shown(f"[{flag.code}] {finding.subject}: {finding.message}{where}{hint}")


def text(health: Health, *, color: bool = False) -> str:
    several = len({r.project for r in health.metrics}) > 1
    header = ("STATUS", "METRIC", "DEFINED", "IN LD", "CALL SITES", "LAST SEEN", "USED BY")
    rows = [(_status(r), compact(_label(r, several)), compact(r.defined_at or "-"),
             "archived" if r.archived else "yes" if r.in_launchdarkly else "no", _sites(r),
             when(r.last_seen) if r.in_launchdarkly else "-", _used(r.uses)) for r in health.metrics]
    widths = [max(len(cells[i]) for cells in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()
             for cells in (header, *rows)]
    if health.flags:
        lines += ["", "Findings (worst first):", *(f"  {finding_line(f)}" for f in health.flags)]
    lines += [f"note: {shown(n)}" for n in health.notes]
    lines += ["", summary(health)]
    return "\n".join(lines) + "\n"


# --- JSON ------------------------------------------------------------------------------------------------


def _use(use: Use) -> dict[str, Any]:
    return {"kind": use.kind, "key": use.key, "name": use.name, "environment": use.environment,
            "running": use.running, "state": use.state, "via": use.via}


def _last(last: LastUse | None) -> dict[str, Any] | None:
    return None if last is None else {"key": last.key, "name": last.name, "at": _iso(last.at)}


def finding_json(flag: Flag) -> dict[str, Any]:
    f = flag.finding
    return {"code": flag.code, "severity": f.severity, "subject": f.subject, "message": f.message, "hint": f.hint,
            "source": f.source, "project": flag.project or None, "about": flag.about, "key": flag.key}


def _metric_json(row: MetricRow) -> dict[str, Any]:
    return {"project": row.project, "key": row.key, "name": row.name, "kind": row.kind, "type": row.type,
            "eventKey": row.event,
            "description": row.description, "tags": list(row.tags), "definedAt": row.defined_at,
            "inLaunchDarkly": row.in_launchdarkly, "managed": row.managed, "archived": row.archived,
            "lastSeen": _iso(row.last_seen),
            "callSites": None if row.call_sites is None else [str(s) for s in row.call_sites],
            "users": [_use(u) for u in row.uses], "groups": list(row.groups),
            "lastUsedInExperiment": _last(row.last_experiment),
            "lastUsedInGuardedRollout": _last(row.last_rollout), "findings": [f.code for f in row.flags]}


def _group_json(row: GroupRow) -> dict[str, Any]:
    return {"project": row.project, "key": row.key, "name": row.name, "kind": row.kind,
            "description": row.description, "tags": list(row.tags), "definedAt": row.defined_at,
            "inLaunchDarkly": row.in_launchdarkly, "metrics": list(row.metrics), "users": [_use(u) for u in row.uses]}


def as_json(health: Health) -> dict[str, Any]:
    return {"formatVersion": FORMAT_VERSION, "generatedAt": _iso(health.generated_at), "staleDays": health.stale_days,
            "codeScanned": health.code_scanned, "calls": health.calls,
            "summary": {"metrics": len(health.metrics), "groups": len(health.groups),
                        "findings": {c: health.count(c) for c in CODES}},
            "findings": [finding_json(f) for f in health.flags],
            "metrics": [_metric_json(r) for r in health.metrics], "groups": [_group_json(g) for g in health.groups],
            "notes": list(health.notes)}


def json_text(health: Health, *, color: bool = False) -> str:
    return json.dumps(as_json(health), indent=2, allow_nan=False) + "\n"


# --- Markdown --------------------------------------------------------------------------------------------


def finding_markdown(flag: Flag) -> str:
    """`- **code** subject: message` with the where and the hint after an em dash."""
    f = flag.finding
    where = f" ({markdown_code(f.source)})" if f.source else ""
    hint = f" — {markdown_text(f.hint)}" if f.hint else ""
    return f"- **{flag.code}** {markdown_text(f.subject)}: {markdown_text(f.message)}{where}{hint}"


def _within(lines: Iterable[str], budget: int) -> list[str]:
    """The first lines whose total length (with their line breaks) stays within `budget` characters."""
    kept: list[str] = []
    for line in lines:
        budget -= len(line) + 1
        if budget < 0:
            break
        kept.append(line)
    return kept


def markdown(health: Health, *, color: bool = False) -> str:
    several = len({r.project for r in health.metrics}) > 1
    lines = ["## metrics-sync health", "", markdown_inline(summary(health)) + f" (at {when(health.generated_at)}, "
             f"stale after {health.stale_days} days).", ""]
    if health.flags:
        listed = _within(map(finding_markdown, health.flags), MARKDOWN_FINDINGS_CHARS)
        lines += ["### Findings", "", *listed]
        if len(listed) < len(health.flags):
            lines.append(f"\n… and {len(health.flags) - len(listed)} more findings (the JSON and HTML outputs list "
                         "all).")
        lines.append("")
    else:
        lines += ["Every metric is measuring something.", ""]
    flagged = [r for r in health.metrics if r.flags]
    if flagged:
        lines += ["### Metrics with findings", "", "| Metric | Findings | Defined | Last seen | Used by |",
                  "| --- | --- | --- | --- | --- |"]
        rows = _within((f"| {markdown_code(_label(row, several), table=True)} | "
                        f"{', '.join(f.code for f in row.flags)} | "
                        f"{markdown_code(row.defined_at, table=True) if row.defined_at else '-'} | "
                        f"{when(row.last_seen) if row.in_launchdarkly else '-'} | {_used(row.uses)} |"
                        for row in flagged[:MARKDOWN_ROWS]), MARKDOWN_TABLE_CHARS)
        lines += rows
        if len(flagged) > len(rows):
            lines.append(f"\n… and {len(flagged) - len(rows)} more (the JSON and HTML outputs list all).")
        lines.append("")
    lines += [f"> note: {markdown_inline(n)}" for n in health.notes]
    return "\n".join(lines).rstrip("\n") + "\n"
