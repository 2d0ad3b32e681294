"""Plans as text (terraform style) and Markdown (a pull-request comment). Pure functions.

Text uses `+ create`, `~ update`, `- archive`, one line per changed field (`old → new`) and one summary
line. Colour is the caller's decision (`color=True` only on a terminal without NO_COLOR). The JSON form
of a plan is the plan file's (planfile.py).
"""

from __future__ import annotations

import html
from collections.abc import Iterator

from metrics_sync.model import Change, FieldChange, Plan, ProjectPlan
from metrics_sync.output.escape import code_fence, markdown_inline, shown
from metrics_sync.output.paint import Painter
from metrics_sync.planner import to_text

MARKDOWN_LIMIT = 60_000  # GitHub rejects comments over 65,536 characters; keep a margin
_SYMBOL = {"create": "+", "update": "~", "archive": "-"}
# GitHub colours diff lines by their first character: "!" shows updates in orange (as terraform PR bots do).
_MD_SYMBOL = {"create": "+", "update": "!", "archive": "-"}

def summary_line(plan: Plan, *, where: str = "above") -> str:
    if plan.refused:
        count = len(plan.refused)
        return f"Plan refused: {count} change{'s' if count != 1 else ''} LaunchDarkly cannot make (see {where})."
    if not plan.has_changes:
        text = f"No changes. {plan.unchanged} metric{'s' if plan.unchanged != 1 else ''} match the definitions"
    else:
        text = (f"Plan: {plan.total('create')} to create, {plan.total('update')} to update, "
                f"{plan.total('archive')} to archive, {plan.unchanged} unchanged")
    # Managed metrics that left the definitions are impossible to miss: the summary counts them.
    if plan.would_archive:
        text += f"; {plan.would_archive} left the definitions and would be archived with --prune"
    if plan.blocked:
        text += f"; {plan.blocked} cannot be archived while in use (see {where})"
    return text + "."


def _title(change: Change, symbols: dict[str, str] = _SYMBOL) -> str:
    verb = "adopt" if change.adopt else "restore" if change.restore else change.action
    kind = f"{change.type_before} → {change.metric_type}" if change.type_before else change.metric_type
    return f"{symbols[change.action]} {verb} {change.key} ({kind})"


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
    """Every line goes through `paint`, which escapes what came from outside (keys, names, messages)."""
    lines = [paint("bold", f"Project {p.project}")]
    for change in p.changes:
        lines.append("  " + paint(change.action, _title(change)))
        if change.adopt:
            lines.append("      (exists in LaunchDarkly without the ownership tag: metrics-sync will manage it)")
        lines.extend("      " + paint(None, line) for line in _field_lines(change))
        lines.extend("      " + paint("warning", f"warning: {w}") for w in change.warnings)
    if p.would_archive:
        lines.append(paint(None, f"  Would archive with --prune: {', '.join(p.would_archive)}"))
    for b in p.blocked:
        lines.append(paint(None, f"  Blocked from archiving: {b.key} ({b.reason})"))
    if p.unmanaged:
        lines.append(paint(None, f"  Not managed by metrics-sync (left alone): {_unmanaged(p)}"))
    for refusal in p.refused:
        lines.append("  " + paint("error", f"error: {refusal}"))
    for warning in p.warnings:
        lines.append("  " + paint("warning", f"warning: {warning}"))
    if len(lines) == 1:
        lines.append(f"  no changes ({p.unchanged} metric{'s' if p.unchanged != 1 else ''} in sync)")
    return lines


def _unmanaged(p: ProjectPlan) -> str:
    count = f"{p.unmanaged} metric{'s' if p.unmanaged != 1 else ''}"
    if not p.unmanaged_sample:
        return count
    more = p.unmanaged - len(p.unmanaged_sample)
    return f"{count}: {', '.join(p.unmanaged_sample)}" + (f" and {more} more" if more > 0 else "")


def text(plan: Plan, *, color: bool = False) -> str:
    paint = Painter(color)
    lines: list[str] = []
    for p in plan.projects:
        lines.extend(_project_text(p, paint))
        lines.append("")
    lines.append(paint("bold", summary_line(plan)))
    return "\n".join(lines) + "\n"


def markdown(plan: Plan, *, limit: int = MARKDOWN_LIMIT) -> str:
    """A PR comment: summary table first, then one collapsible diff per project, within `limit` chars.

    Text from outside is escaped: in prose every Markdown and HTML character, and each diff block is fenced
    with more backticks than any run inside it, so no key, name or message can close a block or add markup."""
    head = ["<!-- metrics-sync plan -->", "### metrics-sync plan", "",
            f"**{summary_line(plan, where='below')}**", "",  # our own words and numbers only
            "| Project | Create | Update | Archive | Unchanged | Would archive with --prune | Blocked | Unmanaged |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for p in plan.projects:
        head.append(f"| `{shown(p.project)}` | {p.count('create')} | {p.count('update')} | "
                    f"{p.count('archive')} | {p.unchanged} | {len(p.would_archive)} | {len(p.blocked)} | "
                    f"{p.unmanaged} |")
    for refusal in plan.refused:
        head.append(f"\n> [!CAUTION]\n> {markdown_inline(refusal)}")
    for warning in [w for _, c in plan.changes for w in c.warnings]:
        head.append(f"\n> [!WARNING]\n> {markdown_inline(warning)}")
    text = "\n".join(head) + "\n"

    total = len(plan.changes)
    budget = limit - len(text) - 400  # room for the truncation note
    shown_changes = 0
    for p in plan.projects:
        extra = [f"- would archive with --prune: {k}" for k in p.would_archive]
        extra += [f"! blocked from archiving: {b.key} ({b.reason})" for b in p.blocked]
        if not p.changes and not extra:
            continue
        summary = f"Project <code>{html.escape(shown(p.project))}</code>: {len(p.changes)} change(s)"
        kept: list[str] = []
        used = len(summary) + 60 + sum(len(line) + 1 for line in extra)
        for change in p.changes:
            block = [_title(change, _MD_SYMBOL)]
            block += [f"{_MD_SYMBOL[change.action]}     {line}" for line in _field_lines(change)]
            block += [f"!     warning: {w}" for w in change.warnings]
            chunk = "".join(shown(line) + "\n" for line in block)
            if used + len(chunk) > budget:
                break
            kept.append(chunk)
            used += len(chunk)
        if used > budget:
            break
        body = "".join(kept) + "".join(shown(line) + "\n" for line in extra)
        fence = code_fence(body)
        text += f"\n<details><summary>{summary}</summary>\n\n{fence}diff\n{body}{fence}\n</details>\n"
        budget -= used + 2 * len(fence)
        shown_changes += len(kept)
        if len(kept) < len(p.changes):
            break
    if shown_changes < total:
        text += (f"\n**Output truncated:** {shown_changes} of {total} changes are shown, to stay under GitHub's "
                 f"comment size limit. The summary above counts all of them; run `metrics-sync plan` or download "
                 f"the plan artifact for the full plan.\n")
    return text
