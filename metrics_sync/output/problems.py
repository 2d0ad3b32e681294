"""Render validation problems: text for people, JSON for tools, GitHub workflow annotations for PRs.

Pure functions from problems to strings; the CLI decides where they are written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from metrics_sync.core.model import Definitions, Problem
from metrics_sync.output.escape import shown

FORMAT_VERSION = 1


def problem_line(problem: Problem) -> str:
    """`file:line:col: message (at metrics[2].unit); hint: ...` on one line (what came from the file is
    escaped: a value cannot carry terminal control sequences or a line break)."""
    where = problem.file
    if problem.line is not None:
        where += f":{problem.line}:{problem.column or 1}"
    text = f"{where}: "
    if problem.severity == "warning":
        text += "warning: "
    text += problem.message
    if problem.path:
        path = problem.path if len(problem.path) <= 80 else f"{problem.path[:40]}…{problem.path[-36:]}"
        text += f" (at {path})"
    if problem.hint:
        text += f"; hint: {problem.hint}"
    return shown(text)


def _counts(problems: Sequence[Problem]) -> tuple[int, int]:
    errors = sum(1 for p in problems if p.severity == "error")
    return errors, len(problems) - errors


def text(problems: Sequence[Problem], definitions: Definitions) -> str:
    lines = [problem_line(p) for p in problems]
    errors, warnings = _counts(problems)
    files = len(definitions.files)
    metrics, groups = definitions.metric_count, definitions.group_count
    scope = f"{metrics} metric{'s' if metrics != 1 else ''}"
    if groups:
        scope += f" and {groups} metric group{'s' if groups != 1 else ''}"
    scope += f" in {files} file{'s' if files != 1 else ''}"
    if errors:
        lines.append(f"Found {errors} error{'s' if errors != 1 else ''} ({scope} read).")
    else:
        note = f" with {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
        lines.append(f"OK: {scope} valid{note}.")
    return "\n".join(lines) + "\n"


def json_text(problems: Sequence[Problem], definitions: Definitions) -> str:
    errors, warnings = _counts(problems)
    payload = {
        "formatVersion": FORMAT_VERSION,
        "valid": errors == 0,
        "files": len(definitions.files),
        "metrics": definitions.metric_count,
        "metricGroups": definitions.group_count,
        "errors": errors,
        "warnings": warnings,
        "problems": [
            {
                "file": p.file,
                "line": p.line,
                "column": p.column,
                "severity": p.severity,
                "message": p.message,
                "path": p.path,
                "hint": p.hint,
            }
            for p in problems
        ],
    }
    return json.dumps(payload, indent=2, allow_nan=False) + "\n"


def _escape_data(text: str) -> str:
    # GitHub workflow command escaping (actions/toolkit: escapeData / escapeProperty).
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github(problems: Sequence[Problem], definitions: Definitions) -> str:
    lines = []
    for p in problems:
        props = [f"file={_escape_property(shown(p.file))}"]
        if p.line is not None:
            props.append(f"line={p.line}")
            props.append(f"col={p.column or 1}")
        props.append("title=metrics-sync")
        message = p.message + (f" (at {p.path})" if p.path else "") + (f"; hint: {p.hint}" if p.hint else "")
        lines.append(f"::{p.severity} {','.join(props)}::{_escape_data(shown(message))}")
    errors, _ = _counts(problems)
    files = len({p.file for p in problems if p.severity == "error"})
    lines.append(f"metrics-sync: {errors} error{'s' if errors != 1 else ''} in {files} file{'s' if files != 1 else ''}"
                 f" ({len(definitions.files)} read)"
                 if errors else f"metrics-sync: {definitions.metric_count} metric(s) valid")
    return "\n".join(lines) + "\n"


RENDERERS = {"text": text, "json": json_text, "github": github}
