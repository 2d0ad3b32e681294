"""Plans as text (terraform style) and Markdown (a pull-request comment). Pure functions.

Text uses `+ create`, `~ update`, `- archive`, one line per changed field (`old → new`) and one summary
line. Colour is the caller's decision (`color=True` only on a terminal without NO_COLOR). The JSON form
of a plan is the plan file's (planfile.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from metrics_sync.model import Change, FieldChange, Plan, ProjectPlan
from metrics_sync.output.paint import Painter
from metrics_sync.planner import to_text

MARKDOWN_LIMIT = 60_000  # GitHub rejects comments over 65,536 characters; keep a margin
_SYMBOL = {"create": "+", "update": "~", "archive": "-"}
# GitHub colours diff lines by their first character: "!" shows updates in orange (as terraform PR bots do).
_MD_SYMBOL = {"create": "+", "update": "!", "archive": "-"}

def summary_line(plan: Plan) -> str:
    if plan.refused:
        count = len(plan.refused)
        return f"Plan refused: {count} change{'s' if count != 1 else ''} LaunchDarkly cannot make (see above)."
    if not plan.has_changes:
        return f"No changes. {plan.unchanged} metric{'s' if plan.unchanged != 1 else ''} match the definitions."
    return (f"Plan: {plan.total('create')} to create, {plan.total('update')} to update, "
            f"{plan.total('archive')} to archive, {plan.unchanged} unchanged.")


def _title(change: Change, symbols: dict[str, str] = _SYMBOL) -> str:
    verb = "adopt" if change.adopt else "restore" if change.restore else change.action
    return f"{symbols[change.action]} {verb} {change.key} ({change.metric_type})"


def _field_lines(change: Change) -> Iterator[str]:
    width = max((len(f.field) for f in change.fields), default=0)
    for f in change.fields:
        yield from _one_field(change, f, width)


def _one_field(change: Change, f: FieldChange, width: int) -> Iterator[str]:
    label = f"{f.field}:".ljust(width + 1)
    if change.action == "create":
        yield f"{label} {to_text(f.after)}"
    elif f.details:
        yield f"{label} {'; '.join(f.details)}"
    else:
        before = "(none)" if f.before is None else to_text(f.before)
        after = "(removed)" if f.after is None else to_text(f.after)
        yield f"{label} {before} → {after}"


def _project_text(p: ProjectPlan, paint: Painter) -> list[str]:
    lines = [paint("bold", f"Project {p.project}")]
    for change in p.changes:
        lines.append("  " + paint(change.action, _title(change)))
        if change.adopt:
            lines.append("      (exists in LaunchDarkly without the ownership tag: metrics-sync will manage it)")
        lines.extend(f"      {line}" for line in _field_lines(change))
        lines.extend("      " + paint("warning", f"warning: {w}") for w in change.warnings)
    if p.would_archive:
        lines.append(f"  Would archive with --prune: {', '.join(p.would_archive)}")
    for b in p.blocked:
        lines.append(f"  Blocked from archiving: {b.key} ({b.reason})")
    if p.unmanaged:
        s = "s" if p.unmanaged != 1 else ""
        lines.append(f"  Not managed by metrics-sync (left alone): {p.unmanaged} metric{s}")
    for refusal in p.refused:
        lines.append("  " + paint("error", f"error: {refusal}"))
    for warning in p.warnings:
        lines.append("  " + paint("warning", f"warning: {warning}"))
    if len(lines) == 1:
        lines.append(f"  no changes ({p.unchanged} metric{'s' if p.unchanged != 1 else ''} in sync)")
    return lines


def text(plan: Plan, *, color: bool = False) -> str:
    paint = Painter(color)
    lines: list[str] = []
    for p in plan.projects:
        lines.extend(_project_text(p, paint))
        lines.append("")
    lines.append(paint("bold", summary_line(plan)))
    return "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def markdown(plan: Plan, *, limit: int = MARKDOWN_LIMIT) -> str:
    """A PR comment: summary table first, then one collapsible diff per project, within `limit` chars."""
    head = ["<!-- metrics-sync plan -->", "### metrics-sync plan", "", f"**{summary_line(plan)}**", "",
            "| Project | Create | Update | Archive | Unchanged | Would archive with --prune | Blocked | Unmanaged |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for p in plan.projects:
        head.append(f"| `{p.project}` | {p.count('create')} | {p.count('update')} | {p.count('archive')} | "
                    f"{p.unchanged} | {len(p.would_archive)} | {len(p.blocked)} | {p.unmanaged} |")
    for refusal in plan.refused:
        head.append(f"\n> [!CAUTION]\n> {_md_escape(refusal)}")
    warnings = [w for _, c in plan.changes for w in c.warnings]
    for warning in warnings:
        head.append(f"\n> [!WARNING]\n> {_md_escape(warning)}")
    text = "\n".join(head) + "\n"

    total = len(plan.changes)
    budget = limit - len(text) - 400  # room for the truncation note
    shown = 0
    for p in plan.projects:
        extra = [f"- would archive with --prune: {k}" for k in p.would_archive]
        extra += [f"! blocked from archiving: {b.key} ({b.reason})" for b in p.blocked]
        if not p.changes and not extra:
            continue
        opening = (f"\n<details><summary>Project <code>{p.project}</code>: {len(p.changes)} change(s)</summary>"
                   "\n\n```diff\n")
        closing = "```\n</details>\n"
        tail = "".join(line + "\n" for line in extra)
        used = len(opening) + len(closing) + len(tail)
        kept: list[str] = []
        for change in p.changes:
            block = [_title(change, _MD_SYMBOL)]
            block += [f"{_MD_SYMBOL[change.action]}     {line}" for line in _field_lines(change)]
            block += [f"!     warning: {w}" for w in change.warnings]
            chunk = "\n".join(block) + "\n"
            if used + len(chunk) > budget:
                break
            kept.append(chunk)
            used += len(chunk)
        if used > budget:
            break
        text += opening + "".join(kept) + tail + closing
        budget -= used
        shown += len(kept)
        if len(kept) < len(p.changes):
            break
    if shown < total:
        text += (f"\n**Output truncated:** {shown} of {total} changes are shown, to stay under GitHub's comment "
                 f"size limit. The summary above counts all of them; run `metrics-sync plan` or download the "
                 f"plan artifact for the full plan.\n")
    return text
