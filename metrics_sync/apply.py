"""Carry out a Plan against LaunchDarkly with bounded concurrency; every change gets its own outcome.

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

from metrics_sync.errors import ApiError
from metrics_sync.fields import METRIC
from metrics_sync.model import ApplyResult, Change, ChangeResult, FieldChange, Outcome, Plan
from metrics_sync.planner import diff, guarded_patch

Progress = Callable[[int, int], None]


class MetricsApi(Protocol):
    """What apply needs from LaunchDarkly; `client.Client` implements it."""

    def find_metric(self, project: str, key: str) -> dict[str, Any] | None: ...

    def create_metric(self, project: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]: ...

    def patch_metric(self, project: str, key: str, operations: list[dict[str, Any]], *,
                     comment: str | None = None) -> dict[str, Any]: ...


def _not_kept(sent: Mapping[str, Any], rep: Mapping[str, Any], fields: Sequence[str]) -> tuple[str, ...]:
    kept = METRIC.canonical(rep)
    return tuple(f for f in fields if f in sent and kept.get(f) != sent[f])


def unsafe(change: Change, ownership_tag: str) -> str | None:
    """Why a change must not be sent, whatever plan or file it came from (None when it may be):
      * an archive only of a metric that carries the ownership tag, as exactly `test` + `replace` of /archived;
      * operations only on the fields metrics-sync manages, and only add, replace, remove and test;
      * every `replace` and `remove` guarded by a `test` of the same field, sent before it;
      * a create body only of managed fields, for the change's own key."""
    managed = set(METRIC.names)
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
            return f"it changes {path!r}, which metrics-sync does not manage"
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
    return result if result.source else replace(result, source=change.source)


def _carry_out(api: MetricsApi, project: str, change: Change, comment: str | None,
               ownership_tag: str) -> ChangeResult:
    fields = [f.field for f in change.fields]
    after = change.after or {}
    refusal = unsafe(change, ownership_tag)
    if refusal:
        return ChangeResult(project, change.key, change.action, "failed", f"not sent: {refusal}",
                            source=change.source)
    try:
        if change.action == "create":
            return _create(api, project, change, comment)
        outcome: Outcome = "archived" if change.action == "archive" else "restored" if change.restore else "updated"
        try:
            rep = api.patch_metric(project, change.key, change.patch, comment=comment)
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


def _create(api: MetricsApi, project: str, change: Change, comment: str | None) -> ChangeResult:
    assert change.body is not None and change.after is not None
    after = change.after
    fields = [f.field for f in change.fields]
    try:
        rep, recovered = api.create_metric(project, change.body)
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
        rep = api.patch_metric(project, change.key, guarded_patch(rep, follow), comment=comment)
    return ChangeResult(project, change.key, "create", "created", note, _not_kept(after, rep, fields))


def _after_create_conflict(api: MetricsApi, project: str, change: Change, comment: str | None,
                           error: ApiError) -> ChangeResult:
    """The key exists although the plan did not see it: an archived metric the list leaves out (LaunchDarkly
    may hide archived metrics from the list), or one created meanwhile (another apply)."""
    rep = api.find_metric(project, change.key)
    if rep is None:
        return ChangeResult(project, change.key, "create", "failed", str(error))
    after = change.after or {}
    fields, patch = diff(after, rep)
    if METRIC.canonical(rep).get("archived"):
        rep = api.patch_metric(project, change.key, patch, comment=comment)
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
    rep = api.find_metric(project, change.key)
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
                                source=change.source)
        result = _apply_one(api, project, change, comment, plan.ownership_tag)
        if result.denied:
            denied.append(result.message or "")
            stop.set()
        return result

    pool = ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="apply")
    pending: dict[Future[ChangeResult], int] = {
        pool.submit(run, i, project, change): i for i, (project, change) in enumerate(work)
    }
    try:
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
                result = future.result()
                results[pending.pop(future)] = result
                done += 1
                if on_result:
                    on_result(result)
            if progress:
                progress(done, len(work))
    finally:
        pool.shutdown(wait=not pending, cancel_futures=True)
    interrupted = interrupted or (stop.is_set() and not denied)
    return ApplyResult([results[i] for i in range(len(work))], interrupted=interrupted,
                       stopped=denied[0] if denied else None)
