"""What plan reads of LaunchDarkly, as typed values: a project's `ProjectState`, and what uses each change.

Reads of a project (`read_state`): the paged list of each resource (metric groups only when the definitions
hold groups or --prune may delete some); while metrics are listed, the project's experimentation settings (only
when definitions set analysis units) and the groups; then, only for what may be retired, one read each with
`Resource.usage_expansions` (only that read says for certain what uses it), and the project's holdouts and
release policies (`read_holders`); only when a new group needs a default maintainer, the token's member. An
in-sync project costs list calls only: what the listing keeps of an item equal to its definition is a marker
(`IN_SYNC`), decided by `in_sync`: the same decision as the `compare` reconcile uses.
Every pool here starts no new read once the run is cancelled (`CancelSignal`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from metrics_sync.core.cancel import NEVER, CancelSignal
from metrics_sync.core.errors import ApiError, PlanError
from metrics_sync.core.fields import Resource
from metrics_sync.core.findings import Finding
from metrics_sync.core.model import Definitions
from metrics_sync.core.resources import METRIC, METRIC_GROUP, RESOURCES
from metrics_sync.launchdarkly.wire import Checked, problem
from metrics_sync.planning.desired import Desired, Forms
from metrics_sync.planning.diffing import in_sync
from metrics_sync.planning.usage import Holders, groups_of, holders_from, running_status, statuses_needed

if TYPE_CHECKING:  # (the pager imports the HTTP client: validate, which shows plans' types, does not need it)
    from metrics_sync.launchdarkly.paging import Keep, Kept

Rep = dict[str, Any]
T = TypeVar("T")
IN_SYNC = "_inSync"  # marks a listed item found equal to its definition while it was read: all plan keeps of it
MAX_EXPERIMENT_READS = 50  # experiment status reads per plan; beyond, "running or not: unknown"
MAX_GROUP_READS = 50  # groups read because a changed metric is in them
MAX_HOLDOUT_READS = 100  # holdouts read one by one per project (their metrics); beyond, holdouts count as unread


class Api(Protocol):
    """The LaunchDarkly calls plan makes (launchdarkly/client.py; tests may pass a fake)."""

    @property
    def host(self) -> str: ...

    @property
    def read_concurrency(self) -> int: ...

    @overload
    def list_items(self, resource: Resource, project: str, *, keep: None = None, expected: int = 0,
                   tags: Sequence[str] = ()) -> list[Rep]: ...

    @overload
    def list_items(self, resource: Resource, project: str, *, keep: Keep, expected: int = 0,
                   tags: Sequence[str] = ()) -> list[Kept]: ...

    def get_item(self, resource: Resource, project: str, key: str, expand: Sequence[str] = ()) -> Rep: ...

    def experiment_units(self, project: str) -> list[str]: ...

    def experiment(self, project: str, environment: str, key: str) -> Rep: ...

    def my_member_id(self) -> tuple[str | None, str | None]: ...

    def environments(self, project: str) -> list[str]: ...

    def holdouts(self, project: str, environment: str) -> list[Rep]: ...

    def holdout(self, project: str, environment: str, key: str) -> Rep: ...

    def release_policies(self, project: str) -> list[Rep]: ...


@dataclass(frozen=True)
class Listed:
    """One resource's items in a project, as plan keeps them."""

    items: tuple[Mapping[str, Any], ...]  # slim representations (`Resource.kept`), or `IN_SYNC` markers
    # key -> a single read with `usage_expansions`, of each managed item that left the definitions
    details: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class ProjectState:
    """What plan read of one project in LaunchDarkly."""

    project: str
    listed: Mapping[str, Listed | None]  # by resource kind; None (or absent): not read
    units: tuple[str, ...] | None = None  # context kinds available for experiments; None: not read
    maintainer: str | None = None  # the access token's member, when a new group needs a maintainer
    maintainer_problem: str | None = None  # why there is none (e.g. a service token)
    notes: tuple[Finding, ...] = ()  # what could not be read, and what plan does without it
    # The project's holdouts and release policies: read only when something may be retired; None: not read
    holders: Holders | None = None

    def items(self, kind: str) -> tuple[Mapping[str, Any], ...]:
        listed = self.listed.get(kind)
        return listed.items if listed is not None else ()

    def details(self, kind: str) -> Mapping[str, Mapping[str, Any]]:
        listed = self.listed.get(kind)
        return listed.details if listed is not None else {}


def selected(targets: Sequence[str], project: str, key: str) -> bool:
    """Whether `--target` patterns (globs of `key` or `project/key`) select an item; no patterns select all."""
    return not targets or any(fnmatchcase(key, t) or fnmatchcase(f"{project}/{key}", t) for t in targets)


class InSync(Checked):
    """What plan keeps of a listed item found equal to its definition: its key (the definition's own string) and
    `_version`, read as the mapping `{"key", "_version", IN_SYNC: True}`. Slotted: a big project in sync holds
    one per item (a dict of the same three entries costs 130 bytes more)."""

    __slots__ = ("key", "version")

    def __init__(self, key: str, version: Any) -> None:
        self.key, self.version = key, version

    def __getitem__(self, name: str) -> Any:
        if name == "key":
            return self.key
        if name == "_version":
            return self.version
        if name == IN_SYNC:
            return True
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(("key", "_version", IN_SYNC))

    def __len__(self) -> int:
        return 3


def keeper(forms: Forms) -> Keep:
    """What plan keeps of each listed item: a marker for one equal to its definition (most of them, in a
    repository in sync), the fields plan reads of the others. So a big project's plan holds little of an item in
    sync (neither its representation nor its definition's form: `Forms.settle`)."""
    resource = forms.resource

    def keep(rep: Mapping[str, Any]) -> Kept:
        slim = resource.kept(rep)
        key = str(slim.get("key"))
        item = forms.items.get(key)
        if item is None:
            return slim
        key = item.key  # the definition's own string: what is kept by key then holds no string of the page's
        after = forms.compute(key)
        if problem(resource, slim) is None and in_sync(resource, after, slim, adopt=item.adopt, tag=forms.tag):
            forms.settle(key, after)
            return InSync(key, slim.get("_version"))  # (checked: `problem` above)
        forms.keep(key, after)
        return slim

    return keep


def read_state(api: Api, project: str, definitions: Definitions, *, ownership_tag: str, prune: bool,
               targets: Sequence[str] = (), cancel: CancelSignal = NEVER,
               desired: Desired | None = None) -> ProjectState:
    """Read one project (`desired`: its definitions' canonical forms, when the caller keeps them for reconcile).
    LaunchDarkly not knowing the project is an error located where the definitions name it."""
    desired = desired or Desired(definitions, project, ownership_tag)
    metrics, groups = desired["metric"], desired["metric-group"]
    notes: list[Finding] = []
    cancel.check("reading LaunchDarkly")
    # The project's other reads go while its metrics are listed: at a distance, each is a round trip saved.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="side") as side:
        units_read = side.submit(_units, api, project, notes, cancel) \
            if any("analysisUnits" in m.fields for m in metrics.items.values()) else None
        groups_read = side.submit(_groups, api, project, groups, notes, cancel) if groups.items or prune else None
        try:
            listed_metrics = api.list_items(METRIC, project, keep=keeper(metrics), expected=len(metrics.items))
        except ApiError as exc:
            if exc.status != 404:
                raise
            where = definitions.project_sources.get(project, "the definitions")
            raise PlanError(f"{where}: there is no project `{project}` in LaunchDarkly at "
                            f"{api.host}", "check the project key (`project:` in the file, --project, or the "
                            "config); keys are case-sensitive") from None
        units = units_read.result() if units_read is not None else None
        listed_groups = groups_read.result() if groups_read is not None else None
    listed: dict[str, Listed | None] = {}
    for forms, items in ((metrics, listed_metrics), (groups, listed_groups)):
        resource = forms.resource
        listed[resource.kind] = None if items is None else Listed(tuple(items), {
            key: _read(api, cancel, resource, project, key) for key in _retire_candidates(forms, items)
            if selected(targets, project, key)})
    # Holdouts and release policies name metrics too: read only when something may be retired.
    holders = read_holders(api, project, cancel) if any(
        listed_ and listed_.details for listed_ in listed.values()) else None
    member, why = None, None
    existing = {str(r["key"]) for r in listed_groups or []}
    if any(key not in existing and not g.fields.get("maintainerId") for key, g in groups.items.items()):
        cancel.check("reading LaunchDarkly")
        member, why = api.my_member_id()
    return ProjectState(project, listed, None if units is None else tuple(units), member, why, tuple(notes), holders)


def _retire_candidates(forms: Forms, items: Sequence[Mapping[str, Any]]) -> list[str]:
    """Managed, unarchived items that left the definitions: the only ones read one by one, to know for certain
    whether experiments or guarded rollouts use them."""
    return sorted(str(r["key"]) for r in items if str(r["key"]) not in forms.items
                  and forms.tag in (r.get("tags") or []) and not r.get("archived"))


def _read(api: Api, cancel: CancelSignal, resource: Resource, project: str, key: str) -> Rep:
    cancel.check("reading LaunchDarkly")
    return api.get_item(resource, project, key, expand=resource.usage_expansions)


def _units(api: Api, project: str, notes: list[Finding], cancel: CancelSignal) -> list[str] | None:
    cancel.check("reading LaunchDarkly")
    try:
        return api.experiment_units(project)
    except ApiError as exc:
        notes.append(Finding("read-note", "warning", "analysis units were not checked against the project's "
                             f"experimentation settings ({exc.status or 'no answer'}: {exc.api_message})"))
        return None


def _groups(api: Api, project: str, groups: Forms, notes: list[Finding], cancel: CancelSignal) -> list[Kept] | None:
    cancel.check("reading LaunchDarkly")
    try:
        return api.list_items(METRIC_GROUP, project, keep=keeper(groups), expected=len(groups.items))
    except ApiError as exc:
        if groups.items or exc.status not in (401, 403, 404):
            raise
        notes.append(Finding("read-note", "warning", f"metric groups were not read ({exc.status or 'no answer'}: "
                             f"{exc.api_message}); --prune leaves them alone"))
        return None


def attempt(cancel: CancelSignal, read: Callable[[], T]) -> tuple[T | None, str | None]:
    """One read that may fail without failing the run: its answer, or why there is none ("403: message")."""
    cancel.check("reading LaunchDarkly")
    try:
        return read(), None
    except ApiError as exc:
        return None, f"{exc.status or 'no answer'}: {exc.api_message}"


def read_holders(api: Api, project: str, cancel: CancelSignal = NEVER) -> Holders:
    """The project's release policies (one list) and holdouts: the environments (one paged list), each
    environment's holdouts, and each holdout on its own (only its detail names its metrics), at most
    MAX_HOLDOUT_READS. Whatever cannot be read is said (`Holders.unread`): then nothing is certain, and retiring
    is blocked (usage.py)."""
    problems: list[str] = []

    def tried(what: str, read: Callable[[], Any]) -> Any:
        answer, why = attempt(cancel, read)
        if why is not None:
            problems.append(f"{what}: {why}")
        return answer

    policies = tried("release policies", lambda: api.release_policies(project)) or []
    environments = tried("environments", lambda: api.environments(project)) or []
    with ThreadPoolExecutor(max_workers=api.read_concurrency, thread_name_prefix="holders") as pool:
        lists = list(pool.map(lambda env: tried(f"holdouts in {env}", lambda: api.holdouts(project, env)),
                              environments))
        wanted = [(env, item) for env, items in zip(environments, lists, strict=True) for item in items or []]
        if len(wanted) > MAX_HOLDOUT_READS:
            problems.append(f"{len(wanted)} holdouts, more than the {MAX_HOLDOUT_READS} read per plan")
            wanted = wanted[:MAX_HOLDOUT_READS]
        details = list(pool.map(lambda at: tried(f"holdout {at[1]['key']}", lambda: api.holdout(
            project, at[0], str(at[1]["key"]))), wanted))
    holdouts = [(env, item, detail) for (env, item), detail in zip(wanted, details, strict=True) if detail]
    return holders_from(holdouts, policies, "; ".join(problems) or None)


# --- what uses each change ----------------------------------------------------------------------------------

ItemId = tuple[str, str, str]  # (project, resource kind, key)


@dataclass
class Reads:
    """What plan read about the changed items (impact.py decides what it means)."""

    reps: dict[ItemId, Mapping[str, Any]] = field(default_factory=dict)  # single reads with expansions
    unread: dict[ItemId, str] = field(default_factory=dict)  # why an item's users could not be read
    statuses: dict[tuple[str, str, str], str | None] = field(default_factory=dict)  # (project, env, key) -> status
    holders: dict[str, Holders] = field(default_factory=dict)  # project -> its holdouts and release policies


def read_statuses(api: Api, pool: ThreadPoolExecutor, reps: Sequence[tuple[str, Mapping[str, Any]]],
                  cancel: CancelSignal = NEVER) -> dict[tuple[str, str, str], str | None]:
    """Whether each experiment the representations (of their projects) name without saying is running: at
    most MAX_EXPERIMENT_READS reads, in the order named (so the cap picks the same ones on every run); an
    experiment that cannot be read stays unknown (None)."""
    needed: list[tuple[str, str, str]] = []
    for project, rep in reps:
        for environment, experiment in statuses_needed(rep):
            at = (project, environment, experiment)
            if at not in needed and len(needed) < MAX_EXPERIMENT_READS:
                needed.append(at)

    def status(at: tuple[str, str, str]) -> str | None:
        cancel.check("reading LaunchDarkly")
        try:
            return running_status(api.experiment(*at))
        except ApiError:
            return None

    return dict(zip(needed, pool.map(status, needed), strict=True))


def read_uses(api: Api, items: Sequence[ItemId], states: Mapping[str, ProjectState] | None = None, *,
              cancel: CancelSignal = NEVER) -> Reads:
    """What uses each item: one read with expansions per item (reusing the reads of retire candidates in
    `states`), the groups a metric is in, where the active counts leave it open the status of each experiment,
    and each project's holdouts and release policies (read once; reused from `states` when read there)."""

    def item(target: ItemId) -> tuple[Mapping[str, Any] | None, str | None]:
        project, kind, key = target
        state = (states or {}).get(project)
        known = state.details(kind).get(key) if state is not None else None
        return attempt(cancel, lambda: known or _read(api, cancel, RESOURCES[kind], project, key))

    def group(target: ItemId) -> Mapping[str, Any] | None:
        try:
            return _read(api, cancel, METRIC_GROUP, target[0], target[2])
        except ApiError:
            return None  # its experiments stay unnamed; the metric's own are still read

    reads = Reads()
    # Each read is one round trip: they go at once (the client's rate-limit gate paces them), in the plan's
    # order, and are kept in that order so the caps below pick the same items on every run.
    with ThreadPoolExecutor(max_workers=api.read_concurrency, thread_name_prefix="uses") as pool:
        for target, (rep, why) in zip(items, pool.map(item, items), strict=True):
            if rep is not None:
                reads.reps[target] = rep
            else:
                reads.unread[target] = str(why)
        wanted: list[ItemId] = []
        for (project, kind, _), rep in list(reads.reps.items()):
            for key in groups_of(rep) if kind == "metric" else []:
                target = (project, "metric-group", key)
                if target not in reads.reps and target not in wanted and len(wanted) < MAX_GROUP_READS:
                    wanted.append(target)
        for target, group_rep in zip(wanted, pool.map(group, wanted), strict=True):
            if group_rep is not None:
                reads.reps[target] = group_rep
        reads.statuses.update(read_statuses(api, pool, [(target[0], rep) for target, rep in reads.reps.items()],
                                            cancel))
    for project in dict.fromkeys(target[0] for target in items):
        state = (states or {}).get(project)
        known = state.holders if state is not None else None
        reads.holders[project] = known if known is not None else read_holders(api, project, cancel)
    return reads
