"""Plans as text (terraform style) and Markdown (a pull-request comment). Pure functions.

Text uses `+ create`, `~ update`, `- archive` (`- delete` for metric groups), one line per changed field
(`old → new`), the experiments and guarded rollouts that use what changes, and one summary line. A change
to the results of a running experiment is a WARNING in text and the first thing a PR comment shows. Colour
is the caller's decision (`color=True` only on a terminal without NO_COLOR). The JSON form of a plan is the
plan file's (planfile.py).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Iterator

from metrics_sync.core.model import Blocked, Change, FieldChange, Plan, ProjectPlan, Use
from metrics_sync.core.resources import RESOURCES
from metrics_sync.output.escape import code_fence, compact, markdown_code, markdown_inline, markdown_text, shown
from metrics_sync.output.paint import Painter
from metrics_sync.planning.diffing import to_text
from metrics_sync.planning.impact import results_fields

MARKDOWN_LIMIT = 60_000  # GitHub rejects comments over 65,536 characters; keep a margin
MARKDOWN_UNSENT_ROWS = 50  # metrics whose event no code sends, listed in the PR comment
_SYMBOL = {"create": "+", "update": "~", "archive": "-", "delete": "-"}
# GitHub colours diff lines by their first character: "!" shows updates in orange (as terraform PR bots do).
_MD_SYMBOL = {"create": "+", "update": "!", "archive": "-", "delete": "-"}
_STYLE = {"delete": "archive"}  # painter styles


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _changes(count: int) -> str:
    """`1 change changes`, `2 changes change`."""
    return f"{_plural(count, 'change')} {'changes' if count == 1 else 'change'}"

def summary_line(plan: Plan, *, where: str = "above") -> str:
    if plan.refused:
        count = len(plan.refused)
        return f"Plan refused: {count} change{'s' if count != 1 else ''} cannot be made as defined (see {where})."
    groups = plan.unchanged_groups
    if not plan.has_changes:
        text = f"No changes. {_plural(plan.unchanged, 'metric')}"
        text += f" and {_plural(groups, 'metric group')} match" if groups else " match"
        text += " the definitions"
    else:
        deletes = plan.total("delete")
        text = (f"Plan: {plan.total('create')} to create, {plan.total('update')} to update, "
                f"{plan.total('archive')} to archive, " + (f"{deletes} to delete, " if deletes else "")
                + f"{plan.unchanged + groups} unchanged")
    # Managed metrics that left the definitions are impossible to miss: the summary counts them.
    if plan.would_archive:
        text += f"; {plan.would_archive} left the definitions and would be archived with --prune"
    if plan.would_delete:
        text += f"; {_plural(plan.would_delete, 'metric group')} left the definitions and would be deleted with --prune"
    if plan.blocked:
        text += f"; {plan.blocked} cannot be archived while in use (see {where})"
    alerts = len(plan.alerts)
    if alerts:
        text += f"; {_changes(alerts)} the results of running experiments (see {where})"
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
    # Values come from outside (names, descriptions): `compact` counts their runs of blanks, so padding cannot
    # push the rest of a value onto a line that looks like a plan line of its own. The label's padding is ours.
    details = compact("; ".join(f.details))
    if change.action == "create":
        yield f"{label} {compact(to_text(f.after))}" + (f" ({details})" if f.details else "")
    elif f.details:
        yield f"{label} {details}"
    else:
        before = "(none)" if f.before is None else compact(to_text(f.before))
        after = "(removed)" if f.after is None else compact(to_text(f.after))
        yield f"{label} {before} → {after}"


def _uses(change: Change) -> list[str]:
    return [f"used by {compact(use.describe())}" for use in change.used_by]


def _project_text(p: ProjectPlan, paint: Painter) -> list[str]:
    """Every line goes through `paint`, which escapes what came from outside (keys, names, messages)."""
    lines = [paint("bold", f"Project {p.project}")]
    for change in p.changes:
        lines.append("  " + paint(_STYLE.get(change.action, change.action), _title(change)))
        if change.adopt:
            lines.append("      (exists in LaunchDarkly without the ownership tag: metrics-sync will manage it)")
        lines.extend("      " + paint(None, line) for line in _field_lines(change))
        lines.extend("      " + paint(None, line) for line in _uses(change))
        lines.extend("      " + paint("error", f"WARNING: {compact(a.text())}") for a in change.alerts)
        lines.extend("      " + paint("warning", f"warning: {compact(w.text())}") for w in change.warnings)
    if p.would_archive:
        lines.append(paint(None, f"  Would archive with --prune: {', '.join(p.would_archive)}"))
    if p.would_delete:
        lines.append(paint(None, f"  Would delete with --prune: metric group {', '.join(p.would_delete)}"))
    for b in p.blocked:
        lines.append(paint(None, f"  {_blocked(b)}"))
        lines.extend("      " + paint(None, f"used by {compact(use.describe())}") for use in b.used_by)
    if p.unmanaged:
        lines.append(paint(None, f"  Not managed by metrics-sync (left alone): {_unmanaged(p)}"))
    if p.unmanaged_groups:
        lines.append(paint(None, f"  Not managed by metrics-sync (left alone): "
                                 f"{_plural(p.unmanaged_groups, 'metric group')}"))
    for refusal in p.refused:
        lines.append("  " + paint("error", f"error: {compact(refusal.text())}"))
    for warning in p.warnings:  # an alert: a metric running experiments use gets no data (event-not-sent)
        alert = warning.severity == "alert"
        lines.append("  " + paint("error" if alert else "warning", f"{'WARNING' if alert else 'warning'}: "
                                  f"{compact(warning.text())}"))
    if len(lines) == 1:
        groups = f" and {_plural(p.unchanged_groups, 'metric group')}" if p.unchanged_groups else ""
        lines.append(f"  no changes ({_plural(p.unchanged, 'metric')}{groups} in sync)")
    return lines


def _blocked(b: Blocked, word: str = "Blocked") -> str:
    """`Blocked from archiving: key (used by 1 running experiment)`; its users are listed below it."""
    resource = RESOURCES[b.resource]
    verb = "archiving:" if resource.retire == "archive" else f"deleting: {resource.name}"
    return f"{word} from {verb} {b.key} ({b.reason})"


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


def _md_use(use: Use) -> str:
    """A use in a Markdown table, as every output names it (`Use.describe`): experiment `key` (environment,
    running[, through metric group `group`])."""
    where = f"{markdown_inline(use.environment)}, " if use.environment else ""
    via = f", through metric group {markdown_code(use.via, table=True)}" if use.via else ""
    unit = f", analysed by {markdown_code(use.analysis_unit, table=True)}" if use.analysis_unit else ""
    return f"{use.kind} {markdown_code(use.key, table=True)} ({where}{use.state}{via}{unit})"


def _md_uses(uses: Iterable[Use]) -> str:
    return "; ".join(_md_use(use) for use in uses) or "—"


def _running_experiments(plan: Plan) -> list[str]:
    """The PR comment's first warning: each change to the results of a running experiment, in a table a
    reviewer cannot miss (before the diff, which is folded)."""
    running_users = [(project, change, [u for u in change.used_by if u.running is not False])
                     for project, change in plan.alerts]
    rows = [(project, change, running) for project, change, running in running_users if running]
    if not rows and not plan.alerts:
        return []
    lines = ["", "> [!WARNING]", f"> **{_changes(len(plan.alerts))} the results of running experiments.** "
             "Results before and after the change will not be comparable.", "",
             "| Change | Fields | Used by (running) |", "|---|---|---|"]
    for project, change, running in rows:
        fields = ", ".join(markdown_code(name, table=True) for name in results_fields(change))
        lines.append(f"| {_MD_VERB.get(change.action, change.action)} {change.noun} "
                     f"{markdown_code(change.key, table=True)} in {markdown_code(project, table=True)} | {fields} | "
                     f"{_md_uses(running)} |")
    unread = [change for _, change in plan.alerts if not any(u.running is not False for u in change.used_by)]
    for change in unread:
        lines.append(f"\n> [!WARNING]\n> {markdown_text(change.alerts[0].text())}")
    return lines


_MD_VERB = {"update": "update", "archive": "archive", "delete": "delete"}


def _unsent_events(plan: Plan) -> list[str]:
    """Metrics whose event no code sends (plan --code): a pull request that removes the last track call of
    an event shows here, whether or not the plan changes the metric; a CAUTION when running experiments or
    guarded rollouts use one (they get no data from now on)."""
    unsent = plan.unsent
    if not unsent:
        return []
    count = len(unsent)
    in_use = sum(1 for _, item in unsent if item.used_by)
    lines = ["", "> [!CAUTION]" if in_use else "> [!WARNING]",
             f"> **No code sends the event of {count} metric{'s' if count != 1 else ''}**: "
             f"{'it' if count == 1 else 'they'} will have no data"
             + (f"; {in_use} {'is' if in_use == 1 else 'are'} used by running experiments or guarded rollouts."
                if in_use else "."), "",
             "| Metric | Event | Defined at | Used by (running) |", "|---|---|---|---|"]
    for project, item in unsent[:MARKDOWN_UNSENT_ROWS]:
        lines.append(f"| {markdown_code(item.key, table=True)} in {markdown_code(project, table=True)} "
                     f"| {markdown_code(item.event, table=True)} | {markdown_code(item.source, table=True)} "
                     f"| {_md_uses(item.used_by)} |")
    if count > MARKDOWN_UNSENT_ROWS:
        lines.append(f"\n{count - MARKDOWN_UNSENT_ROWS} more: run `metrics-sync refs` for all of them.")
    return lines


def markdown(plan: Plan, *, limit: int = MARKDOWN_LIMIT) -> str:
    """A PR comment: summary table first, then one collapsible diff per project, within `limit` chars.

    Text from outside is escaped: in prose every Markdown and HTML character, and each diff block is fenced
    with more backticks than any run inside it, so no key, name or message can close a block or add markup."""
    head = ["<!-- metrics-sync plan -->", "### metrics-sync plan", "",
            f"**{summary_line(plan, where='below')}**", "",  # our own words and numbers only
            "| Project | Create | Update | Archive | Delete | Unchanged | Would archive or delete with --prune "
            "| Blocked | Unmanaged |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    # Metrics and metric groups together (groups are deleted, metrics archived).
    for p in plan.projects:
        head.append(f"| {markdown_code(p.project, table=True)} | {p.count('create')} | {p.count('update')} | "
                    f"{p.count('archive')} | {p.count('delete')} | {p.unchanged + p.unchanged_groups} | "
                    f"{len(p.would_archive) + len(p.would_delete)} | {len(p.blocked)} | "
                    f"{p.unmanaged + p.unmanaged_groups} |")
    for refusal in plan.refused:
        head.append(f"\n> [!CAUTION]\n> {markdown_text(refusal.text())}")
    head.extend(_running_experiments(plan))
    head.extend(_unsent_events(plan))
    for warning in [w for _, c in plan.changes for w in c.warnings]:
        head.append(f"\n> [!WARNING]\n> {markdown_text(warning.text())}")
    text = "\n".join(head) + "\n"

    total = len(plan.changes)
    budget = limit - len(text) - 400  # room for the truncation note
    shown_changes = 0
    for p in plan.projects:
        extra = [f"- would archive with --prune: {k}" for k in p.would_archive]
        extra += [f"- would delete with --prune: metric group {k}" for k in p.would_delete]
        for b in p.blocked:
            extra += [f"! {_blocked(b, 'blocked')}"]
            extra += [f"!     used by {compact(use.describe())}" for use in b.used_by]
        if not p.changes and not extra:
            continue
        summary = f"Project <code>{html.escape(shown(p.project))}</code>: {len(p.changes)} change(s)"
        kept: list[str] = []
        used = len(summary) + 60 + sum(len(line) + 1 for line in extra)
        for change in p.changes:
            block = [_title(change, _MD_SYMBOL)]
            block += [f"{_MD_SYMBOL[change.action]}     {line}" for line in _field_lines(change)]
            block += [f"{_MD_SYMBOL[change.action]}     {line}" for line in _uses(change)]
            block += [f"!     WARNING: {compact(a.text())}" for a in change.alerts]
            block += [f"!     warning: {compact(w.text())}" for w in change.warnings]
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
