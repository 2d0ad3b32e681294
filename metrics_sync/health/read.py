"""What `health` reads of LaunchDarkly for one project, bounded and concurrent.

Calls, for a project of N metrics and G groups: the metric list (N/50 pages, `lastSeen` and the counters are in
every item), the group list (G/50 pages), then one read with the usage expansions and `lastUsedIn*` per
unarchived metric (only that read names the experiments, rollouts and groups, and when it was last used: at
most MAX_METRIC_READS), one per group that something uses, the status of the experiments whose active counts
leave it open (at most planning's MAX_EXPERIMENT_READS), and the holdouts and release policies (planning's
`read_holders`). Every read goes through the client's pager and rate-limit gate, at its read concurrency.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from metrics_sync.core.cancel import NEVER, CancelSignal
from metrics_sync.core.errors import ApiError, PlanError
from metrics_sync.core.resources import METRIC, METRIC_GROUP
from metrics_sync.planning.state import Api, attempt, read_holders, read_statuses
from metrics_sync.planning.usage import Holders, Statuses, usage_of

MAX_METRIC_READS = 5_000  # single metric reads per project; beyond, the listing alone (uses unnamed)
LAST_USED = ("lastUsedInExperiment", "lastUsedInGuardedRollout")
Rep = Mapping[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class Observed:
    """One project as LaunchDarkly has it: each metric and group (a single read with expansions where one was
    made, else the listing's item), the experiments' statuses read, and the holdouts and release policies."""

    project: str
    metrics: Mapping[str, Rep]
    groups: Mapping[str, Rep]
    statuses: Statuses = field(default_factory=dict)
    holders: Holders | None = None
    notes: tuple[str, ...] = ()


def observe(api: Api, project: str, *, expected: int = 0, cancel: CancelSignal = NEVER,
            where: str = "the definitions") -> Observed:
    notes: list[str] = []
    cancel.check("reading LaunchDarkly")
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="health-lists") as side:
        groups_read = side.submit(_groups, api, project, notes)
        try:
            listed = api.list_items(METRIC, project, expected=expected)
        except ApiError as exc:
            if exc.status != 404:
                raise
            raise PlanError(f"{where}: there is no project `{project}` in LaunchDarkly at {api.host}",
                            "check the project key (`project:` in the file, --project, or the config); keys are "
                            "case-sensitive") from None
        listed_groups = groups_read.result()
    live = [str(r["key"]) for r in listed if not r.get("archived")]
    if len(live) > MAX_METRIC_READS:
        notes.append(f"{len(live)} metrics, more than the {MAX_METRIC_READS} read one by one: the others' users and "
                     "last use are not named")
        live = live[:MAX_METRIC_READS]
    used_groups = [str(g["key"]) for g in listed_groups if usage_of(g).experiments or usage_of(g).rollouts
                   or g.get("activeExperimentCount") or g.get("activeGuardedRolloutCount")]
    with ThreadPoolExecutor(max_workers=api.read_concurrency, thread_name_prefix="health") as pool:
        def metric(key: str) -> Rep | None:
            return _attempt(cancel, notes, f"metric `{key}`", lambda: api.get_item(
                METRIC, project, key, expand=(*METRIC.usage_expansions, *LAST_USED)))

        def group(key: str) -> Rep | None:
            return _attempt(cancel, notes, f"metric group `{key}`", lambda: api.get_item(
                METRIC_GROUP, project, key, expand=METRIC_GROUP.usage_expansions))

        details = dict(zip(live, pool.map(metric, live), strict=True))
        group_details = dict(zip(used_groups, pool.map(group, used_groups), strict=True))
        metrics = {str(r["key"]): details.get(str(r["key"])) or r for r in listed}
        groups = {str(g["key"]): group_details.get(str(g["key"])) or g for g in listed_groups}
        named = [*(details[k] for k in live), *(group_details[k] for k in used_groups)]
        statuses = read_statuses(api, pool, [(project, rep) for rep in named if rep], cancel)
    holders = read_holders(api, project, cancel)
    if holders.unread:
        notes.append(f"holdouts and release policies: {holders.unread}")
    return Observed(project, metrics, groups, statuses, holders, tuple(sorted(notes)))  # (workers add them)


def _groups(api: Api, project: str, notes: list[str]) -> Sequence[Rep]:
    try:
        return api.list_items(METRIC_GROUP, project)
    except ApiError as exc:
        if exc.status not in (401, 403, 404):
            raise
        notes.append(f"metric groups were not read ({exc.status}: {exc.api_message})")
        return []


def _attempt(cancel: CancelSignal, notes: list[str], what: str, read: Callable[[], T]) -> T | None:
    answer, why = attempt(cancel, read)
    if why is not None:
        notes.append(f"{what} was not read ({why})")
    return answer
