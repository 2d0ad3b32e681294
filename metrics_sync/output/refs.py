"""Render a code-refs report (`metrics-sync refs`): text for people, JSON for tools. Pure functions.

Paths, keys and call texts come from the application code and the definitions: every one is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from metrics_sync.coderefs.report import SHOWN_PLACES, MetricRefs, Report
from metrics_sync.coderefs.scanner import Ref
from metrics_sync.output.escape import shown

FORMAT_VERSION = 1


def _places(refs: Sequence[Ref]) -> str:
    text = ", ".join(f"{r.file}:{r.line}:{r.column}" for r in refs[:SHOWN_PLACES])
    more = len(refs) - SHOWN_PLACES
    return text + (f" and {more} more" if more > 0 else "")


def _label(item: MetricRefs, several_projects: bool) -> str:
    return f"{item.metric.project}/{item.metric.key}" if several_projects else item.metric.key


def _scanned(report: Report) -> str:
    scan = report.scan
    skipped = ", ".join(f"{count} {why}" for why, count in sorted(scan.skipped.items()))
    # Quoted: a folder's name may hold spaces or end in a full stop. (Escaped for the terminal with the line.)
    text = f"Scanned {scan.scanned} of {scan.listed} files under {', '.join(f'`{f}`' for f in scan.folders)}"
    return text + (f" (skipped: {skipped})." if skipped else ".")


def text(report: Report) -> str:
    several = len({m.metric.project for m in report.metrics}) > 1
    sent = [m for m in report.metrics if m.refs]
    unsent = report.unsent
    lines: list[str] = []
    if sent:
        width = max(len(_label(m, several)) for m in sent)
        lines.append(f"Metrics whose event the code sends ({len(sent)}):")
        lines += [f"  {_label(m, several):<{width}}  event {m.event}: {_places(m.refs)}" for m in sent]
    if unsent:
        width = max(len(_label(m, several)) for m in unsent)
        lines.append(f"Metrics whose event no code sends ({len(unsent)}): they will have no data")
        lines += [f"  {_label(m, several):<{width}}  event {m.event} (defined at {m.where})" for m in unsent]
    if report.unmeasured:
        lines.append(f"Events the code sends that no metric measures ({len(report.unmeasured)}):")
        lines += [f"  {event}: {_places(refs)}" for event, refs in report.unmeasured]
    if report.dynamic:
        lines.append(f"Track calls whose event key is known only at run time ({len(report.dynamic)}; not matched):")
        lines += [f"  {r.file}:{r.line}:{r.column}: {r.call}" for r in report.dynamic]
    lines.append(_scanned(report))
    total = len(report.metrics)
    summary = (f"{len(sent)} of {total} custom metrics have their event sent by the code" if total != 1 else
               f"{len(sent)} of 1 custom metric has its event sent by the code")
    if unsent:
        summary += f"; {len(unsent)} {'is' if len(unsent) == 1 else 'are'} not sent"
    if report.without_event:
        summary += f" ({report.without_event} pageview or click metric{'s' if report.without_event != 1 else ''} " \
                   f"{'have' if report.without_event != 1 else 'has'} no event key)"
    lines.append(summary + ".")
    return "".join(shown(line) + "\n" for line in lines)


def _at(ref: Ref) -> dict[str, object]:
    return {"file": ref.file, "line": ref.line, "column": ref.column}


def json_text(report: Report) -> str:
    scan = report.scan
    payload = {
        "formatVersion": FORMAT_VERSION,
        "folders": list(scan.folders),
        "files": {"listed": scan.listed, "scanned": scan.scanned, "skipped": dict(sorted(scan.skipped.items()))},
        "notes": scan.notes,
        "metrics": [{"project": m.metric.project, "key": m.metric.key, "eventKey": m.event, "definedAt": m.where,
                     "sent": bool(m.refs), "sentAt": [_at(r) for r in m.refs]} for m in report.metrics],
        "unmeasured": [{"eventKey": event, "sentAt": [_at(r) for r in refs]} for event, refs in report.unmeasured],
        "dynamic": [{**_at(r), "call": r.call} for r in report.dynamic],
    }
    return json.dumps(payload, indent=2, allow_nan=False) + "\n"
