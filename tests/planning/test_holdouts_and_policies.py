"""Holdouts and release policies use metrics too (docs/launchdarkly-contract.md, A40-A45): prune does not archive a
metric (or delete a group) one of them uses, naming it; an update names them, alerts when one is running (in
force), and `protectRunningExperiments` refuses it. They are read only when a change or prune needs them. The
key tests run under every reading of the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from metrics_sync.emulator.readings import Readings, every_reading
from tests.conftest import Answering, Shop

READINGS = every_reading()
PRODUCT_PAGE_VIEWS = """  # Page viewed conversion count: how many product pages a user views.
  - key: product-page-views
    name: Product page views
    kind: pageview
    unitAggregationType: sum
    urls:
      - kind: regex
        pattern: ^https://shop\\.example\\.com/products/[a-z0-9-]+$

"""
ORDER_VALUE_EVENT = ("    eventKey: order-placed\n    isNumeric: true",
                     "    eventKey: order-completed\n    isNumeric: true")
HOLDOUT = {"key": "q3-holdout", "name": "Q3 holdout", "environmentKey": "production", "status": "running",
           "metrics": ["product-page-views", "order-value"], "analysisUnits": {"order-value": "user"}}
POLICY = {"key": "guarded-checkout", "name": "Guarded checkout", "releaseMethod": "guarded-release",
          "environmentKeys": ["production", "staging"], "metrics": ["product-page-views", "order-value"],
          "metricGroups": ["checkout-guardrails"]}
HOLDER_ROUTES = ("/environments", "/holdouts", "/release-policies")


def _id(readings: Readings) -> str:
    changed = [f"{k}={v}" for k, v in vars(readings).items() if v != getattr(Readings(), k)]
    return ",".join(changed) or "defaults"


def _shop(root: Path, readings: Readings | None = None, **seed: Any) -> Shop:
    shop = Shop(root, readings)
    assert shop.run("apply", "--auto-approve").code == 0
    shop.store.seed({"environments": {"shop": ["production", "staging"]}, **seed})
    return shop


def _holder_calls(shop: Shop) -> int:
    return sum(n for route, n in shop.app.stats.requests.items() if any(r in route for r in HOLDER_ROUTES))


def _drop_product_page_views(shop: Shop) -> None:
    shop.edit_yaml("storefront.yaml", PRODUCT_PAGE_VIEWS, "")


@pytest.mark.parametrize("readings", READINGS, ids=_id)
def test_prune_does_not_archive_a_metric_only_a_running_holdout_uses(tmp_path: Path, readings: Readings) -> None:
    shop = _shop(tmp_path / "repo", readings, holdouts={"shop": [HOLDOUT]})
    _drop_product_page_views(shop)
    pruned = shop.run("apply", "--prune", "--auto-approve")
    assert pruned.code == 1, pruned.out  # asked to archive, and it cannot: CI notices
    # When LaunchDarkly lists the holdout's base experiment among the metric's experiments (A41), it is counted
    # there too.
    base = "used by 1 running experiment; " if readings.holdout_in_experiments == "listed" else ""
    assert (f"  Blocked from archiving: product-page-views ({base}used by holdout `q3-holdout` (production, "
            "running))\n") in pruned.out
    assert shop.store.get("shop", "product-page-views")["archived"] is False
    # Once the holdout has stopped, the archive goes through (it keeps the holdout's results).
    shop.store.holdouts["shop"]["q3-holdout"]["status"] = "stopped"
    shop.store._usage.clear()
    again = shop.run("apply", "--prune", "--auto-approve")
    assert again.code == 0, again.out
    assert shop.store.get("shop", "product-page-views")["archived"] is True


@pytest.mark.parametrize("readings", READINGS, ids=_id)
def test_prune_does_not_archive_a_metric_only_a_release_policy_names(tmp_path: Path, readings: Readings) -> None:
    shop = _shop(tmp_path / "repo", readings, releasePolicies={"shop": [POLICY]})
    _drop_product_page_views(shop)
    pruned = shop.run("apply", "--prune", "--auto-approve")
    assert pruned.code == 1, pruned.out  # asked to archive, and it cannot: CI notices
    assert ("  Blocked from archiving: product-page-views (used by release policy `guarded-checkout` (production, "
            "staging, in force for new guarded releases))\n") in pruned.out
    assert shop.store.get("shop", "product-page-views")["archived"] is False
    # A policy that is not a guarded release still names the metric: still blocked (LaunchDarkly may refuse, A43).
    shop.store.policies["shop"][0]["releaseMethod"] = "progressive-release"
    assert "used by release policy `guarded-checkout` (production, staging, not a guarded-release policy)" in \
        shop.run("plan", "--prune").out


@pytest.mark.parametrize("readings", READINGS, ids=_id)
def test_a_group_a_release_policy_names_is_not_deleted(tmp_path: Path, readings: Readings) -> None:
    shop = _shop(tmp_path / "repo", readings, releasePolicies={"shop": [POLICY]})
    checkout = shop.root / "metrics" / "checkout.yaml"
    text = checkout.read_text()
    checkout.write_text(text[:text.index("  # A standard group")])
    pruned = shop.run("apply", "--prune", "--auto-approve")
    assert pruned.code == 1, pruned.out  # asked to archive, and it cannot: CI notices
    assert ("  Blocked from deleting: metric group checkout-guardrails (used by release policy `guarded-checkout` "
            "(production, staging, in force for new guarded releases))\n") in pruned.out
    assert shop.store.get_group("shop", "checkout-guardrails")["key"] == "checkout-guardrails"


@pytest.mark.parametrize("readings", READINGS, ids=_id)
def test_an_update_names_holdouts_and_policies_and_alerts(tmp_path: Path, readings: Readings) -> None:
    shop = _shop(tmp_path / "repo", readings, holdouts={"shop": [HOLDOUT]}, releasePolicies={"shop": [POLICY]})
    shop.edit_yaml("checkout.yaml", *ORDER_VALUE_EVENT)
    plan = shop.run("plan", "--detailed-exitcode")
    assert plan.code == 2, plan.out
    assert "      used by holdout `q3-holdout` (production, running, analysed by `user`)\n" in plan.out
    assert ("      used by release policy `guarded-checkout` (production, staging, in force for new guarded "
            "releases)\n") in plan.out
    assert plan.out.count("q3-holdout") == 2  # named once as a user, once in the alert, whatever the reading
    assert ("WARNING: changing `eventKey` of metric `order-value` changes the results of holdout `q3-holdout` "
            "(production, running, analysed by `user`), release policy `guarded-checkout`") in plan.out
    refused = shop.run("apply", "--auto-approve", "--protect-running")
    assert refused.code == 1
    assert "refused because protectRunningExperiments is on" in refused.out + refused.err
    assert shop.store.get("shop", "order-value")["eventKey"] == "order-placed"


def test_a_metric_through_a_group_a_policy_names_is_named_through_it(tmp_path: Path) -> None:
    shop = _shop(tmp_path / "repo", releasePolicies={"shop": [POLICY]})
    shop.edit_yaml("checkout.yaml", "    eventKey: payment-failed\n", "    eventKey: payment-error\n")
    plan = shop.run("plan").out
    assert ("      used by release policy `guarded-checkout` (production, staging, in force for new guarded releases, "
            "through metric group `checkout-guardrails`)\n") in plan


def test_stopped_holdouts_and_other_policies_are_named_without_an_alert(tmp_path: Path) -> None:
    policy = {**POLICY, "releaseMethod": "progressive-release"}
    shop = _shop(tmp_path / "repo", holdouts={"shop": [{**HOLDOUT, "status": "stopped"}]},
                 releasePolicies={"shop": [policy]})
    shop.edit_yaml("checkout.yaml", *ORDER_VALUE_EVENT)
    plan = shop.run("plan")
    assert "      used by holdout `q3-holdout` (production, not running, analysed by `user`)\n" in plan.out
    assert "not a guarded-release policy" in plan.out
    assert "WARNING" not in plan.out
    assert shop.run("plan", "--protect-running").code == 0


def test_json_and_markdown_name_them(tmp_path: Path) -> None:
    shop = _shop(tmp_path / "repo", holdouts={"shop": [HOLDOUT]}, releasePolicies={"shop": [POLICY]})
    shop.edit_yaml("checkout.yaml", *ORDER_VALUE_EVENT)
    data = json.loads(shop.run("plan", "--format", "json").out)
    used = data["projects"][0]["changes"][0]["usedBy"]
    assert {"kind": "holdout", "key": "q3-holdout", "name": "Q3 holdout", "environment": "production",
            "running": True, "via": None, "analysisUnit": "user"} in used
    assert {"kind": "release policy", "key": "guarded-checkout", "name": "Guarded checkout",
            "environment": "production, staging", "running": True, "via": None} in used
    markdown = shop.run("plan", "--format", "markdown").out
    assert ("| update metric `order-value` in `shop` | `eventKey` | holdout `q3-holdout` (production, running, "
            "analysed by `user`); release policy `guarded-checkout` (production, staging, in force for new guarded "
            "releases) |") in markdown
    # A saved plan keeps them.
    assert shop.run("plan", "--out", "plan.json").code == 0
    assert shop.run("apply", "--plan", "plan.json", "--auto-approve").code == 0


def test_they_are_read_only_when_a_change_or_prune_needs_them(tmp_path: Path) -> None:
    shop = _shop(tmp_path / "repo", holdouts={"shop": [HOLDOUT]}, releasePolicies={"shop": [POLICY]})
    assert shop.run("plan", "--prune", "--detailed-exitcode").code == 0
    assert _holder_calls(shop) == 0  # in sync: list calls only
    shop.edit_yaml("checkout.yaml", "name: Order value", "name: Order value (USD)")
    shop.run("plan")
    # release policies, environments, holdouts in production and staging, the one holdout
    assert _holder_calls(shop) == 5


def test_holders_that_cannot_be_read_block_prune_and_warn(tmp_path: Path) -> None:
    shop = _shop(tmp_path / "repo")

    forbidden = httpx.Response(403, json={"code": "forbidden", "message": "Forbidden", "id": "x"})
    shop.transport = Answering(shop.transport, lambda path: path.endswith("/holdouts"), forbidden)
    _drop_product_page_views(shop)
    plan = shop.run("plan", "--prune")
    assert ("  Blocked from archiving: product-page-views (whether holdouts or release policies use it could not "
            "be read (holdouts in production: 403: Forbidden; holdouts in staging: 403: Forbidden))\n") in plan.out
    shop.edit_yaml("checkout.yaml", *ORDER_VALUE_EVENT)
    plan = shop.run("plan", "--protect-running")
    assert "warning: whether holdouts or release policies use metric `order-value` could not be read" in plan.out
    assert plan.code == 0  # not knowing is a warning for an update: an account without holdouts can still plan


@pytest.mark.parametrize("answer", [
    {"items": [{"key": "h", "name": 3}], "total_count": 1},
    {"items": "nope"},
    {"items": [{"key": "../x"}], "total_count": 1},
    {"items": [{"key": "h"}], "total_count": -1},
    {"items": [{"key": "h"}], "total_count": 10 ** 9},
    [1, 2, 3],
])
def test_a_hostile_holdout_list_blocks_prune_without_a_crash(tmp_path: Path, answer: Any) -> None:
    shop = _shop(tmp_path / "repo")

    shop.transport = Answering(shop.transport, lambda path: path.endswith("/holdouts"),
                               httpx.Response(200, json=answer))
    _drop_product_page_views(shop)
    plan = shop.run("plan", "--prune")
    assert plan.code == 0 and "Traceback" not in plan.err
    assert "  Blocked from archiving: product-page-views (whether holdouts or release policies use it could not be " \
           "read (holdouts in production: 200:" in plan.out


@pytest.mark.parametrize("detail", [
    {"status": "running"},  # no base experiment
    {"status": "running", "baseExperiment": {"currentIteration": {"status": "running", "metrics": [{"nokey": 1}]}}},
    {"status": "running", "baseExperiment": {"currentIteration": {"status": 7}}},
    {"status": "running", "baseExperiment": {"currentIteration": {"status": "running",
                                                                  "metrics": [{"key": "m", "metrics": "x"}]}}},
])
def test_a_hostile_holdout_detail_blocks_prune_without_a_crash(tmp_path: Path, detail: Any) -> None:
    shop = _shop(tmp_path / "repo", holdouts={"shop": [HOLDOUT]})

    shop.transport = Answering(shop.transport, lambda path: "/holdouts/" in path, httpx.Response(200, json=detail))
    _drop_product_page_views(shop)
    plan = shop.run("plan", "--prune")
    assert plan.code == 0 and "Traceback" not in plan.err
    assert "(whether holdouts or release policies use it could not be read (holdout q3-holdout: 200: LaunchDarkly " \
           "sent a malformed holdout `q3-holdout`:" in plan.out


def test_a_hostile_policy_list_blocks_prune_without_a_crash(tmp_path: Path) -> None:
    shop = _shop(tmp_path / "repo")

    policies = httpx.Response(200, json={"items": [{"key": "p", "guardedReleaseConfig": {"metricKeys": 5}}],
                                         "totalCount": 1})
    shop.transport = Answering(shop.transport, lambda path: path.endswith("/release-policies"), policies)
    _drop_product_page_views(shop)
    plan = shop.run("plan", "--prune")
    assert plan.code == 0
    assert "release policies: 200: LaunchDarkly sent a malformed release policy `p`: `guardedReleaseConfig` does " \
           "not list metric and metric group keys as text" in plan.out


def test_an_update_that_removes_the_unit_a_running_holdout_analyses_by_alerts(tmp_path: Path) -> None:
    shop = _shop(tmp_path / "repo", experimentationSettings={"shop": ["user", "organization"]},
                 holdouts={"shop": [HOLDOUT]})
    shop.edit_yaml("checkout.yaml", "  analysisUnits: [user]\n", "  analysisUnits: [organization]\n")
    plan = shop.run("plan")
    assert ("WARNING: changing `analysisUnits` of metric `order-value` removes `user`, by which holdout "
            "`q3-holdout` (production, running, analysed by `user`) analyses it") in plan.out
    assert shop.run("plan", "--protect-running").code == 1


def test_a_groups_metric_analysis_unit_is_checked_but_not_compared() -> None:
    from metrics_sync.core.resources import METRIC_GROUP
    from metrics_sync.launchdarkly.wire import problem

    rep = {"key": "g", "name": "G", "kind": "standard", "tags": [], "maintainerId": "569fdeadbeef1644facecafe",
           "metrics": [{"key": "a", "analysisUnit": "organization"}, {"key": "b"}]}
    assert problem(METRIC_GROUP, rep) is None
    desired = {**rep, "metrics": [{"key": "a"}, {"key": "b"}]}
    assert METRIC_GROUP.canonical(rep) == METRIC_GROUP.canonical(desired)  # a change no apply could make
    assert problem(METRIC_GROUP, {**rep, "metrics": [{"key": "a", "analysisUnit": 3}]}) == \
        "a metric's `analysisUnit` is not text"
