"""`metrics-sync apply`: make LaunchDarkly match the definitions, or carry out a saved plan.

Without `--plan` it plans, shows the plan and asks for confirmation (on a terminal; `--auto-approve`
otherwise). With `--plan` the saved plan is verified first (saved_plan.py). Ctrl-C or SIGTERM (cli/signals.py)
stops new changes and lets those in flight finish, so the summary is exact (exit 130).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from metrics_sync.cli import signals
from metrics_sync.cli.commands import common
from metrics_sync.core.errors import UsageError
from metrics_sync.core.runtime import Runtime

if TYPE_CHECKING:
    from metrics_sync.core.model import Plan
    from metrics_sync.definitions.config import Config
    from metrics_sync.launchdarkly.client import Client

HELP = "make LaunchDarkly match the definitions"
CALLS_API = True
MAX_PARALLELISM = 64
MAX_COMMENT = 500
PROGRESS_EVERY = 5.0  # seconds between progress lines in a CI log


def configure(parser: argparse.ArgumentParser) -> None:
    common.add_paths(parser)
    common.add_project(parser)
    parser.add_argument("--plan", metavar="PLANFILE", help="apply a saved plan (refused when stale)")
    parser.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--prune", action="store_true",
                        help="archive managed metrics (delete managed metric groups) that left the definitions")
    parser.add_argument("--parallelism", type=int, default=4, metavar="N", help="concurrent API writes (default 4)")
    parser.add_argument("--format", choices=["text", "json"], default="text",
                        help="text (default: the plan, then each change as it completes) or json (one document "
                             "of the outcomes at the end, for scripts)")
    common.add_target(parser)
    common.add_protect_running(parser)
    parser.add_argument("--comment", metavar="TEXT",
                        help="why, for LaunchDarkly's audit log (default: metrics-sync apply, with the commit and "
                             "pull request when run in CI)")


@dataclass(frozen=True, kw_only=True)
class ApplyArguments(common.ApiArguments):
    paths: tuple[str, ...]
    project: str | None
    plan: str | None  # a saved plan to carry out (verified first)
    auto_approve: bool
    prune: bool
    parallelism: int
    format: str
    targets: tuple[str, ...]
    protect_running: bool
    comment: str | None  # for LaunchDarkly's audit log; None: audit_comment() makes one


def arguments(namespace: argparse.Namespace) -> ApplyArguments:
    return ApplyArguments(**common.api_options(namespace), paths=tuple(namespace.paths), project=namespace.project,
                          plan=namespace.plan, auto_approve=namespace.auto_approve, prune=namespace.prune,
                          parallelism=namespace.parallelism, format=namespace.format,
                          targets=tuple(namespace.target), protect_running=namespace.protect_running,
                          comment=namespace.comment)


def run(arguments: ApplyArguments, runtime: Runtime) -> int:
    from metrics_sync.apply.executor import apply_plan
    from metrics_sync.core.model import ApplyResult, ChangeResult
    from metrics_sync.output import views

    if not 1 <= arguments.parallelism <= MAX_PARALLELISM:
        raise UsageError(f"--parallelism must be between 1 and {MAX_PARALLELISM}")
    if arguments.plan and (arguments.prune or arguments.targets):
        raise UsageError("--prune and --target cannot be used with --plan: the saved plan already says what it "
                         "covers")
    cfg = common.config(runtime, arguments.config)
    view = views.APPLY[arguments.format](runtime.color(arguments.no_color))
    with common.client(runtime, cfg, arguments) as client:
        if arguments.plan:
            the_plan = _verified_saved_plan(arguments, runtime, cfg, client)
        else:
            from metrics_sync.planning.make import make_plan, uses_needed

            definitions = common.checked_definitions(runtime, cfg, paths=arguments.paths, project=arguments.project)
            common.check_prune_scope(runtime, cfg, prune=arguments.prune, paths=arguments.paths)
            protect = arguments.protect_running or cfg.protect_running
            the_plan = make_plan(client, definitions, ownership_tag=cfg.ownership_tag, prune=arguments.prune,
                                 targets=arguments.targets, protect=protect, cancel=runtime.cancel,
                                 update_uses=uses_needed(protect=protect, reviewed=not arguments.auto_approve))
            runtime.out(view.plan(the_plan))
            if the_plan.refused:
                return 1
            if the_plan.has_changes and not arguments.auto_approve and \
                    not _confirmed(runtime, len(the_plan.changes)):
                runtime.err("Apply cancelled; nothing was changed.")
                return 1
        result = ApplyResult([])
        if the_plan.has_changes:
            qualified = len(the_plan.projects) > 1
            runtime.out(view.before_changes(saved=bool(arguments.plan)))
            progress = _Progress(runtime, len(the_plan.changes))

            def on_result(outcome: ChangeResult) -> None:
                lines = view.change(outcome, qualified=qualified)
                if lines:
                    progress.clear()
                    runtime.out(lines)

            # The first Ctrl-C sets runtime.cancel (cli/signals.py): no new change starts, those in flight finish.
            result = apply_plan(the_plan, client, parallelism=arguments.parallelism, progress=progress,
                                on_result=on_result, cancel=runtime.cancel,
                                comment=audit_comment(arguments.comment, runtime.environ))
            progress.finish()
            runtime.out(view.result(result))
        else:
            runtime.out(view.nothing_to_apply(saved=bool(arguments.plan)))
    if result.interrupted:
        return 130
    if the_plan.prune and the_plan.blocked:
        # Asked to archive, and LaunchDarkly cannot yet: CI must notice (terraform would fail too).
        keys = ", ".join(f"{b.key} ({b.reason})" for p in the_plan.projects for b in p.blocked)
        runtime.err(f"error: --prune could not archive {the_plan.blocked} metric(s) still in use: {keys}. Stop the "
                    "experiments, guarded rollouts or holdouts that use them (or take the metrics out of them and "
                    "out of release policies) and run apply --prune again, or keep the metrics in the definitions.")
        return 1
    return 1 if result.failed else 0


def _verified_saved_plan(arguments: ApplyArguments, runtime: Runtime, cfg: Config, client: Client) -> Plan:
    """The saved plan, once it is proven to be what the definitions and LaunchDarkly call for now: it is
    planned afresh and the two must be equal (saved_plan.py). Returns the fresh plan."""
    from metrics_sync.apply.saved_plan import check_origin, verify_saved_plan
    from metrics_sync.core.errors import DefinitionsError, PlanError, redact
    from metrics_sync.output.escape import shown
    from metrics_sync.planning import planfile
    from metrics_sync.planning.make import make_plan, uses_needed
    from metrics_sync.planning.reconcile import definitions_hashes

    assert arguments.plan is not None
    saved = planfile.read(runtime.path(arguments.plan))
    try:
        definitions = common.checked_definitions(runtime, cfg, paths=arguments.paths, project=arguments.project)
    except DefinitionsError as exc:
        raise PlanError("apply --plan checks the saved plan against the definitions it was made from, and they "
                        f"cannot be read ({len(exc.problems)} problem(s) above)",
                        "pass the PATHs the plan was made from (or set `paths` in metrics-sync.yaml)") from None
    if not definitions.files:
        raise PlanError("apply --plan checks the saved plan against the definitions it was made from, and none "
                        "were found", "pass the PATHs the plan was made from")
    hashes = definitions_hashes(definitions, saved.ownership_tag,
                                {p.project: p.definitions_hash for p in saved.projects})
    check_origin(saved, host=client.host, ownership_tag=cfg.ownership_tag, definitions_hashes=hashes,
                 files=definitions.files)
    # The saved plan was reviewed with what uses each change; planned afresh, the updates' users are read again only
    # when --protect-running may refuse them (make.py `uses_needed`).
    protect = arguments.protect_running or cfg.protect_running
    fresh = make_plan(client, definitions, ownership_tag=cfg.ownership_tag, prune=saved.prune, targets=saved.targets,
                      protect=protect, cancel=runtime.cancel, update_uses=uses_needed(protect=protect, reviewed=False))
    verify_saved_plan(saved, fresh)
    if fresh.refused:
        # What the plan refuses now (an experiment that started since the plan, with --protect-running) is refused
        # here too, though the saved changes are the same: refusals are not changes, so the comparison misses them.
        for refusal in fresh.refused:
            runtime.err(f"error: {shown(redact(refusal.text(), runtime.environ))}")
        raise PlanError(f"the saved plan cannot be applied now: {len(fresh.refused)} change(s) are refused (above)",
                        "nothing was changed; run plan again")
    return fresh


def audit_comment(given: str | None, environ: Mapping[str, str]) -> str:
    """What LaunchDarkly's audit log shows for each update: `--comment`, else `metrics-sync apply` with the
    commit and pull request CI describes (GitHub Actions, GitLab CI). Control characters are dropped and
    the length is bounded: the text comes from the environment."""
    if given:
        text = given
    else:
        parts = []
        sha = environ.get("GITHUB_SHA") or environ.get("CI_COMMIT_SHA")
        repo = environ.get("GITHUB_REPOSITORY") or environ.get("CI_PROJECT_PATH")
        if sha:
            parts.append(f"commit {sha[:12]}" + (f" of {repo}" if repo else ""))
        ref = environ.get("GITHUB_REF", "")
        pull = ref.split("/")[2] if ref.startswith("refs/pull/") and ref.count("/") >= 3 else \
            environ.get("CI_MERGE_REQUEST_IID")
        if pull:
            parts.append(f"pull request #{pull}")
        text = "metrics-sync apply" + (f" ({', '.join(parts)})" if parts else "")
    cleaned = "".join(c for c in text if c.isprintable())
    return cleaned[:MAX_COMMENT] or "metrics-sync apply"


def _confirmed(runtime: Runtime, count: int) -> bool:
    if not runtime.stdin.isatty():
        raise UsageError("refusing to apply without confirmation: stdin is not a terminal",
                         "review the plan, then pass --auto-approve (or apply a saved plan with --plan)")
    runtime.stderr.write("Apply this change? [y/N] " if count == 1 else f"Apply these {count} changes? [y/N] ")
    runtime.stderr.flush()
    with signals.asking():  # Ctrl-C at the prompt: Cancelled, exit 130, nothing changed
        return runtime.stdin.readline().strip().lower() in ("y", "yes")


class _Progress:
    """How far apply is. On a terminal, one line that updates in place; without one (CI logs), a line every
    PROGRESS_EVERY seconds, as terraform's "Still creating... [10s elapsed]", so a long run is never silent."""

    def __init__(self, runtime: Runtime, total: int) -> None:
        self.runtime, self.total = runtime, total
        self.tty = runtime.stderr.isatty()
        self.started = self.last = runtime.clock()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        now = self.runtime.clock()
        if self.tty and total > 1:
            self.runtime.stderr.write(f"\r  applying: {done}/{total} changes done")
            self.runtime.stderr.flush()
            self.shown = True
        elif not self.tty and now - self.last >= PROGRESS_EVERY and done < total:
            self.last = now
            self.runtime.err(f"… {done}/{total} done, {now - self.started:.0f} s")

    def clear(self) -> None:
        if self.shown:
            self.runtime.stderr.write("\r\x1b[K")
            self.runtime.stderr.flush()
            self.shown = False

    def finish(self) -> None:
        if self.shown:
            self.runtime.stderr.write("\n")
            self.runtime.stderr.flush()

