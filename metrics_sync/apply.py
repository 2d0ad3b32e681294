"""Carry out a Plan against LaunchDarkly with bounded concurrency; every change gets its own outcome.

A failed change never stops the others, and nothing is ever written blindly:
  * creates go through the client's safe POST (a create is never duplicated after a timeout);
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
from typing import Any, Protocol

from metrics_sync.errors import ApiError
from metrics_sync.fields import METRIC
from metrics_sync.model import ApplyResult, Change, ChangeResult, Outcome, Plan

Progress = Callable[[int, int], None]


class MetricsApi(Protocol):
    """What apply needs from LaunchDarkly; `client.Client` implements it."""

    def list_metrics(self, project: str) -> list[dict[str, Any]]: ...

    def find_metric(self, project: str, key: str) -> dict[str, Any] | None: ...

    def create_metric(self, project: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]: ...

    def patch_metric(self, project: str, key: str, operations: list[dict[str, Any]]) -> dict[str, Any]: ...


def _not_kept(sent: Mapping[str, Any], rep: Mapping[str, Any], fields: Sequence[str]) -> tuple[str, ...]:
    kept = METRIC.canonical(rep)
    return tuple(f for f in fields if f in sent and kept.get(f) != sent[f])


def _apply_one(api: MetricsApi, project: str, change: Change) -> ChangeResult:
    fields = [f.field for f in change.fields]
    after = change.after or {}
    try:
        if change.action == "create":
            assert change.body is not None
            rep, recovered = api.create_metric(project, change.body)
            note = "found created after an unclear answer" if recovered else None
            return ChangeResult(project, change.key, "create", "created", note, _not_kept(after, rep, fields))
        outcome: Outcome = "archived" if change.action == "archive" else "updated"
        try:
            rep = api.patch_metric(project, change.key, change.patch)
        except ApiError as exc:
            if exc.status not in (400, 409) or not any(op["op"] == "test" for op in change.patch):
                raise
            return _after_rejected_patch(api, project, change, exc)
        return ChangeResult(project, change.key, change.action, outcome, None, _not_kept(after, rep, fields))
    except ApiError as exc:
        return ChangeResult(project, change.key, change.action, "failed", str(exc))
    except Exception as exc:  # a bug must not lose the accounting of the other changes
        return ChangeResult(project, change.key, change.action, "failed",
                            f"internal error: {type(exc).__name__}: {exc}")


def _after_rejected_patch(api: MetricsApi, project: str, change: Change, error: ApiError) -> ChangeResult:
    """A guarded patch was refused: learn whether it already landed or the metric moved on."""
    rep = api.find_metric(project, change.key)
    if rep is None:
        return ChangeResult(project, change.key, change.action, "failed",
                            f"metric {change.key} no longer exists in LaunchDarkly; run plan again")
    now = METRIC.canonical(rep)
    planned = change.after or {}
    if all(now.get(f.field) == planned.get(f.field) for f in change.fields):
        outcome: Outcome = "archived" if change.action == "archive" else "updated"
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
    stop: threading.Event | None = None,
) -> ApplyResult:
    """Apply every change. `stop` (set on SIGINT) stops new changes; those in flight finish."""
    work = plan.changes
    stop = stop or threading.Event()
    results: dict[int, ChangeResult] = {}
    done = 0
    interrupted = False

    def run(index: int, project: str, change: Change) -> ChangeResult:
        if stop.is_set():
            return ChangeResult(project, change.key, change.action, "skipped", "not started: apply was interrupted")
        return _apply_one(api, project, change)

    pool = ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="apply")
    pending: dict[Future[ChangeResult], int] = {
        pool.submit(run, i, project, change): i for i, (project, change) in enumerate(work)
    }
    try:
        while pending:
            try:
                finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                if stop.is_set():  # a second interrupt: abort without waiting
                    raise
                stop.set()
                interrupted = True
                continue
            for future in finished:
                results[pending.pop(future)] = future.result()
                done += 1
                if progress:
                    progress(done, len(work))
    finally:
        pool.shutdown(wait=not pending, cancel_futures=True)
    interrupted = interrupted or stop.is_set()
    return ApplyResult([results[i] for i in range(len(work))], interrupted=interrupted)
