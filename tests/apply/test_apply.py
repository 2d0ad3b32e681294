"""apply_plan: per-change outcomes, safe retries, read-back, interruption."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from metrics_sync.apply.executor import apply_plan
from metrics_sync.apply.saved_plan import differences
from metrics_sync.core.fields import Resource
from metrics_sync.core.model import Plan
from metrics_sync.core.resources import METRIC
from metrics_sync.definitions.load import load_definitions
from metrics_sync.emulator import EmulatorApp, Store
from metrics_sync.planning.planner import PlanOptions, plan
from tests.conftest import ROOT, TOKEN, make_client

TAG = "managed-by-metrics-sync"


def example_plan(store: Store) -> Plan:
    definitions, _ = load_definitions([str(ROOT / "examples" / "metrics")])
    remote = {"shop": make_client(EmulatorApp(store, token=TOKEN)).list_items(METRIC, "shop")}
    return plan(definitions.metrics, remote, PlanOptions(ownership_tag=TAG))


class LoseFirstAnswer(httpx.BaseTransport):
    """The write reaches the server, but its answer is lost (a 502 from a proxy) — the ambiguous case."""

    def __init__(self, app: EmulatorApp, method: str) -> None:
        self.inner, self.method, self.lost = httpx.WSGITransport(app=app), method, False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == self.method and not self.lost:
            self.lost = True
            return httpx.Response(502, text="bad gateway")
        return response


def test_a_create_whose_answer_was_lost_is_not_duplicated() -> None:
    store = Store(["shop"])
    client = make_client(None, transport=LoseFirstAnswer(EmulatorApp(store, token=TOKEN), "POST"))
    result = apply_plan(example_plan(store), client, parallelism=1)
    assert result.count("created") == 8 and not result.failed
    notes = [r.message for r in result.results if r.message]
    assert notes == ["found created after an unclear answer"]
    assert len(store.snapshot_metrics("shop")) == 8


def test_an_update_whose_answer_was_lost_counts_once() -> None:
    store = Store(["shop"])
    apply_plan(example_plan(store), make_client(EmulatorApp(store, token=TOKEN)))
    store.patch("shop", "order-value", [{"op": "replace", "path": "/unit", "value": "EUR"}])
    version_before = store.get("shop", "order-value")["_version"]
    client = make_client(None, transport=LoseFirstAnswer(EmulatorApp(store, token=TOKEN), "PATCH"))
    result = apply_plan(example_plan(store), client)
    assert [(r.key, r.outcome, r.message) for r in result.results] == [("order-value", "updated", "already applied")]
    after = store.get("shop", "order-value")
    assert after["unit"] == "USD" and after["_version"] == version_before + 1  # applied exactly once


def test_fields_launchdarkly_did_not_keep_are_reported() -> None:
    class DropsDescription(httpx.BaseTransport):
        def __init__(self, app: EmulatorApp) -> None:
            self.inner = httpx.WSGITransport(app=app)

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST":
                body = json.loads(request.content)
                body.pop("description", None)  # as if the API ignored it
                request = httpx.Request("POST", request.url, headers=request.headers, json=body)
            return self.inner.handle_request(request)

    store = Store(["shop"])
    definitions, _ = load_definitions([str(ROOT / "tests" / "fixtures" / "apply" / "maintained.yaml")])
    the_plan = plan(definitions.metrics, {"shop": []}, PlanOptions(ownership_tag=TAG))
    result = apply_plan(the_plan, make_client(None, transport=DropsDescription(EmulatorApp(store, token=TOKEN))))
    assert result.results[0].outcome == "created"
    assert result.results[0].not_kept == ("description",)


def test_stop_lets_running_changes_finish_and_skips_the_rest() -> None:
    store = Store(["shop"])
    the_plan = example_plan(store)
    stop = threading.Event()
    real = make_client(EmulatorApp(store, token=TOKEN))

    class StopsAfterFirst:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def create_item(self, resource: Resource, project: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
            stop.set()  # SIGINT arrives while the first create is in flight
            return real.create_item(resource, project, body)

    result = apply_plan(the_plan, StopsAfterFirst(), parallelism=1, stop=stop)
    assert result.interrupted and result.failed
    assert result.count("created") == 1 and result.count("skipped") == 7
    assert len(store.snapshot_metrics("shop")) == 1


def test_saved_plan_differences_name_what_moved_since() -> None:
    store = Store(["shop"])
    apply_plan(example_plan(store), make_client(EmulatorApp(store, token=TOKEN)))
    store.patch("shop", "order-value", [{"op": "replace", "path": "/unit", "value": "EUR"}])
    store.patch("shop", "order-placed", [{"op": "replace", "path": "/name", "value": "X"}])
    the_plan = example_plan(store)
    store.patch("shop", "order-value", [{"op": "replace", "path": "/unit", "value": "GBP"}])
    store.patch("shop", "order-placed", [{"op": "replace", "path": "/archived", "value": True}])
    store.delete("shop", "order-placed")
    assert differences(the_plan, example_plan(store)) == [
        "metric order-placed was deleted from LaunchDarkly since the plan",
        "metric order-value changed since the plan (version 2 → 3)",
    ]
