"""Apply results as text (one line per change and a summary) and JSON. Pure functions."""

from __future__ import annotations

import json
from typing import Any

from metrics_sync.model import ApplyResult
from metrics_sync.output.paint import Painter

FORMAT_VERSION = 1


def text(result: ApplyResult, *, color: bool = False) -> str:
    paint = Painter(color)
    verbs = {"created": ("create", "+"), "updated": ("update", "~"), "restored": ("update", "~"),
             "archived": ("archive", "-")}
    lines = []
    for r in result.results:
        where = f"{r.key}" if len({x.project for x in result.results}) == 1 else f"{r.project}/{r.key}"
        if r.outcome in verbs:
            style, symbol = verbs[r.outcome]
            note = f" ({r.message})" if r.message else ""
            lines.append(paint(style, f"  {symbol} {r.outcome} {where}{note}"))
        elif r.outcome == "failed":
            lines.append(paint("error", f"  ! failed {where}: {r.message}"))
        else:
            lines.append(paint(None, f"  . skipped {where}: {r.message}"))
        if r.not_kept:
            lines.append(paint("warning", f"    warning: LaunchDarkly did not keep {', '.join(r.not_kept)} "
                                          f"(it ignores fields it does not accept)"))
    lines.append(paint("bold", apply_summary(result)))
    return "\n".join(lines) + "\n"


def apply_summary(result: ApplyResult) -> str:
    prefix = "Apply interrupted" if result.interrupted else "Apply complete"
    restored = result.count("restored")
    text = (f"{prefix}: {result.count('created')} created, {result.count('updated')} updated, "
            + (f"{restored} restored, " if restored else "")
            + f"{result.count('archived')} archived, {result.count('failed')} failed.")
    skipped = result.count("skipped")
    if skipped:
        text = text[:-1] + f", {skipped} not started."
    return text


def json_text(result: ApplyResult) -> str:
    payload: dict[str, Any] = {
        "formatVersion": FORMAT_VERSION,
        "interrupted": result.interrupted,
        "summary": {k: result.count(k) for k in ("created", "updated", "restored", "archived", "failed", "skipped")},
        "results": [{"project": r.project, "key": r.key, "action": r.action, "outcome": r.outcome,
                     "message": r.message, "notKept": list(r.not_kept)} for r in result.results],
    }
    return json.dumps(payload, indent=2, allow_nan=False) + "\n"
