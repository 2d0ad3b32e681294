"""`metrics-sync apply`: make LaunchDarkly match the definitions, or carry out a saved plan.

Without `--plan` it plans, shows the plan and asks for confirmation (on a terminal; `--auto-approve`
otherwise). With `--plan` the saved plan is verified first (saved_plan.py). Ctrl-C or SIGTERM stops new
changes and lets those in flight finish, so the summary is exact (exit 130).
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

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
    parser.add_argument("--format", choices=["text", "json"], default="text")
    common.add_target(parser)
    common.add_protect_running(parser)
    parser.add_argument("--comment", metavar="TEXT",
                        help="why, for LaunchDarkly's audit log (default: metrics-sync apply, with the commit and "
                             "pull request when run in CI)")


def run(args: argparse.Namespace, runtime: Runtime) -> int:
    from metrics_sync.apply.executor import apply_plan
    from metrics_sync.core.model import ApplyResult, ChangeResult
    from metrics_sync.output import plan as plan_output
    from metrics_sync.output import results

    if not 1 <= args.parallelism <= MAX_PARALLELISM:
        raise UsageError(f"--parallelism must be between 1 and {MAX_PARALLELISM}")
    if args.plan and (args.prune or args.target):
        raise UsageError("--prune and --target cannot be used with --plan: the saved plan already says what it "
                         "covers")
    cfg = common.config(args, runtime)
    color = runtime.color(args.no_color)
    with common.client(args, runtime, cfg) as client:
        if args.plan:
            the_plan = _verified_saved_plan(args, runtime, cfg, client)
        else:
            from metrics_sync.cli.commands.plan import make_plan

            definitions = common.checked_definitions(args, runtime, cfg)
            common.check_prune_scope(args, runtime, cfg)
            the_plan = make_plan(args.prune, cfg, client, definitions, targets=tuple(args.target),
                                 protect=args.protect_running)
            if args.format == "text":
                runtime.out(plan_output.text(the_plan, color=color))
            if the_plan.refused:
                return 1
            if the_plan.has_changes and not args.auto_approve and not _confirmed(runtime, len(the_plan.changes)):
                runtime.err("Apply cancelled; nothing was changed.")
                return 1
        result = ApplyResult([])
        if the_plan.has_changes:
            qualified = len(the_plan.projects) > 1
            stream = args.format == "text"
            if stream and not args.plan:
                runtime.out("\n")
            progress = _Progress(runtime, len(the_plan.changes))

            def on_result(outcome: ChangeResult) -> None:
                if stream:
                    progress.clear()
                    runtime.out("".join(line + "\n" for line in results.lines(outcome, color=color,
                                                                                 qualified=qualified)))

            stop = threading.Event()
            with _graceful_interrupt(stop, runtime):
                result = apply_plan(the_plan, client, parallelism=args.parallelism, progress=progress,
                                    on_result=on_result, stop=stop,
                                    comment=audit_comment(args.comment, runtime.environ))
            progress.finish()
            runtime.out(results.json_text(result) if args.format == "json"
                        else results.text(result, color=color, streamed=True))
        elif args.format == "json":
            runtime.out(results.json_text(result))
        elif args.plan:
            runtime.out("No changes. The saved plan has nothing to apply.\n")
    if result.interrupted:
        return 130
    if the_plan.prune and the_plan.blocked:
        # Asked to archive, and LaunchDarkly cannot yet: CI must notice (terraform would fail too).
        keys = ", ".join(f"{b.key} ({b.reason})" for p in the_plan.projects for b in p.blocked)
        runtime.err(f"error: --prune could not archive {the_plan.blocked} metric(s) still in use: {keys}. Stop the "
                    "experiments or guarded rollouts that use them (or take the metrics out of them) and run "
                    "apply --prune again, or keep the metrics in the definitions.")
        return 1
    return 1 if result.failed else 0


def _verified_saved_plan(args: argparse.Namespace, runtime: Runtime, cfg: Config, client: Client) -> Plan:
    """The saved plan, once it is proven to be what the definitions and LaunchDarkly call for now: it is
    planned afresh and the two must be equal (saved_plan.py). Returns the fresh plan."""
    from metrics_sync.apply.saved_plan import check_origin, verify_saved_plan
    from metrics_sync.cli.commands.plan import make_plan
    from metrics_sync.core.errors import DefinitionsError, PlanError
    from metrics_sync.planning import planfile
    from metrics_sync.planning.planner import definitions_hashes

    saved = planfile.read(runtime.path(args.plan))
    try:
        definitions = common.checked_definitions(args, runtime, cfg)
    except DefinitionsError as exc:
        raise PlanError("apply --plan checks the saved plan against the definitions it was made from, and they "
                        f"cannot be read ({len(exc.problems)} problem(s) above)",
                        "pass the PATHs the plan was made from (or set `paths` in metrics-sync.yaml)") from None
    if not definitions.files:
        raise PlanError("apply --plan checks the saved plan against the definitions it was made from, and none "
                        "were found", "pass the PATHs the plan was made from")
    hashes = definitions_hashes(definitions.metrics, saved.ownership_tag, definitions.groups)
    check_origin(saved, host=client.host, ownership_tag=cfg.ownership_tag, definitions_hashes=hashes,
                 files=definitions.files)
    fresh = make_plan(saved.prune, cfg, client, definitions, targets=saved.targets, protect=args.protect_running)
    verify_saved_plan(saved, fresh)
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


@contextmanager
def _graceful_interrupt(stop: threading.Event, runtime: Runtime) -> Iterator[None]:
    """During apply, the first Ctrl-C (or SIGTERM, as CI sends on cancel) stops new changes and lets those in
    flight finish, so the summary is exact; a second one aborts at once (like a kill, re-running apply
    converges)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        runtime.err("\nInterrupted: finishing the changes in flight and starting no new ones "
                    "(interrupt again to abort at once).")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
