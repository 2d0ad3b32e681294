"""The plan as versioned JSON: what `plan --format json` prints and `plan --out` saves.

Format (documented in docs/plan-format.md; `formatVersion` changes only on incompatible changes):
    {"formatVersion": 1, "tool": {"name", "version"}, "baseUrlHost", "ownershipTag", "prune",
     "summary": {...}, "projects": [{"project", "definitionsHash", "summary", "changes": [...],
     "wouldArchive": [...], "blocked": [...], "refused": [...], "unsentEvents": [...]}]}
Each change: action, resource (metric | metric-group), key, metricType, adopt, remoteVersion, fields
[{field, before, after, details}], before, after (canonical), patch (exact JSON Patch ops), body (exact POST
body), warnings, usedBy (the experiments, guarded rollouts, holdouts and release policies that use it), alerts
(changes to the results of running experiments), findings (the alerts and warnings as values: kind, severity,
message, subject, hint, source). Each project's `refused` and `warnings` are also in its `findings`; `blocked`
items and `unsentEvents` (metrics whose event no code sends, with plan --code) name their users in `usedBy` as
changes do.
It never holds the access token: nothing in a Plan does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from metrics_sync.core.errors import PlanError
from metrics_sync.core.files import write_atomic
from metrics_sync.core.findings import Finding, Severity
from metrics_sync.core.model import Blocked, Change, FieldChange, Plan, ProjectPlan, UnsentEvent, Use
from metrics_sync.definitions.schema import plan_problems
from metrics_sync.launchdarkly.wire import BadJson, decode

FORMAT_VERSION = 1


def _summary(create: int, update: int, archive: int, unchanged: int) -> dict[str, int]:
    return {"create": create, "update": update, "archive": archive, "unchanged": unchanged}


def _use(u: Use) -> dict[str, Any]:
    shown = {"kind": u.kind, "key": u.key, "name": u.name, "environment": u.environment, "running": u.running,
             "via": u.via}
    return {**shown, "analysisUnit": u.analysis_unit} if u.analysis_unit else shown


def _uses(data: dict[str, Any]) -> tuple[Use, ...]:
    return tuple(Use(u["kind"], u["key"], u.get("name", ""), u.get("environment", ""), u.get("running"), u.get("via"),
                     u.get("analysisUnit")) for u in data.get("usedBy", []))


def _finding(f: Finding) -> dict[str, Any]:
    return {"kind": f.kind, "severity": f.severity, "message": f.message, "subject": f.subject, "hint": f.hint,
            "source": f.source}


def _change(c: Change) -> dict[str, Any]:
    return {
        "action": c.action,
        "resource": c.resource,
        "key": c.key,
        "metricType": c.metric_type,
        "adopt": c.adopt,
        "restore": c.restore,
        "remoteVersion": c.remote_version,
        "fields": [{"field": f.field, "before": f.before, "after": f.after, "details": list(f.details)}
                   for f in c.fields],
        "before": c.before,
        "after": c.after,
        "patch": c.patch,
        "body": c.body,
        "warnings": [f.text() for f in c.warnings],
        "source": c.source,
        "typeBefore": c.type_before,
        "usedBy": [_use(u) for u in c.used_by],
        "alerts": [f.text() for f in c.alerts],
        "findings": [_finding(f) for f in c.findings],
    }


def to_dict(plan: Plan) -> dict[str, Any]:
    return {
        "formatVersion": FORMAT_VERSION,
        "tool": {"name": "metrics-sync", "version": plan.tool_version},
        "baseUrlHost": plan.base_url_host,
        "ownershipTag": plan.ownership_tag,
        "prune": plan.prune,
        "targets": list(plan.targets),
        "definitionFiles": list(plan.files),
        "summary": {**_summary(plan.total("create"), plan.total("update"), plan.total("archive"), plan.unchanged),
                    "delete": plan.total("delete"), "unchangedGroups": plan.unchanged_groups,
                    "unmanaged": sum(p.unmanaged for p in plan.projects), "wouldArchive": plan.would_archive,
                    "wouldDelete": plan.would_delete, "blocked": plan.blocked, "alerts": len(plan.alerts)},
        "projects": [
            {
                "project": p.project,
                "definitionsHash": p.definitions_hash,
                "summary": {**_summary(p.count("create"), p.count("update"), p.count("archive"), p.unchanged),
                            "delete": p.count("delete"), "unchangedGroups": p.unchanged_groups,
                            "unmanaged": p.unmanaged, "unmanagedGroups": p.unmanaged_groups},
                "changes": [_change(c) for c in p.changes],
                "wouldArchive": p.would_archive,
                "wouldDelete": p.would_delete,
                "blocked": [{"key": b.key, "reason": b.reason, "resource": b.resource,
                             "usedBy": [_use(u) for u in b.used_by]} for b in p.blocked],
                "refused": [f.text() for f in p.refused],
                "warnings": [f.text() for f in p.warnings],
                "findings": [_finding(f) for f in p.findings],
                "unmanagedSample": p.unmanaged_sample,
                "unsentEvents": [{"key": u.key, "event": u.event, "source": u.source,
                                  "usedBy": [_use(use) for use in u.used_by]} for u in p.unsent],
            }
            for p in plan.projects
        ],
    }


def to_json(plan: Plan) -> str:
    # allow_nan=False: standard JSON only (a non-finite number cannot reach a plan; if one did, fail loudly).
    return json.dumps(to_dict(plan), indent=2, sort_keys=False, ensure_ascii=False, allow_nan=False) + "\n"


def _findings(data: dict[str, Any], **texts: list[str]) -> tuple[Finding, ...]:
    """The findings of a change or project: as values (`findings`), or, from a plan file written before they
    were saved as values, from their text (`alerts`, `refused`, `warnings`)."""
    if "findings" in data:
        return tuple(Finding(f["kind"], f["severity"], f["message"], f.get("subject", ""), f.get("hint"),
                             f.get("source")) for f in data["findings"])
    severity: dict[str, Severity] = {"alerts": "alert", "refused": "refusal", "warnings": "warning"}
    return tuple(Finding("from-plan-file", severity[name], text) for name, found in texts.items() for text in found)


def from_dict(data: Any) -> Plan:
    if not isinstance(data, dict) or "formatVersion" not in data:
        raise PlanError("not a metrics-sync plan file")
    if data["formatVersion"] != FORMAT_VERSION:
        raise PlanError(f"plan file format {data['formatVersion']} is not supported (expected {FORMAT_VERSION})",
                        "run plan again with this version of metrics-sync")
    try:
        projects = [
            ProjectPlan(
                project=p["project"],
                definitions_hash=p["definitionsHash"],
                changes=[
                    Change(
                        action=c["action"], key=c["key"], metric_type=c["metricType"], before=c["before"],
                        after=c["after"],
                        fields=[FieldChange(f["field"], f["before"], f["after"], tuple(f.get("details", [])))
                                for f in c["fields"]],
                        patch=c["patch"], body=c["body"], remote_version=c["remoteVersion"], adopt=c["adopt"],
                        restore=c.get("restore", False), source=c.get("source"),
                        type_before=c.get("typeBefore"), resource=c.get("resource", "metric"),
                        used_by=_uses(c),
                        findings=_findings(c, alerts=c.get("alerts", []), warnings=c["warnings"]),
                    )
                    for c in p["changes"]
                ],
                unchanged=p["summary"]["unchanged"],
                unmanaged=p["summary"]["unmanaged"],
                would_archive=list(p["wouldArchive"]),
                blocked=[Blocked(b["key"], b["reason"], b.get("resource", "metric"), _uses(b)) for b in p["blocked"]],
                findings=list(_findings(p, refused=p["refused"], warnings=p.get("warnings", []))),
                unmanaged_sample=list(p.get("unmanagedSample", [])),
                unchanged_groups=p["summary"].get("unchangedGroups", 0),
                unmanaged_groups=p["summary"].get("unmanagedGroups", 0),
                would_delete=list(p.get("wouldDelete", [])),
                unsent=[UnsentEvent(u["key"], u["event"], u["source"], _uses(u)) for u in p.get("unsentEvents", [])],
            )
            for p in data["projects"]
        ]
        return Plan(projects=projects, prune=bool(data["prune"]), ownership_tag=data["ownershipTag"],
                    base_url_host=data["baseUrlHost"], tool_version=data["tool"]["version"],
                    targets=tuple(data.get("targets", ())), files=tuple(data.get("definitionFiles", ())))
    except (KeyError, TypeError) as exc:
        raise PlanError(f"plan file is damaged or incomplete (missing {exc})") from None


# Bounds on the work a plan file may ask for, checked before it is parsed. Each JSON value (string, number,
# object, list) but the first follows a `[`, `{`, `,` or `:`, so these marks bound the values; parsing costs some
# 70 bytes of memory per value at least (an empty object is 64), and a file of nothing but `{}` would cost 36 times
# its size. A real plan has about 3.5 KB and 210 marks per change: a file is parsed only when its marks fit what a
# plan of its changes needs (with room), so memory stays proportional to a real plan, under 300 MB at the caps.
MAX_PLAN_BYTES = 32 * 1024 * 1024  # some 9,000 changes
MAX_PLAN_MARKS = 2_000_000
MARKS_BASE, MARKS_PER_CHANGE = 100_000, 2_000  # ten times a real change (filter trees, long lists)


def _marks(content: bytes) -> tuple[int, int]:
    """The marks in `content` that may precede a JSON value, and its changes (each has an "action"), counted in
    C without parsing. Marks inside strings count too, which only makes the bound safer."""
    return sum(content.count(mark) for mark in (b"[", b"{", b",", b":")), content.count(b'"action"')


def read(path: Path) -> Plan:
    """Read a plan file: bounded (its bytes, then its brackets and separators for its number of changes, before
    parsing), strict JSON, and the documented format (schemas/plan.schema.json)."""
    try:
        with path.open("rb") as fh:  # (a plan is written by plan --out: a regular file, or a pipe from a CI step)
            content = fh.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise PlanError(f"cannot read plan file {path}: {exc.strerror or exc}") from None
    if len(content) > MAX_PLAN_BYTES:
        raise PlanError(f"{path} is larger than {MAX_PLAN_BYTES // (1024 * 1024)} MB; not a plan file")
    marks, changes = _marks(content)
    if marks > min(MAX_PLAN_MARKS, MARKS_BASE + MARKS_PER_CHANGE * changes):
        raise PlanError(f"{path} is not a plan file: it has {marks:,} JSON brackets and separators, more than a "
                        f"plan of {changes:,} changes needs; it was not parsed",
                        "a plan file is applied only as plan wrote it; run plan again")
    try:
        data = decode(content)
    except BadJson as exc:
        raise PlanError(f"{path} is not a plan file ({exc})") from None
    if isinstance(data, dict) and data.get("formatVersion") not in (None, FORMAT_VERSION):
        raise PlanError(f"plan file format {data['formatVersion']!r} is not supported (expected {FORMAT_VERSION})",
                        "run plan again with this version of metrics-sync")
    problems = plan_problems(data)
    if problems:
        raise PlanError(f"{path} is not a valid plan file: {'; '.join(problems)}",
                        "a plan file is applied only as plan wrote it; run plan again")
    return from_dict(data)


def write(path: Path, plan: Plan) -> None:
    """Write atomically: a reader never sees half a plan."""
    write_atomic(path, to_json(plan))
