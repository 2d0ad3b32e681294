"""Carry out a Plan against LaunchDarkly with bounded concurrency; every change gets its own outcome.

One executor for every resource: `core/resources.py` says how they differ. Changes run in phases, so nothing
refers to what does not exist: a resource is created and updated after those it names (a group whose metric
was not created is skipped), and retired (archived, deleted) before them. Nothing is written blindly: creates
go through the client's safe POST (never duplicated after a timeout), updates and archives are JSON Patches
guarded by `test`s of the values planned against, and each action has one recovery protocol, the same for
every resource (below). What LaunchDarkly answers is compared with what was sent: fields it did not keep are
reported. Saved plans are verified before anything is written (saved_plan.py); guard.py refuses any change that
is not what metrics-sync ever sends, whatever plan it came from.

Once `cancel` is set no change starts; the changes in flight are awaited at most the signal's grace (the
client's session ends their requests by then) and SLACK, and one still in flight after that is reported so.
"""

from __future__ import annotations

import math
import queue
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol

from metrics_sync.apply.guard import unsafe
from metrics_sync.core.cancel import NEVER, Cancelled, CancelSignal
from metrics_sync.core.errors import ApiError
from metrics_sync.core.fields import Resource
from metrics_sync.core.model import ApplyResult, Change, ChangeResult, FieldChange, Outcome, Plan
from metrics_sync.core.resources import METRIC, RESOURCES
from metrics_sync.planning.diffing import diff, guarded_patch

Progress = Callable[[int, int], None]
JSONDict = dict[str, Any]
SLACK = 0.5  # seconds past the cancel signal's grace that apply still waits for a change in flight
IN_FLIGHT = "interrupted in flight; run plan to see whether it landed"


class ItemsApi(Protocol):
    """What apply needs from LaunchDarkly, for any resource; `launchdarkly.client.Client` implements it."""

    def find_item(self, resource: Resource, project: str, key: str) -> JSONDict | None: ...
    def create_item(self, resource: Resource, project: str, body: JSONDict) -> tuple[JSONDict, bool]: ...
    def patch_item(self, resource: Resource, project: str, key: str, operations: list[JSONDict], *,
                   comment: str | None = None) -> JSONDict: ...
    def delete_item(self, resource: Resource, project: str, key: str) -> bool: ...


# The order changes run in (see the module's docstring): RESOURCES lists a resource after those it names.
PHASES = (tuple((r.kind, ("create", "update")) for r in RESOURCES.values())
          + tuple((r.kind, (r.retire,)) for r in reversed(RESOURCES.values())))


def phase_of(change: Change) -> int:
    """A change no phase holds (a delete of a metric, in a tampered plan) runs last, and `unsafe` refuses it."""
    return next((i for i, (kind, actions) in enumerate(PHASES) if change.resource == kind and change.action in actions),
                len(PHASES) - 1)


@dataclass(frozen=True)
class _Write:
    """One change being carried out: its calls to LaunchDarkly and the outcomes it reports."""

    api: ItemsApi
    project: str
    change: Change
    comment: str | None

    @property
    def resource(self) -> Resource:
        return RESOURCES[self.change.resource]

    @property
    def done(self) -> Outcome:
        outcomes: dict[str, Outcome] = {"create": "created", "archive": "archived", "delete": "deleted"}
        return outcomes.get(self.change.action, "restored" if self.change.restore else "updated")

    def result(self, outcome: Outcome, message: str | None = None, rep: Mapping[str, Any] | None = None,
               fields: list[FieldChange] | None = None, denied: bool = False) -> ChangeResult:
        """The outcome; with `rep` (what LaunchDarkly answered a write with), which of the `fields` written
        (by default the change's) it did not keep."""
        sent, kept = self.change.after or {}, self.resource.canonical(rep) if rep is not None else None
        written = [f.field for f in (self.change.fields if fields is None else fields)]
        lost = () if kept is None else tuple(f for f in written if f in sent and kept.get(f) != sent[f]
                                             and f not in self.resource.write_only)  # never read back (A36)
        return ChangeResult(self.project, self.change.key, self.change.action, outcome, message, lost,
                            source=self.change.source, denied=denied, resource=self.change.resource)

    def find(self) -> JSONDict | None:
        return self.api.find_item(self.resource, self.project, self.change.key)

    def patch(self, operations: list[JSONDict]) -> JSONDict:
        comment = self.comment if self.resource.patch_comment else None
        return self.api.patch_item(self.resource, self.project, self.change.key, operations, comment=comment)

    def stale(self, what: str) -> ChangeResult:
        return self.result("failed", f"{self.resource.name} {self.change.key} {what}; run plan again")


def _carry_out(w: _Write, ownership_tag: str) -> ChangeResult:
    try:
        refusal = unsafe(w.change, ownership_tag)
        if refusal:
            return w.result("failed", f"not sent: {refusal}")
        if w.change.action == "create":
            return _create(w)
        if w.change.action == "delete":
            gone_before = not w.api.delete_item(w.resource, w.project, w.change.key)
            return w.result("deleted", "it was already gone" if gone_before else None)
        try:
            return w.result(w.done, None, w.patch(w.change.patch))
        except ApiError as exc:
            # The spec lists both 400 and 409 for a PATCH whose `test` fails; either way, read and decide.
            if exc.status not in (400, 409) or not any(op["op"] == "test" for op in w.change.patch):
                raise
            return _after_rejected_patch(w, exc)
    except ApiError as exc:
        return w.result("failed", str(exc), denied=exc.status in (401, 403) and exc.method != "GET")
    except Cancelled:  # a read or write of this change was cut off by Ctrl-C: it may or may not have landed
        return w.result("failed", IN_FLIGHT)
    except Exception as exc:  # a bug must not lose the accounting of the other changes
        return w.result("failed", f"internal error: {type(exc).__name__}: {exc}")


def _create(w: _Write) -> ChangeResult:
    """POST, then set what a POST does not take. Refused as existing (409; 400 in the API overview's example):
    read the key; archived (a resource that archives) → restored and updated to the definition; equal → already
    applied; else failed, nothing overwritten."""
    assert w.change.body is not None and w.change.after is not None
    after = w.change.after
    try:
        rep, recovered = w.api.create_item(w.resource, w.project, w.change.body)
    except ApiError as exc:
        # The key exists though the plan did not see it: an archived item the list leaves out (LaunchDarkly
        # may hide archived metrics from it), or one created meanwhile (another apply).
        if exc.status not in (400, 409) or (existing := w.find()) is None:
            raise
        fields, patch = diff(after, existing, w.resource)
        if w.resource.retire == "archive" and w.resource.canonical(existing).get("archived"):
            return w.result("restored", "it was archived in LaunchDarkly; restored and updated to the definition",
                            w.patch(patch), fields)
        if not fields:
            return w.result("created", "already applied")
        return w.stale(f"was created in LaunchDarkly since the plan, differently "
                       f"({', '.join(f.field for f in fields)}); nothing was overwritten")
    # What a POST does not set (LaunchDarkly sets a metric's maintainer only after create, as its Terraform
    # provider found): a PATCH guarded by the values the create answered with.
    now = w.resource.canonical(rep)
    later = [FieldChange(f, now.get(f), after[f]) for f in w.resource.set_after_create
             if f in after and now.get(f) != after[f]]
    note = "found created after an unclear answer" if recovered else None
    if later:
        try:
            rep = w.patch(guarded_patch(rep, later, w.resource))
        except Cancelled:  # created all the same: say what is missing (a refused PATCH stays a failure)
            return w.result("created", f"{', '.join(f.field for f in later)} not set (interrupted); run apply again")
    return w.result("created", note, rep)


def _after_rejected_patch(w: _Write, error: ApiError) -> ChangeResult:
    """A guarded patch was refused: gone → failed; as planned → already applied (an earlier attempt landed);
    moved → failed; unchanged → failed, or sent once more without its guard for a resource with
    `unguarded_retry` (A24)."""
    rep = w.find()
    if rep is None:
        return w.stale("no longer exists in LaunchDarkly")
    now, planned = w.resource.canonical(rep), w.change.after or {}
    if all(now.get(f.field) == planned.get(f.field) for f in w.change.fields):
        return w.result(w.done, "already applied")
    moved = [f.field for f in w.change.fields if now.get(f.field) != f.before]
    if not moved and w.resource.unguarded_retry and rep.get("_version") == w.change.remote_version:
        # Exactly as planned against: the refusal was the guard's own (A24); the sets are sent once more.
        try:
            rep = w.patch([op for op in w.change.patch if op["op"] != "test"])
        except ApiError:
            return w.result("failed", str(error))
        return w.result(w.done, "sent without its guard, after a read showed the group as planned against", rep)
    if moved or w.resource.unguarded_retry:
        return w.stale(f"was changed in LaunchDarkly since the plan ({', '.join(moved) or 'a newer version'}); "
                       "nothing was overwritten")
    return w.result("failed", str(error))


def _taken(finished: queue.SimpleQueue[Future[ChangeResult]], timeout: float) -> list[Future[ChangeResult]]:
    """The changes done by now: waits up to `timeout` for the first, then takes those already there."""
    try:
        taken = [finished.get(timeout=timeout)]
    except queue.Empty:
        return []
    while True:
        try:
            taken.append(finished.get_nowait())
        except queue.Empty:
            return taken


def apply_plan(plan: Plan, api: ItemsApi, *, parallelism: int = 4, progress: Progress | None = None,
               on_result: Callable[[ChangeResult], None] | None = None, cancel: CancelSignal = NEVER,
               comment: str | None = None) -> ApplyResult:
    """Apply every change; `comment` goes to LaunchDarkly's audit log. `on_result` hears of each change as it
    completes (in the calling thread), `progress(done, total)` every fraction of a second. A permission error on
    a write stops new changes too (not an interrupt: the rest would fail the same way)."""
    work = plan.changes
    results: dict[int, ChangeResult] = {}
    denied: list[str] = []
    not_created: set[tuple[str, str, str]] = set()  # (resource, project, key) of creates that did not happen

    def record(index: int, result: ChangeResult) -> None:
        results[index] = result
        if result.action == "create" and result.outcome not in ("created", "restored"):
            not_created.add((result.resource, result.project, result.key))
        if on_result:
            on_result(result)

    def why_not(index: int) -> str | None:
        """Why a change must not start: a permission error, a cancel, or a metric it names (a group's `metrics`)
        that this apply was to create and did not."""
        project, change = work[index]
        missing = [m["key"] for m in (change.after or {}).get("metrics") or []
                   if (METRIC.kind, project, m["key"]) in not_created]
        if denied or cancel.is_set():
            return "stopped after a permission error" if denied else "apply was interrupted"
        return f"metric {', '.join(missing)} it names was not created" if missing else None

    def run(index: int) -> ChangeResult:
        w, why = _Write(api, *work[index], comment), why_not(index)
        if why is not None:
            return w.result("skipped", f"not started: {why}")
        result = _carry_out(w, plan.ownership_tag)
        if result.denied:
            denied.append(result.message or "")
        return result

    pool = ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="apply")
    try:
        for phase in range(len(PHASES)):
            pending: dict[Future[ChangeResult], int] = {}
            # Each change says when it is done (a queue), so taking one costs the same with 10 or 10,000 queued:
            # `wait` on all of them would register with every pending future at each completion, and that work in
            # this thread holds the GIL the writers need.
            done: queue.SimpleQueue[Future[ChangeResult]] = queue.SimpleQueue()
            for i in (i for i, (_, change) in enumerate(work) if phase_of(change) == phase):
                if why_not(i) is None:
                    future = pool.submit(run, i)
                    pending[future] = i
                    future.add_done_callback(done.put)
                else:
                    record(i, run(i))  # reported as not started, at once
            while pending and not cancel.is_set():
                for future in _taken(done, timeout=0.2):
                    if future in pending:  # not one cancelled below, already reported
                        record(pending.pop(future), future.result())
                if progress:
                    progress(len(results), len(work))
            if not pending:
                continue
            # Cancelled: what is queued never starts; what is in flight gets the grace (the client's session ends
            # its requests by then) and SLACK, and is reported as such if still running after that.
            for future in [f for f in pending if f.cancel()]:
                record(i := pending.pop(future), run(i))  # reported as not started
            grace = cancel.deadline(math.inf) + SLACK - time.monotonic()
            finished, late = wait(pending, timeout=max(0.0, grace))
            for future in finished:
                record(pending.pop(future), future.result())
            for future in late:
                record(i := pending.pop(future), _Write(api, *work[i], comment).result("failed", IN_FLIGHT))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return ApplyResult([results[i] for i in range(len(work))], interrupted=cancel.is_set(),
                       stopped=denied[0] if denied else None)
