"""The one place that picks how a result is shown for `--format`: a mapping from each format to its view.

Plans (plan, show), apply runs, code references, health runs and definition problems each have one mapping; a command
looks its view up by the format it was given and never branches on the format itself. The commands'
`--format` choices are these mappings' keys (tests/cli holds the two together). Pure: every view returns text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from metrics_sync.coderefs.report import Report
from metrics_sync.core.model import ApplyResult, ChangeResult, Plan
from metrics_sync.health.model import Health
from metrics_sync.output import health, health_page, problems, refs, results
from metrics_sync.output import plan as plan_output
from metrics_sync.planning import planfile


class PlanView(Protocol):
    """A plan as text: the same content in every format (the metrics whose event no code sends among it)."""

    def __call__(self, plan: Plan, *, color: bool) -> str: ...


def _plan_text(plan: Plan, *, color: bool) -> str:
    return plan_output.text(plan, color=color)


def _plan_json(plan: Plan, *, color: bool) -> str:
    return planfile.to_json(plan)  # the plan file's own form, so `show --format json` of a saved plan matches


def _plan_markdown(plan: Plan, *, color: bool) -> str:
    return plan_output.markdown(plan)


PLAN: Mapping[str, PlanView] = {"text": _plan_text, "json": _plan_json, "markdown": _plan_markdown}


class ApplyView(Protocol):
    """How apply shows a run: the plan it asks to confirm, each change as it completes, then the result. An
    empty string means the format shows nothing at that point."""

    def plan(self, plan: Plan) -> str: ...

    def before_changes(self, *, saved: bool) -> str: ...

    def change(self, outcome: ChangeResult, *, qualified: bool) -> str: ...

    def result(self, result: ApplyResult) -> str: ...

    def nothing_to_apply(self, *, saved: bool) -> str: ...


@dataclass(frozen=True)
class ApplyText:
    """For people and CI logs: the plan, each outcome as it happens (a long run is never silent), a summary."""

    color: bool

    def plan(self, plan: Plan) -> str:
        return plan_output.text(plan, color=self.color)

    def before_changes(self, *, saved: bool) -> str:
        return "" if saved else "\n"  # a blank line between the plan shown above and the outcomes

    def change(self, outcome: ChangeResult, *, qualified: bool) -> str:
        return "".join(line + "\n" for line in results.lines(outcome, color=self.color, qualified=qualified))

    def result(self, result: ApplyResult) -> str:
        return results.text(result, color=self.color, streamed=True)

    def nothing_to_apply(self, *, saved: bool) -> str:
        # Without --plan the plan above already said "No changes".
        return "No changes. The saved plan has nothing to apply.\n" if saved else ""


@dataclass(frozen=True)
class ApplyJson:
    """For scripts: one JSON document at the end, nothing else on stdout."""

    color: bool

    def plan(self, plan: Plan) -> str:
        return ""

    def before_changes(self, *, saved: bool) -> str:
        return ""

    def change(self, outcome: ChangeResult, *, qualified: bool) -> str:
        return ""

    def result(self, result: ApplyResult) -> str:
        return results.json_text(result)

    def nothing_to_apply(self, *, saved: bool) -> str:
        return results.json_text(ApplyResult([]))


APPLY: Mapping[str, Callable[[bool], ApplyView]] = {"text": ApplyText, "json": ApplyJson}  # called with `color`

REFS: Mapping[str, Callable[[Report], str]] = {"text": refs.text, "json": refs.json_text}


class HealthView(Protocol):
    """A health run as text: the same findings (code, subject, message) in every format."""

    def __call__(self, health: Health, *, color: bool) -> str: ...


HEALTH: Mapping[str, HealthView] = {"text": health.text, "json": health.json_text, "markdown": health.markdown,
                                    "html": health_page.page}

PROBLEMS = problems.RENDERERS  # validate's formats: text, json, GitHub workflow annotations
