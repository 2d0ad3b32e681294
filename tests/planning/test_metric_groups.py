"""Metric groups as code, end to end through the CLI against the emulator: the example shop's funnel and
standard group are created, compared, updated, exported, deleted with --prune, and refused where LaunchDarkly
(or the definitions) cannot have them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from metrics_sync.emulator.readings import Readings
from metrics_sync.emulator.store import TOKEN_MEMBER_ID
from tests.conftest import ENV, Shop, run_cli
from tests.ldspec import validate_request

OTHER_MEMBER = "6b1fdeadbeef1644facecafe"


@pytest.fixture
def shop(tmp_path: Path) -> Shop:
    return Shop(tmp_path / "repo")


class Recording(httpx.BaseTransport):
    """Passes requests on, keeping (method, path, LD-API-Version, body) of each."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner, self.seen = inner, []
        self.seen: list[tuple[str, str, str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.seen.append((request.method, request.url.path, request.headers.get("LD-API-Version", ""), body))
        return self.inner.handle_request(request)


def recorded(shop: Shop) -> Recording:
    recording = Recording(shop.transport)
    shop.transport = recording
    return recording


def groups(shop: Shop) -> dict[str, dict[str, Any]]:
    return {g["key"]: g for g in shop.store.group_records("shop")}


# --- the round trip -------------------------------------------------------------------------------------

def test_a_funnel_and_a_standard_group_round_trip(shop: Shop) -> None:
    assert shop.run("validate").out == "OK: 8 metrics and 2 metric groups in 2 files valid.\n"
    calls = recorded(shop)
    applied = shop.run("apply", "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    assert "  + created metric group checkout-funnel\n" in applied.out
    assert "  + created metric group checkout-guardrails\n" in applied.out
    # The bodies are valid MetricGroupPosts, with the token's member as maintainer (the provider's default),
    # and a standard group's metrics carry an empty nameInGroup, as the provider sends them.
    posts = [body for method, path, _, body in calls.seen if method == "POST" and path.endswith("/metric-groups")]
    for body in posts:
        validate_request("POST", "/api/v2/projects/shop/metric-groups", body)
    assert {b["key"]: b["maintainerId"] for b in posts} == {"checkout-funnel": TOKEN_MEMBER_ID,
                                                            "checkout-guardrails": TOKEN_MEMBER_ID}
    guard = next(b for b in posts if b["key"] == "checkout-guardrails")
    assert guard["metrics"] == [{"key": "payment-failed", "nameInGroup": ""},
                                {"key": "checkout-latency-p95", "nameInGroup": ""}]
    assert guard["tags"] == ["checkout", "managed-by-metrics-sync"]
    funnel = groups(shop)["checkout-funnel"]
    assert [(m["key"], m["nameInGroup"]) for m in funnel["metrics"]] == [
        ("place-order-clicked", "Clicked Place order"), ("order-placed", "Placed the order"),
        ("confirmation-page-viewed", "Saw the confirmation")]
    # Metrics are created before the groups that use them.
    order = [(m, p.rsplit("/", 1)[-1]) for m, p, _, body in calls.seen if m == "POST"]
    assert [kind for _, kind in order][-2:] == ["metric-groups", "metric-groups"]
    again = shop.run("plan", "--detailed-exitcode")
    assert (again.code, again.out) == (0, "Project shop\n  no changes (8 metrics and 2 metric groups in sync)\n\n"
                                          "No changes. 8 metrics and 2 metric groups match the definitions.\n")


def test_group_calls_carry_the_beta_header_and_metric_calls_the_pinned_version(shop: Shop) -> None:
    calls = recorded(shop)
    shop.run("apply", "--auto-approve")
    for method, path, version, _ in calls.seen:
        expected = "beta" if "/metric-groups" in path else "20240415"
        assert version == expected, (method, path, version)


def test_an_in_sync_plan_makes_list_calls_only(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    calls = recorded(shop)
    shop.run("plan")
    assert sorted((m, p) for m, p, _, _ in calls.seen) == [("GET", "/api/v2/metrics/shop"),
                                                           ("GET", "/api/v2/projects/shop/experimentation-settings"),
                                                           ("GET", "/api/v2/projects/shop/metric-groups")]


def test_export_writes_the_groups_and_plans_clean(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    exported = shop.run("export", "--project", "shop", "--out", "exported")
    assert "Exported 8 metric(s) and 2 metric group(s) of project shop to exported/" in exported.out
    text = (shop.root / "exported" / "metric-groups.yaml").read_text()
    assert "metricGroups:\n  - key: checkout-funnel\n    name: Checkout funnel\n" in text
    assert "      - key: payment-failed\n      - key: checkout-latency-p95\n" in text  # no nameInGroup
    plan = shop.run("plan", "exported", "--detailed-exitcode")
    assert plan.code == 0 and plan.out.endswith("No changes. 8 metrics and 2 metric groups match the definitions.\n")
    single = shop.run("export", "--project", "shop", "--out", "-")
    assert single.out.count("metricGroups:") == 1 and "- key: checkout-guardrails" in single.out


# --- updates --------------------------------------------------------------------------------------------

def test_a_changed_group_is_updated_with_a_guarded_patch(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.edit_yaml("checkout.yaml", "      - key: checkout-latency-p95\n",
                   "      - key: checkout-latency-p95\n      - key: order-value\n")
    shop.edit_yaml("checkout.yaml", "nameInGroup: Placed the order", "nameInGroup: Ordered")
    plan = shop.run("plan")
    assert ("  ~ update checkout-funnel (funnel metric group)\n"
            "      metrics: [1].nameInGroup: \"Placed the order\" → \"Ordered\"\n") in plan.out
    assert "  ~ update checkout-guardrails (standard metric group)\n      metrics: + {\"key\": \"order-value\"}\n" \
        in plan.out
    calls = recorded(shop)
    applied = shop.run("apply", "--auto-approve")
    assert applied.out.endswith("Apply complete: 0 created, 2 updated, 0 archived, 0 failed.\n"), applied.out
    patches = {p.rsplit("/", 1)[-1]: body for m, p, _, body in calls.seen if m == "PATCH"}
    assert [op["op"] for op in patches["checkout-guardrails"]] == ["test", "replace"]
    assert patches["checkout-guardrails"][1]["value"][-1] == {"key": "order-value", "nameInGroup": ""}
    assert shop.run("plan", "--detailed-exitcode").code == 0


def test_the_update_converges_when_the_patch_test_compares_with_the_stored_group(tmp_path: Path) -> None:
    shop = Shop(tmp_path / "repo", Readings(group_patch_test="stored"))
    shop.run("apply", "--auto-approve")
    shop.edit_yaml("checkout.yaml", "nameInGroup: Placed the order", "nameInGroup: Ordered")
    applied = shop.run("apply", "--auto-approve")
    assert "  ~ updated metric group checkout-funnel (sent without its guard, after a read showed the group as " \
           "planned against)\n" in applied.out
    assert shop.run("plan", "--detailed-exitcode").code == 0


def test_a_group_changed_in_the_ui_since_the_plan_is_not_overwritten(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.edit_yaml("checkout.yaml", "name: Checkout guardrails", "name: Guardrails")
    assert shop.run("plan", "--out", "plan.json").code == 0
    shop.store.patch_group("shop", "checkout-guardrails", [{"op": "replace", "path": "/name", "value": "UI name"}])
    stale = shop.run("apply", "--plan", "plan.json")
    assert stale.code == 1 and "metric group checkout-guardrails changed since the plan (version 1 → 2)" in stale.err


def test_an_unowned_group_is_adopted_unless_the_file_says_not(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.store.patch_group("shop", "checkout-guardrails", [{"op": "replace", "path": "/tags", "value": ["checkout"]}])
    plan = shop.run("plan")
    assert "  ~ adopt checkout-guardrails (standard metric group)\n" in plan.out
    shop.edit_yaml("checkout.yaml", "project: shop\n", "project: shop\nadopt: false\n")
    assert "checkout-guardrails" not in shop.run("plan").out


# --- refusals -------------------------------------------------------------------------------------------

def test_a_kind_change_is_refused_at_its_line(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.edit_yaml("checkout.yaml", "    kind: standard\n", "    kind: funnel\n")
    shop.edit_yaml("checkout.yaml", "      - key: payment-failed\n      - key: checkout-latency-p95\n",
                   "      - key: payment-failed\n        nameInGroup: A\n      - key: checkout-latency-p95\n"
                   "        nameInGroup: B\n")
    plan = shop.run("plan")
    assert plan.code == 1
    assert ("error: metrics/checkout.yaml:87:11: metric group `checkout-guardrails` in project `shop`: kind cannot "
            "change from standard to funnel") in plan.out


def test_a_group_naming_an_unknown_metric_is_refused_at_the_metric(shop: Shop) -> None:
    shop.edit_yaml("checkout.yaml", "      - key: checkout-latency-p95\n", "      - key: checkout-latency-p59\n")
    assert shop.run("validate").code == 0  # it may exist in LaunchDarkly: only plan can tell
    plan = shop.run("plan")
    assert plan.code == 1
    assert ("  error: metrics/checkout.yaml:91:14: metric group `checkout-guardrails`: metric `checkout-latency-p59` "
            "is neither in the definitions nor in LaunchDarkly project `shop`; define it, or correct the key\n"
            in plan.out)


def test_a_group_may_name_a_metric_only_launchdarkly_has(shop: Shop) -> None:
    shop.store.create("shop", {"key": "made-in-ui", "name": "UI", "kind": "custom", "eventKey": "ui",
                               "isNumeric": False})
    shop.edit_yaml("checkout.yaml", "      - key: checkout-latency-p95\n", "      - key: made-in-ui\n")
    assert shop.run("apply", "--auto-approve").code == 0
    assert [m["key"] for m in groups(shop)["checkout-guardrails"]["metrics"]] == ["payment-failed", "made-in-ui"]


def test_a_funnel_step_only_launchdarkly_has_must_average(shop: Shop) -> None:
    shop.store.create("shop", {"key": "adds", "name": "Adds", "kind": "custom", "eventKey": "add", "isNumeric": False,
                               "unitAggregationType": "sum"})
    shop.edit_yaml("checkout.yaml", "      - key: order-placed\n", "      - key: adds\n")
    plan = shop.run("plan")
    assert plan.code == 1 and "metric `adds` aggregates units by `sum` in LaunchDarkly; funnel steps must use " \
                              "`average`" in plan.out


def test_pruning_a_metric_a_group_still_holds_is_refused(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    path = shop.root / "metrics" / "storefront.yaml"
    path.write_text(path.read_text().split("  # Clicked or tapped conversion")[0])
    assert shop.run("plan").code == 0  # without --prune it is only listed
    pruned = shop.run("plan", "--prune")
    assert pruned.code == 1
    assert ("metric group `checkout-funnel`: metric `place-order-clicked` is archived by this plan (it left the "
            "definitions); keep it defined, or remove it from the group") in pruned.out


def test_a_new_group_without_a_member_for_the_token_is_refused_until_a_maintainer_is_set(shop: Shop) -> None:
    class ServiceToken(httpx.BaseTransport):
        def __init__(self, inner: httpx.BaseTransport) -> None:
            self.inner = inner

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path == "/api/v2/members/me":
                return httpx.Response(404, json={"code": "not_found", "message": "Unknown member", "id": "x"})
            return self.inner.handle_request(request)

    shop.transport = ServiceToken(shop.transport)
    plan = shop.run("plan")
    assert plan.code == 1
    assert ("error: metrics/checkout.yaml:71:5: metric group `checkout-funnel` in project `shop`: LaunchDarkly "
            "requires a maintainer, and LaunchDarkly names no member for the access token (404: Unknown member); set "
            "`maintainerId` to a member's ID") in plan.out
    for name in ("Checkout funnel", "Checkout guardrails"):
        shop.edit_yaml("checkout.yaml", f"    name: {name}\n", f"    name: {name}\n    maintainerId: {OTHER_MEMBER}\n")
    assert shop.run("apply", "--auto-approve").code == 0
    assert {g["maintainerId"] for g in groups(shop).values()} == {OTHER_MEMBER}


# --- apply order and prune ------------------------------------------------------------------------------

def test_a_group_whose_metric_was_not_created_is_not_sent(shop: Shop) -> None:
    class RefusePost(httpx.BaseTransport):
        def __init__(self, inner: httpx.BaseTransport) -> None:
            self.inner = inner

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST" and json.loads(request.content).get("key") == "payment-failed":
                return httpx.Response(400, json={"code": "invalid_request", "message": "no", "id": "x"})
            return self.inner.handle_request(request)

    good = shop.transport
    shop.transport = RefusePost(good)
    applied = shop.run("apply", "--auto-approve")
    assert applied.code == 1
    assert "  . skipped metric group checkout-guardrails: not started: metric payment-failed it names was not " \
           "created\n" in applied.out
    assert "  + created metric group checkout-funnel\n" in applied.out
    shop.transport = good
    assert shop.run("apply", "--auto-approve").code == 0
    assert shop.run("plan", "--detailed-exitcode").code == 0


def test_a_managed_group_that_left_the_definitions_is_deleted_only_with_prune(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.store.create_group("shop", {"key": "made-in-ui", "name": "UI", "kind": "standard",
                                     "maintainerId": TOKEN_MEMBER_ID, "tags": [],
                                     "metrics": [{"key": "order-value"}, {"key": "order-placed"}]})
    path = shop.root / "metrics" / "checkout.yaml"
    path.write_text(path.read_text().split("  # A standard group")[0])
    listed = shop.run("plan")
    assert "  Would delete with --prune: metric group checkout-guardrails\n" in listed.out
    assert "  Not managed by metrics-sync (left alone): 1 metric group\n" in listed.out
    assert listed.out.endswith("No changes. 8 metrics and 1 metric group match the definitions; 1 metric group left "
                               "the definitions and would be deleted with --prune.\n")
    pruned = shop.run("apply", "--prune", "--auto-approve")
    assert "  - deleted metric group checkout-guardrails\n" in pruned.out
    assert set(groups(shop)) == {"checkout-funnel", "made-in-ui"}
    assert shop.run("plan", "--prune", "--detailed-exitcode").code == 0


def test_a_group_an_experiment_uses_is_not_deleted(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.store.seed({"experiments": {"shop": [{"key": "old-test", "name": "Old test", "environmentKey": "production",
                                               "status": "stopped", "metricGroups": ["checkout-guardrails"]}]}})
    path = shop.root / "metrics" / "checkout.yaml"
    path.write_text(path.read_text().split("  # A standard group")[0])
    pruned = shop.run("apply", "--prune", "--auto-approve")
    assert "  Blocked from deleting: metric group checkout-guardrails (used by 1 experiment)\n" in pruned.out
    assert pruned.code == 1 and "checkout-guardrails" in groups(shop)


def test_a_group_is_deleted_before_the_metrics_it_held_are_archived(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    path = shop.root / "metrics" / "checkout.yaml"
    text = path.read_text().split("  # A standard group")[0]
    start, end = text.index("  # Custom conversion binary for an error"), text.index("\n# Metric groups")
    path.write_text(text[:start] + text[end:])
    calls = recorded(shop)
    pruned = shop.run("apply", "--prune", "--auto-approve")
    assert pruned.code == 0, pruned.out
    writes = [(m, p.rsplit("/", 1)[-1]) for m, p, _, _ in calls.seen if m in ("PATCH", "DELETE")]
    assert writes == [("DELETE", "checkout-guardrails"), ("PATCH", "payment-failed")]


def test_targets_select_groups_too(shop: Shop) -> None:
    planned = shop.run("plan", "--target", "checkout-g*", "--target", "payment-failed", "--target",
                       "checkout-latency-p95")
    assert planned.out.splitlines()[-1] == "Plan: 3 to create, 0 to update, 0 to archive, 0 unchanged."
    assert shop.run("plan", "--target", "checkout-funnel").code == 1  # its metrics are not created: refused


def test_a_saved_plan_with_groups_applies_exactly(shop: Shop) -> None:
    assert shop.run("plan", "--out", "plan.json").code == 0
    saved = json.loads((shop.root / "plan.json").read_text())
    assert [c["resource"] for c in saved["projects"][0]["changes"]][-2:] == ["metric-group", "metric-group"]
    applied = shop.run("apply", "--plan", "plan.json")
    assert applied.code == 0 and len(groups(shop)) == 2
    assert run_cli("show", "plan.json", cwd=shop.root, env=ENV).out.count("metric group)") == 2


# --- what LaunchDarkly answers is checked before it is used ---------------------------------------------------

@pytest.mark.parametrize("item, problem", [
    ({"key": "../x", "name": "X", "kind": "standard", "tags": [], "metrics": []},
     "LaunchDarkly sent a malformed metric group: its key does not follow LaunchDarkly's key pattern"),
    ({"key": "g", "name": "G", "kind": "standard", "tags": [], "metrics": "all of them"},
     "LaunchDarkly sent a malformed metric group `g`: `metrics` is not a list of objects"),
    ({"key": "g", "name": "G", "kind": "funnel", "tags": [], "metrics": [{"key": "a", "nameInGroup": 7}]},
     "LaunchDarkly sent a malformed metric group `g`: a metric's `nameInGroup` is not text"),
    ({"key": "g", "name": "G", "kind": "standard", "tags": "x", "metrics": []},
     "LaunchDarkly sent a malformed metric group `g`: `tags` is not a list of text"),
])
def test_a_malformed_group_is_an_error_naming_it(shop: Shop, item: dict[str, Any], problem: str) -> None:
    class Hostile(httpx.BaseTransport):
        def __init__(self, inner: httpx.BaseTransport) -> None:
            self.inner = inner

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/metric-groups"):
                return httpx.Response(200, json={"items": [item], "totalCount": 1})
            return self.inner.handle_request(request)

    shop.transport = Hostile(shop.transport)
    result = shop.run("plan")
    assert result.code == 1 and not result.out
    assert result.err.startswith(f"error: GET /api/v2/projects/shop/metric-groups failed: 200: {problem}"), result.err
