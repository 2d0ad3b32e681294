"""`metrics-sync plan`: show what apply would change in LaunchDarkly, and optionally save it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from metrics_sync import __version__
from metrics_sync.commands import common
from metrics_sync.errors import PlanError, UsageError
from metrics_sync.output.escape import shown
from metrics_sync.runtime import Runtime

if TYPE_CHECKING:
    from metrics_sync.client import Client
    from metrics_sync.config import Config
    from metrics_sync.model import Definitions, Plan

HELP = "show what apply would change in LaunchDarkly"
CALLS_API = True
# What a single read expands to learn whether running experiments or guarded rollouts use a metric.
USAGE_EXPANSIONS = ("experiments", "experimentCount", "guardedRollouts", "guardedRolloutCount", "metricGroups")


def configure(parser: argparse.ArgumentParser) -> None:
    common.add_paths(parser)
    common.add_project(parser)
    parser.add_argument("--out", metavar="PLANFILE", help="save the plan for `apply --plan`")
    parser.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    parser.add_argument("--detailed-exitcode", action="store_true",
                        help="exit 2 when there are changes (0 none, 1 error)")
    parser.add_argument("--prune", action="store_true", help="archive managed metrics that left the definitions")
    common.add_target(parser)


def make_plan(prune: bool, cfg: Config, client: Client, definitions: Definitions,
              targets: tuple[str, ...] = ()) -> Plan:
    """Read every project the definitions name and plan it.

    Reads: the paged list; then, only for managed metrics that left the definitions (archive candidates),
    one read each with expansions, since only that read says for certain whether running experiments or
    guarded rollouts use them; and, only for projects whose definitions set analysis units, the project's
    experimentation settings. An in-sync plan makes list calls only."""
    from metrics_sync.errors import ApiError
    from metrics_sync.fields import METRIC
    from metrics_sync.gc_tuning import gc_frozen, gc_paused
    from metrics_sync.planner import PlanOptions, plan, prune_candidates, selected

    remote: dict[str, list[dict[str, Any]]] = {}
    details: dict[str, dict[str, dict[str, Any]]] = {}
    units: dict[str, list[str] | None] = {}
    notes: dict[str, list[str]] = {}
    with gc_frozen():
        for project in sorted(definitions.metrics):
            desired = definitions.metrics[project]
            try:
                remote[project] = client.list_metrics(project, only=METRIC.remote_fields)
            except ApiError as exc:
                if exc.status != 404:
                    raise
                where = definitions.project_sources.get(project, "the definitions")
                raise PlanError(f"{where}: there is no project `{project}` in LaunchDarkly at {client.host}",
                                "check the project key (`project:` in the file, --project, or the config); "
                                "keys are case-sensitive") from None
            details[project] = {key: client.get_metric(project, key, expand=USAGE_EXPANSIONS)
                                for key in prune_candidates(desired, remote[project], cfg.ownership_tag)
                                if selected(targets, project, key)}
            if any("analysisUnits" in m.fields for m in desired):
                try:
                    units[project] = client.experiment_units(project)
                except ApiError as exc:
                    units[project] = None
                    notes[project] = [f"analysis units were not checked against the project's experimentation "
                                      f"settings ({exc.status or 'no answer'}: {exc.api_message})"]
    unmatched = [t for t in targets
                 if not any(selected((t,), p, str(r["key"])) for p in remote for r in remote[p])
                 and not any(selected((t,), p, m.key) for p in definitions.metrics for m in definitions.metrics[p])]
    if unmatched:
        raise UsageError(f"--target {unmatched[0]} matches no metric in the definitions or in LaunchDarkly",
                         "give a metric key, project/key, or a glob such as 'checkout-*'")
    options = PlanOptions(ownership_tag=cfg.ownership_tag, prune=prune, base_url_host=client.host,
                          tool_version=__version__, targets=targets)
    with gc_paused():
        return plan(definitions.metrics, remote, options, details=details, experiment_units=units, notes=notes)


def run(args: argparse.Namespace, runtime: Runtime) -> int:
    from metrics_sync import planfile
    from metrics_sync.output import plan as plan_output

    cfg = common.config(args, runtime)
    definitions = common.checked_definitions(args, runtime, cfg)
    common.check_prune_scope(args, runtime, cfg)
    with common.client(args, runtime, cfg) as client:
        the_plan = make_plan(args.prune, cfg, client, definitions, targets=tuple(args.target))
    if args.format == "json":
        runtime.out(planfile.to_json(the_plan))
    elif args.format == "markdown":
        runtime.out(plan_output.markdown(the_plan))
    else:
        runtime.out(plan_output.text(the_plan, color=runtime.color(args.no_color)))
    if the_plan.refused:
        return 1
    if args.out:
        planfile.write(runtime.path(args.out), the_plan)
        runtime.err(shown(f"Saved the plan to {args.out}; apply it with: metrics-sync apply --plan {args.out}"))
    return 2 if args.detailed_exitcode and the_plan.has_changes else 0
