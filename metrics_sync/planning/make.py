"""Plan, from the definitions and LaunchDarkly: read each project (state.py), reconcile (reconcile.py), and say
what uses each change, each blocked item and each metric whose event no code sends (impact.py). What `plan` and
`apply` both call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from metrics_sync import __version__
from metrics_sync.core.cancel import NEVER, CancelSignal
from metrics_sync.core.errors import UsageError
from metrics_sync.core.gc_tuning import gc_frozen, gc_paused
from metrics_sync.core.model import Definitions, Plan, UnsentEvent
from metrics_sync.planning.desired import Desired
from metrics_sync.planning.impact import annotate, touched, with_unsent
from metrics_sync.planning.reconcile import Options, plan
from metrics_sync.planning.state import Api, ProjectState, read_state, read_uses, selected

PROJECTS_AT_ONCE = 4
MAX_UNSENT_READS = 50  # metrics whose event no code sends, read to learn whether running experiments use them


def make_plan(api: Api, definitions: Definitions, *, ownership_tag: str, prune: bool = False,
              targets: tuple[str, ...] = (), protect: bool = False, cancel: CancelSignal = NEVER,
              unsent: Mapping[str, Sequence[UnsentEvent]] | None = None, update_uses: bool = True) -> Plan:
    """Read every project the definitions name and plan it. `protect`: refuse changes to the results of
    running experiments (protectRunningExperiments). `unsent`: by project, the metrics whose event no code sends
    (plan --code); the plan carries them, each naming the running experiments and guarded rollouts that use it
    (read for at most MAX_UNSENT_READS of them: a metric not in LaunchDarkly yet is used by nothing).
    `update_uses` False: what uses each update is not read one by one (apply, when nobody reviews this plan and
    no refusal depends on it: `uses_needed`); the listing's counters still warn, and a note says so (impact.py).
    Retirements are read either way: whether they are blocked depends on it."""
    projects = sorted(definitions.metrics)
    desired = {p: Desired(definitions, p, ownership_tag) for p in projects}

    def read(project: str) -> ProjectState:
        cancel.check("reading LaunchDarkly")
        return read_state(api, project, definitions, ownership_tag=ownership_tag, prune=prune, targets=targets,
                          cancel=cancel, desired=desired[project])

    with gc_frozen(), ThreadPoolExecutor(max_workers=max(1, min(PROJECTS_AT_ONCE, len(projects))),
                                         thread_name_prefix="project") as pool:
        # Projects are read at once; the client bounds the requests in flight for all of them together.
        states = dict(zip(projects, pool.map(read, projects), strict=True))
    check_targets(targets, states, definitions)
    options = Options(ownership_tag=ownership_tag, prune=prune, targets=targets, base_url_host=api.host,
                      tool_version=__version__)
    with gc_paused():
        the_plan = plan(definitions, states, options, desired=desired)
    unsent = unsent or {}
    update_uses = update_uses or protect  # a refusal never rests on a read that was not made
    unsent_items = [(project, "metric", u.key) for project in sorted(unsent) for u in unsent[project]]
    # One read of each item: a metric both changed and unsent is read once.
    items = list(dict.fromkeys([*touched(the_plan, updates=update_uses), *unsent_items[:MAX_UNSENT_READS]]))
    reads = read_uses(api, items, states, cancel=cancel)
    annotated = annotate(the_plan, reads, protect=protect, update_uses=update_uses)
    return with_unsent(annotated, unsent, reads) if unsent else annotated


def uses_needed(*, protect: bool, reviewed: bool) -> bool:
    """Whether apply's own plan reads what uses each update one by one: only when a refusal depends on it
    (`protect`: an experiment may have started since any earlier plan, and nothing says that changes the metric's
    `_version`, docs/launchdarkly-contract.md A51) or a person reviews the plan before confirming it. Otherwise
    those reads would only name users in a plan nobody reads before the writes, at one request per change out of
    the same rate-limit budget; the writes stay guarded by `test`s of the values planned against."""
    return protect or reviewed


def check_targets(targets: Sequence[str], states: Mapping[str, ProjectState], definitions: Definitions) -> None:
    """Every --target pattern names something, in the definitions or in LaunchDarkly."""
    if not targets:
        return  # (the keys of a big project are a list of 200,000 otherwise)
    keys = [(p, str(r["key"])) for p, state in states.items() for listed in state.listed.values()
            if listed is not None for r in listed.items]
    keys += [(p, m.key) for p in definitions.metrics for m in definitions.metrics[p]]
    keys += [(p, g.key) for p in definitions.groups for g in definitions.groups[p]]
    unmatched = [t for t in targets if not any(selected((t,), p, k) for p, k in keys)]
    if unmatched:
        raise UsageError(f"--target {unmatched[0]} matches no metric or metric group in the definitions or in "
                         "LaunchDarkly", "give a key, project/key, or a glob such as 'checkout-*'")

