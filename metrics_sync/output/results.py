"""Apply results as text (one line per change and a summary) and JSON. Pure functions."""

from __future__ import annotations

import json
from typing import Any

from metrics_sync.core.model import ApplyResult, ChangeResult
from metrics_sync.core.resources import METRIC, RESOURCES
from metrics_sync.output.paint import Painter

FORMAT_VERSION = 1
# Where the roles metrics-sync needs are described, for a hint that works wherever the tool is installed.
ROLES_URL = "https://github.com/metrics-sync/metrics-sync#access-tokens-and-roles"


_VERBS = {"created": ("create", "+"), "updated": ("update", "~"), "restored": ("update", "~"),
          "archived": ("archive", "-"), "deleted": ("archive", "-")}


def lines(r: ChangeResult, *, color: bool = False, qualified: bool = False) -> list[str]:
    """The lines one change's outcome prints (apply prints them as each change completes)."""
    paint = Painter(color)
    where = f"{r.project}/{r.key}" if qualified else r.key
    if r.resource != METRIC.kind:  # a metric is named by its key alone
        where = f"{RESOURCES[r.resource].name} {where}"
    out = []
    if r.outcome in _VERBS:
        style, symbol = _VERBS[r.outcome]
        note = f" ({r.message})" if r.message else ""
        out.append(paint(style, f"  {symbol} {r.outcome} {where}{note}"))
    elif r.outcome == "failed":
        at = f" ({r.source})" if r.source else ""
        out.append(paint("error", f"  ! failed {where}{at}: {r.message}"))
    else:
        out.append(paint(None, f"  . skipped {where}: {r.message}"))
    if r.not_kept:
        out.append(paint("warning", f"    warning: LaunchDarkly did not keep {', '.join(r.not_kept)} "
                                    f"(it ignores fields it does not accept)"))
    return out


def text(result: ApplyResult, *, color: bool = False, streamed: bool = False) -> str:
    """Every outcome (unless they were `streamed` already) and the summary."""
    paint = Painter(color)
    qualified = len({x.project for x in result.results}) > 1
    out = [] if streamed else [line for r in result.results for line in lines(r, color=color, qualified=qualified)]
    if result.stopped:
        out.append(paint("error", "Stopped: LaunchDarkly refused the access token's permission for a write, so no "
                                  "further change was started. Give the token a role that may change metrics "
                                  f"(see {ROLES_URL}), then run apply again."))
    out.append(paint("bold", apply_summary(result)))
    return "\n".join(out) + "\n"


def apply_summary(result: ApplyResult) -> str:
    prefix = "Apply interrupted" if result.interrupted else "Apply complete"
    restored = result.count("restored")
    text = (f"{prefix}: {result.count('created')} created, {result.count('updated')} updated, "
            + (f"{restored} restored, " if restored else "")
            + f"{result.count('archived')} archived, "
            + (f"{result.count('deleted')} deleted, " if result.count("deleted") else "")
            + f"{result.count('failed')} failed.")
    skipped = result.count("skipped")
    if skipped:
        text = text[:-1] + f", {skipped} not started."
    return text


def json_text(result: ApplyResult) -> str:
    payload: dict[str, Any] = {
        "formatVersion": FORMAT_VERSION,
        "interrupted": result.interrupted,
        "stopped": result.stopped,
        "summary": {k: result.count(k) for k in ("created", "updated", "restored", "archived", "deleted", "failed",
                                                 "skipped")},
        "results": [{"project": r.project, "resource": r.resource, "key": r.key, "action": r.action,
                     "outcome": r.outcome,
                     "message": r.message, "notKept": list(r.not_kept), "source": r.source} for r in result.results],
    }
    return json.dumps(payload, indent=2, allow_nan=False) + "\n"
