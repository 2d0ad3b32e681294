"""Carry out a Plan against LaunchDarkly with bounded concurrency; every change gets its own outcome.

Changes run in phases, so that nothing refers to what does not exist yet: metrics are created, updated and
restored first; then metric groups are created and updated (a group whose metric failed to be created is
skipped); then groups that left the definitions are deleted; and last, metrics are archived.

A failed change never stops the others, and nothing is ever written blindly:
  * creates go through the client's safe POST (a create is never duplicated after a timeout); fields
    LaunchDarkly does not take in a POST (the maintainer) are then set with a guarded PATCH;
  * a create refused because the key exists (409) reads that key: an archived metric the list did not show
    is restored and updated to the definition ("restored"); an equal metric counts as already created;
  * updates send only the changed paths, after `test` operations on the values seen at plan time,
    so a concurrent edit makes the update fail instead of being overwritten. When such a patch is
    rejected, the metric is read again: if it already holds the planned values (an earlier attempt
    did land), the change counts as done; otherwise it is reported as changed since the plan;
  * after every write the returned representation is compared with what was sent, and fields
    LaunchDarkly did not keep are reported (its API ignores unknown fields silently).
Saved plans are verified before anything is written (saved_plan.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import Any, Protocol

from metrics_sync.core.errors import ApiError
from metrics_sync.core.fields import Resource
from metrics_sync.core.model import ApplyResult, Change, ChangeResult, FieldChange, Outcome, Plan
from metrics_sync.core.resources import METRIC, METRIC_GROUP, RESOURCES
from metrics_sync.planning.diffing import diff, guarded_patch

Progress = Callable[[int, int], None]


class MetricsApi(Protocol):
    """What apply needs from LaunchDarkly; `client.Client` implements it."""

    def find_item(self, resource: Resource, project: str, key: str) -> dict[str, Any] | None: ...

    def create_item(self, resource: Resource, project: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]: ...

    def patch_item(self, resource: Resource, project: str, key: str, operations: list[dict[str, Any]], *,
                   comment: str | None = None) -> dict[str, Any]: ...

    def delete_item(self, resource: Resource, project: str, key: str) -> bool: ...


# The order changes run in (see the module's docstring): a phase starts when the one before it has finished.
PHASES = (("metric", ("create", "update")), ("metric-group", ("create", "update")), ("metric-group", ("delete",)),
          ("metric", ("archive",)))


def phase_of(change: Change) -> int:
    for index, (resource, actions) in enumerate(PHASES):
        if change.resource == resource and change.action in actions:
            return index
    raise ValueError(f"no phase for a {change.action} of a {change.resource}")


def _not_kept(sent: Mapping[str, Any], rep: Mapping[str, Any], fields: Sequence[str],
              resource: Any = METRIC) -> tuple[str, ...]:
    kept = resource.canonical(rep)
    return tuple(f for f in fields if f in sent and kept.get(f) != sent[f])


def unsafe(change: Change, ownership_tag: str) -> str | None:
    """Why a change must not be sent, whatever plan or file it came from (None when it may be):
      * an archive only of a metric that carries the ownership tag, as exactly `test` + `replace` of /archived;
      * operations only on the fields metrics-sync manages, and only add, replace, remove and test;
      * every `replace` and `remove` guarded by a `test` of the same field, sent before it;
      * a create body only of managed fields, for the change's own key."""
    if change.resource == "metric-group" and change.action == "delete":
        if ownership_tag not in ((change.before or {}).get("tags") or []):
            return "it deletes a metric group without the ownership tag"
        return "its delete carries a patch or a body" if change.patch or change.body else None
    if change.action == "delete" or (change.resource == "metric-group" and change.action == "archive"):
        return f"a {change.noun} cannot be {change.action}d"
    managed = set(RESOURCES[change.resource].names)
    if change.action == "create":
        body = change.body or {}
        if body.get("key") != change.key:
            return "its create body is for another key"
        extra = sorted(set(body) - managed - {"key"})
        return f"its create body sets fields metrics-sync does not manage ({', '.join(extra)})" if extra else None
    if change.action == "archive":
        if ownership_tag not in ((change.before or {}).get("tags") or []):
            return "it archives a metric without the ownership tag"
        if change.patch != [{"op": "test", "path": "/archived", "value": False},
                            {"op": "replace", "path": "/archived", "value": True}]:
            return "its archive patch does more than archive"
        return None
    tested: set[str] = set()
    for op in change.patch:
        path = op.get("path")
        field = path[1:] if isinstance(path, str) and path.startswith("/") else None
        if field not in managed:
            return f"it changes {path!r}, which metrics-sync does not manage for a {change.noun}"
        if field == "kind" and op.get("op") != "test":
            return f"it changes the {change.noun}'s kind, which LaunchDarkly cannot change"
        if op.get("op") == "test":
            tested.add(field)
        elif op.get("op") in ("replace", "remove"):
            if field not in tested:
                return f"its {op['op']} of {path} is not guarded by a test of the value planned against"
        elif op.get("op") != "add":
            return f"it holds a {op.get('op')!r} operation"
    if not change.patch:
        return "it has no operations"
    return None


def _apply_one(api: MetricsApi, project: str, change: Change, comment: str | None,
               ownership_tag: str) -> ChangeResult:
    result = _carry_out(api, project, change, comment, ownership_tag)
    return replace(result, source=result.source or change.source, resource=change.resource)


def _carry_out(api: MetricsApi, project: str, change: Change, comment: str | None,
               ownership_tag: str) -> ChangeResult:
    fields = [f.field for f in change.fields]
    after = change.after or {}
    refusal = unsafe(change, ownership_tag)
    if refusal:
        return ChangeResult(project, change.key, change.action, "failed", f"not sent: {refusal}",
                            source=change.source)
    try:
        if change.resource == "metric-group":
            return _carry_out_group(api, project, change)
        if change.action == "create":
            return _create(api, project, change, comment)
        outcome: Outcome = "archived" if change.action == "archive" else "restored" if change.restore else "updated"
        try:
            rep = api.patch_item(METRIC, project, change.key, change.patch, comment=comment)
        except ApiError as exc:
            # The spec lists both 400 and 409 for a PATCH whose `test` fails; either way, read and decide.
            if exc.status not in (400, 409) or not any(op["op"] == "test" for op in change.patch):
                raise
            return _after_rejected_patch(api, project, change, exc)
        return ChangeResult(project, change.key, change.action, outcome, None, _not_kept(after, rep, fields))
    except ApiError as exc:
        return ChangeResult(project, change.key, change.action, "failed", str(exc), source=change.source,
                            denied=exc.status in (401, 403) and exc.method != "GET")
    except Exception as exc:  # a bug must not lose the accounting of the other changes
        return ChangeResult(project, change.key, change.action, "failed",
                            f"internal error: {type(exc).__name__}: {exc}", source=change.source)


def _carry_out_group(api: MetricsApi, project: str, change: Change) -> ChangeResult:
    key, after = change.key, change.after or {}
    fields = [f.field for f in change.fields]
    if change.action == "delete":
        gone_before = not api.delete_item(METRIC_GROUP, project, key)
        return ChangeResult(project, key, "delete", "deleted", "it was already gone" if gone_before else None)
    if change.action == "create":
        assert change.body is not None
        try:
            rep, recovered = api.create_item(METRIC_GROUP, project, change.body)
        except ApiError as exc:
            if exc.status not in (400, 409):
                raise
            existing = api.find_item(METRIC_GROUP, project, key)
            if existing is None:
                raise
            moved = [f for f in fields if METRIC_GROUP.canonical(existing).get(f) != after.get(f)]
            if moved:
                return ChangeResult(project, key, "create", "failed",
                                    f"metric group {key} was created in LaunchDarkly since the plan, differently "
                                    f"({', '.join(moved)}); nothing was overwritten; run plan again")
            return ChangeResult(project, key, "create", "created", "already applied")
        note = "found created after an unclear answer" if recovered else None
        return ChangeResult(project, key, "create", "created", note, _not_kept(after, rep, fields, METRIC_GROUP))
    try:
        rep = api.patch_item(METRIC_GROUP, project, key, change.patch)
    except ApiError as exc:
        if exc.status not in (400, 409) or not any(op["op"] == "test" for op in change.patch):
            raise
        return _after_rejected_group_patch(api, project, change, exc)
    return ChangeResult(project, key, "update", "updated", None, _not_kept(after, rep, fields, METRIC_GROUP))


def _after_rejected_group_patch(api: MetricsApi, project: str, change: Change, error: ApiError) -> ChangeResult:
    """A guarded group patch was refused. Whether LaunchDarkly evaluates `test` against the representation it
    sends (metrics with names and links) or against what it stores is not documented (A24): so when the group
    is exactly as planned against (same `_version`, same values), the refusal was the guard's, and the patch
    is sent once more with its version-checked set operations only."""
    rep = api.find_item(METRIC_GROUP, project, change.key)
    if rep is None:
        return ChangeResult(project, change.key, "update", "failed",
                            f"metric group {change.key} no longer exists in LaunchDarkly; run plan again")
    now = METRIC_GROUP.canonical(rep)
    planned = change.after or {}
    if all(now.get(f.field) == planned.get(f.field) for f in change.fields):
        return ChangeResult(project, change.key, "update", "updated", "already applied")
    moved = [f.field for f in change.fields if now.get(f.field) != f.before]
    if moved or rep.get("_version") != change.remote_version:
        return ChangeResult(project, change.key, "update", "failed",
                            f"metric group {change.key} was changed in LaunchDarkly since the plan "
                            f"({', '.join(moved) or 'a newer version'}); nothing was overwritten; run plan again")
    sets = [op for op in change.patch if op["op"] != "test"]
    try:
        rep = api.patch_item(METRIC_GROUP, project, change.key, sets)
    except ApiError:
        return ChangeResult(project, change.key, "update", "failed", str(error))
    return ChangeResult(project, change.key, "update", "updated", "sent without its guard, after a read showed the "
                        "group as planned against", _not_kept(planned, rep, [f.field for f in change.fields],
                                                              METRIC_GROUP))


def _create(api: MetricsApi, project: str, change: Change, comment: str | None) -> ChangeResult:
    assert change.body is not None and change.after is not None
    after = change.after
    fields = [f.field for f in change.fields]
    try:
        rep, recovered = api.create_item(METRIC, project, change.body)
    except ApiError as exc:
        # An existing key is 409 by the spec; the API overview's example answers it with 400 `invalid_request`.
        if exc.status not in (400, 409):
            raise
        return _after_create_conflict(api, project, change, comment, exc)
    note = "found created after an unclear answer" if recovered else None
    # What a POST does not set (LaunchDarkly sets the maintainer only after create, as its Terraform provider
    # found): a PATCH guarded by the values the create answered with.
    later = [f for f in METRIC.set_after_create if f in after and METRIC.canonical(rep).get(f) != after[f]]
    if later:
        follow = [FieldChange(f, METRIC.canonical(rep).get(f), after[f]) for f in later]
        rep = api.patch_item(METRIC, project, change.key, guarded_patch(rep, follow), comment=comment)
    return ChangeResult(project, change.key, "create", "created", note, _not_kept(after, rep, fields))


def _after_create_conflict(api: MetricsApi, project: str, change: Change, comment: str | None,
                           error: ApiError) -> ChangeResult:
    """The key exists although the plan did not see it: an archived metric the list leaves out (LaunchDarkly
    may hide archived metrics from the list), or one created meanwhile (another apply)."""
    rep = api.find_item(METRIC, project, change.key)
    if rep is None:
        return ChangeResult(project, change.key, "create", "failed", str(error))
    after = change.after or {}
    fields, patch = diff(after, rep)
    if METRIC.canonical(rep).get("archived"):
        rep = api.patch_item(METRIC, project, change.key, patch, comment=comment)
        return ChangeResult(project, change.key, "create", "restored",
                            "it was archived in LaunchDarkly; restored and updated to the definition",
                            _not_kept(after, rep, [f.field for f in fields]))
    if not fields:
        return ChangeResult(project, change.key, "create", "created", "already applied")
    return ChangeResult(project, change.key, "create", "failed",
                        f"metric {change.key} was created in LaunchDarkly since the plan, differently "
                        f"({', '.join(f.field for f in fields)}); nothing was overwritten; run plan again")


def _after_rejected_patch(api: MetricsApi, project: str, change: Change, error: ApiError) -> ChangeResult:
    """A guarded patch was refused: learn whether it already landed or the metric moved on."""
    rep = api.find_item(METRIC, project, change.key)
    if rep is None:
        return ChangeResult(project, change.key, change.action, "failed",
                            f"metric {change.key} no longer exists in LaunchDarkly; run plan again")
    now = METRIC.canonical(rep)
    planned = change.after or {}
    if all(now.get(f.field) == planned.get(f.field) for f in change.fields):
        outcome: Outcome = "archived" if change.action == "archive" else "restored" if change.restore else "updated"
        return ChangeResult(project, change.key, change.action, outcome, "already applied")
    moved = [f.field for f in change.fields if now.get(f.field) != f.before]
    if not moved:
        return ChangeResult(project, change.key, change.action, "failed", str(error))
    return ChangeResult(project, change.key, change.action, "failed",
                        f"metric {change.key} was changed in LaunchDarkly since the plan ({', '.join(moved)}); "
                        f"nothing was overwritten; run plan again")


def apply_plan(
    plan: Plan,
    api: MetricsApi,
    *,
    parallelism: int = 4,
    progress: Progress | None = None,
    on_result: Callable[[ChangeResult], None] | None = None,
    stop: threading.Event | None = None,
    comment: str | None = None,
) -> ApplyResult:
    """Apply every change. `stop` (set on SIGINT) stops new changes; those in flight finish. `comment` goes
    with every update to LaunchDarkly's audit log. `on_result` hears of each change as it completes (in the
    calling thread), `progress(done, total)` on each completion and every fraction of a second.

    A permission error on a write stops new changes too: the token's role is the same for all of them, so
    the rest would fail the same way."""
    work = plan.changes
    stop = stop or threading.Event()
    results: dict[int, ChangeResult] = {}
    done = 0
    interrupted = False
    denied: list[str] = []

    def run(index: int, project: str, change: Change) -> ChangeResult:
        if stop.is_set():
            why = "stopped after a permission error" if denied else "apply was interrupted"
            return ChangeResult(project, change.key, change.action, "skipped", f"not started: {why}",
                                source=change.source, resource=change.resource)
        result = _apply_one(api, project, change, comment, plan.ownership_tag)
        if result.denied:
            denied.append(result.message or "")
            stop.set()
        return result

    def blocked_by(project: str, change: Change) -> ChangeResult | None:
        """A group whose metric was to be created by this apply, and was not, is not sent."""
        if change.resource != "metric-group" or change.action == "delete":
            return None
        missing = [m["key"] for m in (change.after or {}).get("metrics") or []
                   if (project, m["key"]) in not_created]
        if not missing:
            return None
        return ChangeResult(project, change.key, change.action, "skipped",
                            f"not started: metric {', '.join(missing)} it names was not created", source=change.source,
                            resource=change.resource)

    not_created: set[tuple[str, str]] = set()
    pool = ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="apply")
    try:
        for phase in range(len(PHASES)):
            pending: dict[Future[ChangeResult], int] = {}
            for i, (project, change) in enumerate(work):
                if phase_of(change) != phase:
                    continue
                held = blocked_by(project, change)
                if held is not None:
                    results[i] = held
                    done += 1
                    if on_result:
                        on_result(held)
                    continue
                pending[pool.submit(run, i, project, change)] = i
            while pending:
                try:
                    finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    if stop.is_set() and not denied:  # a second interrupt: abort without waiting
                        raise
                    stop.set()
                    interrupted = True
                    continue
                for future in finished:
                    index = pending.pop(future)
                    result = future.result()
                    results[index] = result
                    done += 1
                    if result.resource == "metric" and result.action == "create" and \
                            result.outcome not in ("created", "restored"):
                        not_created.add((result.project, result.key))
                    if on_result:
                        on_result(result)
                if progress:
                    progress(done, len(work))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    interrupted = interrupted or (stop.is_set() and not denied)
    return ApplyResult([results[i] for i in range(len(work))], interrupted=interrupted,
                       stopped=denied[0] if denied else None)
