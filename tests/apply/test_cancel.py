"""A cancelled apply starts no new change, gives the changes in flight a bounded grace, and says what was done
and what was not. A fake LaunchDarkly whose writes block until the test releases them stands for a slow one;
times are measured with the real clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from metrics_sync.apply import executor
from metrics_sync.apply.executor import IN_FLIGHT, apply_plan
from metrics_sync.core import cancel as cancel_module
from metrics_sync.core.cancel import CancelSignal
from metrics_sync.core.fields import Resource
from metrics_sync.core.model import ApplyResult, Change, FieldChange, Plan, ProjectPlan
from metrics_sync.core.resources import METRIC, METRIC_GROUP
from metrics_sync.output import results

TAG = "managed-by-metrics-sync"
GRACE, SLACK = 0.6, 0.2  # shortened, so that the tests are quick


class BlockingApi:
    """Every create blocks until `release` is set; `started` counts the creates that began."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started: list[str] = []
        self.lock = threading.Lock()

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 10
        while len(self.started) < count:
            assert time.monotonic() < deadline, "apply started no change"
            time.sleep(0.005)

    def create_item(self, resource: Resource, project: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        with self.lock:
            self.started.append(body["key"])
        assert self.release.wait(30), "never released"
        return {**body, "_version": 1}, False

    def find_item(self, resource: Resource, project: str, key: str) -> dict[str, Any] | None:
        raise AssertionError("not called")

    def patch_item(self, resource: Resource, project: str, key: str, operations: list[dict[str, Any]], *,
                   comment: str | None = None) -> dict[str, Any]:
        raise AssertionError("not called")

    def delete_item(self, resource: Resource, project: str, key: str) -> bool:
        raise AssertionError("not called")


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[BlockingApi]:
    monkeypatch.setattr(cancel_module, "GRACE", GRACE)
    monkeypatch.setattr(executor, "SLACK", SLACK)
    fake = BlockingApi()
    yield fake
    fake.release.set()  # the workers apply gave up on end


def creates(metrics: int) -> Plan:
    changes = []
    for i in range(metrics):
        after = METRIC.canonical({"key": f"m{i}", "name": f"M{i}", "kind": "custom", "eventKey": "e"})
        changes.append(Change("create", f"m{i}", "t", None, after, [FieldChange("name", None, f"M{i}")], [],
                              body=METRIC.post_body(f"m{i}", after)))
    group = METRIC_GROUP.canonical({"name": "G", "kind": "standard", "tags": [], "maintainerId": "me",
                                    "metrics": [{"key": "m0"}, {"key": "m1"}]})
    changes.append(Change("create", "g", "t", None, group, [FieldChange("name", None, "G")], [],
                          body=METRIC_GROUP.post_body("g", group), resource="metric-group"))
    return Plan([ProjectPlan("shop", "sha256:" + "0" * 64, changes, 0, 0, [], [], [])], False, TAG, "", "")


def run_in_thread(plan: Plan, api: BlockingApi, cancel: CancelSignal) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append((apply_plan(plan, api, parallelism=2, cancel=cancel),
                                                         time.monotonic())))
    thread.start()
    return thread, out


def outcomes(result: ApplyResult) -> list[tuple[str, str, str | None]]:
    return [(r.key, r.outcome, r.message) for r in result.results]


def test_a_cancel_starts_nothing_new_and_reports_what_was_done_and_what_was_not(api: BlockingApi) -> None:
    cancel = CancelSignal()
    thread, out = run_in_thread(creates(6), api, cancel)
    api.wait_for(2)  # two creates in flight (parallelism 2), four metrics and the group not started
    cancel.set()
    time.sleep(0.1)
    api.release.set()  # the two in flight end within the grace
    thread.join(5)
    result: ApplyResult = out[0][0]
    assert result.interrupted and result.failed and result.stopped is None
    done = [key for key, outcome, _ in outcomes(result) if outcome == "created"]
    assert sorted(done) == sorted(api.started) and len(done) == 2
    assert [(k, o, m) for k, o, m in outcomes(result) if k not in done] == [
        (k, "skipped", "not started: apply was interrupted") for k in ("m0", "m1", "m2", "m3", "m4", "m5", "g")
        if k not in done]
    assert results.apply_summary(result) == \
        "Apply interrupted: 2 created, 0 updated, 0 archived, 0 failed, 5 not started."


def test_changes_still_in_flight_after_the_grace_are_reported_and_apply_returns(api: BlockingApi) -> None:
    cancel = CancelSignal()
    thread, out = run_in_thread(creates(6), api, cancel)
    api.wait_for(2)
    cancel.set()
    cancelled_at = time.monotonic()
    thread.join(10)  # never released: LaunchDarkly (or the network) does not answer
    assert not thread.is_alive()
    result, returned_at = out[0]
    # It waited the grace for the writes in flight, and not much longer.
    assert GRACE <= returned_at - cancelled_at <= GRACE + SLACK + 0.5
    in_flight = [(k, o, m) for k, o, m in outcomes(result) if k in api.started]
    assert in_flight == [(k, "failed", IN_FLIGHT) for k in sorted(api.started, key=lambda k: int(k[1:]))]
    assert [o for _, o, _ in outcomes(result)].count("skipped") == 5
    assert len(api.started) == 2  # nothing else was started, even after the grace
    assert results.apply_summary(result) == \
        "Apply interrupted: 0 created, 0 updated, 0 archived, 2 failed, 5 not started."


def test_a_run_cancelled_before_it_starts_sends_nothing(api: BlockingApi) -> None:
    cancel = CancelSignal()
    cancel.set()
    started = time.monotonic()
    result = apply_plan(creates(3), api, cancel=cancel)
    assert time.monotonic() - started < 0.5
    assert api.started == [] and result.interrupted
    assert {(o, m) for _, o, m in outcomes(result)} == {("skipped", "not started: apply was interrupted")}


def test_a_run_never_cancelled_is_not_interrupted(api: BlockingApi) -> None:
    api.release.set()
    result = apply_plan(creates(3), api)
    assert not result.interrupted and not result.failed and result.count("created") == 4
