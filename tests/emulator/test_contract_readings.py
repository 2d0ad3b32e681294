"""metrics-sync keeps its promises under every reading of LaunchDarkly's contract (docs/launchdarkly-contract.md):
apply, then plan, is clean; an edit made in LaunchDarkly meanwhile is never overwritten; prune never archives a
metric a running experiment or guarded rollout uses; an archived metric the list hides is restored in one apply."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from metrics_sync.emulator.readings import Readings, every_reading
from tests.conftest import TOKEN, Shop

READINGS = every_reading()
OTHER_MEMBER = "6b1fdeadbeef1644facecafe"


def _id(readings: Readings) -> str:
    changed = [f"{k}={v}" for k, v in vars(readings).items() if v != getattr(Readings(), k)]
    return ",".join(changed) or "defaults"


@pytest.fixture(params=READINGS, ids=_id)
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Shop:
    return Shop(tmp_path / "repo", request.param)


def test_apply_then_plan_is_clean_with_a_maintainer_set(shop: Shop) -> None:
    shop.edit_yaml("checkout.yaml", "  analysisUnits: [user]\n",
                   f"  analysisUnits: [user]\n  maintainerId: {OTHER_MEMBER}\n")
    applied = shop.run("apply", "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    assert "did not keep" not in applied.out
    again = shop.run("plan", "--detailed-exitcode")
    assert (again.code, again.out.splitlines()[-1]) == (0, "No changes. 8 metrics and 2 metric groups match the "
                                                           "definitions.")
    assert shop.store.get("shop", "order-value")["maintainerId"] == OTHER_MEMBER
    # The POST never carries the maintainer: the five metrics of checkout.yaml get it by a guarded PATCH (one
    # more PATCH when LaunchDarkly refuses the comment wrapper once, and the bare patch follows).
    posted = shop.app.stats.requests["POST /api/v2/metrics/{projectKey}"]
    patched = shop.app.stats.route_statuses["PATCH /api/v2/metrics/{projectKey}/{metricKey} 200"]
    assert (posted, patched) == (8, 5)


class EditBeforeFirstPatch(httpx.BaseTransport):
    """Simulates a UI edit that lands between apply's read and its PATCH."""

    def __init__(self, shop: Shop, edit: Callable[[], None]) -> None:
        self.inner, self.edit, self.done = shop.transport, edit, False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH" and not self.done:
            self.done = True
            self.edit()
        return self.inner.handle_request(request)


def test_a_concurrent_edit_is_never_overwritten(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.edit_yaml("checkout.yaml", "unit: USD", "unit: EUR")
    shop.transport = EditBeforeFirstPatch(shop, lambda: shop.ui_edit(
        "order-value", [{"op": "replace", "path": "/unit", "value": "GBP"}]))
    result = shop.run("apply", "--auto-approve")
    assert result.code == 1
    assert ("  ! failed order-value (metrics/checkout.yaml:33:5): metric order-value was changed in LaunchDarkly "
            "since the plan (unit); "
            "nothing was overwritten; run plan again") in result.out
    assert result.out.endswith("Apply complete: 0 created, 0 updated, 0 archived, 1 failed.\n")
    assert shop.store.get("shop", "order-value")["unit"] == "GBP"


def _seed_connected(shop: Shop) -> None:
    """Three managed metrics that left the definitions: one in a running experiment, one guarding a rollout,
    one used only by a finished experiment."""
    base = {"kind": "custom", "isNumeric": False, "tags": ["managed-by-metrics-sync"]}
    shop.store.seed({"projects": {"shop": [
        {**base, "key": "in-running-experiment", "name": "R", "eventKey": "r", "experimentCount": 1,
         "activeExperimentCount": 1, "experiments": [{"key": "checkout-test", "name": "Checkout test",
                                                      "environmentKey": "production", "environmentId": "e",
                                                      "creationDate": 1, "_links": {}}]},
        {**base, "key": "guarding-rollout", "name": "G", "eventKey": "g", "activeGuardedRolloutCount": 1},
        {**base, "key": "finished-experiment", "name": "F", "eventKey": "f", "experimentCount": 2,
         "activeExperimentCount": 0},
    ]}})


def test_prune_never_archives_a_metric_in_use(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    _seed_connected(shop)
    reads_before = shop.app.stats.requests["GET /api/v2/metrics/{projectKey}/{metricKey}"]
    pruned = shop.run("apply", "--prune", "--auto-approve")
    assert "  Blocked from archiving: in-running-experiment (used by 1 running experiment)\n" in pruned.out
    assert "  Blocked from archiving: guarding-rollout (used by 1 running guarded rollout)\n" in pruned.out
    assert "  - archive finished-experiment (custom conversion binary)\n" in pruned.out
    assert shop.store.get("shop", "in-running-experiment")["archived"] is False
    assert shop.store.get("shop", "guarding-rollout")["archived"] is False
    assert shop.store.get("shop", "finished-experiment")["archived"] is True
    # Only the three candidates were read one by one; an in-sync plan reads nothing one by one.
    assert shop.app.stats.requests["GET /api/v2/metrics/{projectKey}/{metricKey}"] - reads_before == 3
    reads_before = shop.app.stats.requests["GET /api/v2/metrics/{projectKey}/{metricKey}"]
    shop.store.seed({"projects": {}})
    shop.edit_yaml("checkout.yaml", "name: Order value", "name: Order value")
    assert shop.run("plan").code == 0
    assert shop.app.stats.requests["GET /api/v2/metrics/{projectKey}/{metricKey}"] - reads_before == 2  # blocked ones


def test_an_archived_metric_the_definitions_keep_is_restored_in_one_apply(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.ui_edit("order-placed", [{"op": "replace", "path": "/archived", "value": True},
                                  {"op": "replace", "path": "/name", "value": "Old name"}])
    hidden = shop.store.readings.archived_in_list == "hidden"
    planned = shop.run("plan", "--detailed-exitcode")
    assert planned.code == 2
    assert ("  + create order-placed" if hidden else "  ~ restore order-placed") in planned.out
    applied = shop.run("apply", "--auto-approve")
    assert applied.code == 0, applied.out
    assert "  ~ restored order-placed" in applied.out
    assert shop.store.get("shop", "order-placed")["archived"] is False
    assert shop.store.get("shop", "order-placed")["name"] == "Order placed"
    assert shop.run("plan", "--detailed-exitcode").code == 0


def test_a_create_that_meets_an_equal_metric_counts_as_already_applied(shop: Shop) -> None:
    shop.run("plan", "--out", "plan.json")
    assert shop.run("apply", "--auto-approve").code == 0  # another apply got there first
    late = shop.run("apply", "--plan", "plan.json")
    assert late.code == 1 and "plan is stale: metric add-to-cart-count was created" in late.err
    # Without a saved plan the race is between reading and creating:
    shop2 = Shop(shop.root.parent / "second", shop.store.readings)
    racing = _CreateFirst(shop2)
    shop2.transport = racing
    result = shop2.run("apply", "--auto-approve")
    assert result.code == 0, result.out
    assert "  + created add-to-cart-count (already applied)" in result.out


class _CreateFirst(httpx.BaseTransport):
    """Another apply creates the same metric just before this one's POST."""

    def __init__(self, shop: Shop) -> None:
        self.inner, self.shop, self.done = shop.transport, shop, False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and not self.done:
            self.done = True
            body = json.loads(request.content)
            self.shop.store.create("shop", body)
        return self.inner.handle_request(request)


def test_audit_comment_reaches_the_audit_log_when_accepted(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.edit_yaml("checkout.yaml", "name: Order value", "name: Order value (USD)")
    env = {"GITHUB_SHA": "0123456789abcdef0123", "GITHUB_REPOSITORY": "shop/web", "GITHUB_REF": "refs/pull/42/merge"}
    assert shop.run("apply", "--auto-approve", env=env).code == 0
    comments = [entry["comment"] for entry in shop.app.audit]
    if shop.store.readings.comment_wrapper == "accepted":
        assert comments == ["metrics-sync apply (commit 0123456789ab of shop/web, pull request #42)"]
    else:
        assert comments == []
    assert shop.store.get("shop", "order-value")["name"] == "Order value (USD)"
    shop.edit_yaml("checkout.yaml", "name: Order value (USD)", "name: Order value")
    assert shop.run("apply", "--auto-approve", "--comment", "revert \x1b[31mname\x07").code == 0
    if shop.store.readings.comment_wrapper == "accepted":
        assert shop.app.audit[-1]["comment"] == "revert [31mname"  # control characters dropped


def test_doctor_observes_each_reading(shop: Shop) -> None:
    result = shop.run("doctor", "--project", "shop", "--write")
    assert result.code == 0, result.out
    report = json.loads((shop.root / "metrics-sync-doctor.json").read_text())
    assert TOKEN not in (shop.root / "metrics-sync-doctor.json").read_text()
    readings = {c["id"]: c["reading"] for c in report["checks"] if c["reading"] is not None}
    r = shop.store.readings
    assert readings["A4"] == r.archived_in_list
    assert readings["A8"] == str(r.failed_test_status)
    assert readings["A7"] == r.maintainer_on_create
    assert readings["A10"] == r.comment_wrapper
    assert readings["A9"] == "accepted"
    assert readings["A6"] == r.archive_before_delete
    assert readings["A41"] == "total_count"
    second = "deleted without an archive first" if r.archive_before_delete == "not_required" else \
        "was archived, then deleted"
    assert report["ok"] is True and "was archived, then deleted; " in report["cleanup"]
    assert report["cleanup"].endswith(second)
    assert shop.store.snapshot_metrics("shop") == []  # the throw-away metrics are gone, nothing else touched


def test_a_blocked_prune_names_what_uses_the_metric(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    _seed_connected(shop)
    reads_before = shop.app.stats.requests["GET /api/v2/metrics/{projectKey}/{metricKey}"]
    text = shop.run("plan", "--prune")
    assert ("  Blocked from archiving: in-running-experiment (used by 1 running experiment)\n"
            "      used by experiment `checkout-test` (production, running)\n") in text.out
    # LaunchDarkly counted the guarded rollout without naming it: the count says what is known.
    assert "  Blocked from archiving: guarding-rollout (used by 1 running guarded rollout)\n" in text.out
    # Named from the read that found it blocked: no request of its own.
    assert shop.app.stats.requests["GET /api/v2/metrics/{projectKey}/{metricKey}"] - reads_before == 3
    blocked = {b["key"]: b for b in json.loads(shop.run("plan", "--prune", "--format", "json").out)["projects"][0]
               ["blocked"]}
    assert blocked["in-running-experiment"]["usedBy"] == [
        {"kind": "experiment", "key": "checkout-test", "name": "Checkout test", "environment": "production",
         "running": True, "via": None}]
    markdown = shop.run("plan", "--prune", "--format", "markdown").out
    assert ("! blocked from archiving: in-running-experiment (used by 1 running experiment)\n"
            "!     used by experiment `checkout-test` (production, running)\n") in markdown
