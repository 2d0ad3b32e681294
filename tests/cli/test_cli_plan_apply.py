"""plan and apply end to end through the CLI, against the emulator in-process."""

from __future__ import annotations

import json

import httpx

from tests.conftest import TOKEN, Shop, run_cli


def test_apply_then_plan_is_empty_for_every_kind(shop: Shop) -> None:
    first = shop.run("plan", "--detailed-exitcode")
    assert first.code == 2
    assert first.out.endswith("Plan: 10 to create, 0 to update, 0 to archive, 0 unchanged.\n")
    applied = shop.run("apply", "--auto-approve")
    assert applied.code == 0, applied.err
    assert applied.out.endswith("Apply complete: 10 created, 0 updated, 0 archived, 0 failed.\n")
    again = shop.run("plan", "--detailed-exitcode")
    assert again.code == 0
    assert again.out == ("Project shop\n  no changes (8 metrics and 2 metric groups in sync)\n\n"
                         "No changes. 8 metrics and 2 metric groups match the definitions.\n")
    metrics = shop.store.snapshot_metrics("shop")
    kinds = {(m["kind"], m["isNumeric"], m["unitAggregationType"], m["analysisType"]) for m in metrics}
    assert ("custom", False, "average", "mean") in kinds and ("custom", False, "sum", "mean") in kinds
    assert ("custom", True, "average", "percentile") in kinds and ("pageview", False, "sum", "mean") in kinds
    assert all("managed-by-metrics-sync" in m["tags"] for m in shop.store.snapshot_metrics("shop"))


def test_drift_shows_as_an_update_with_exit_2_and_apply_repairs_it(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.ui_edit("order-value", [{"op": "replace", "path": "/unit", "value": "EUR"},
                                 {"op": "add", "path": "/tags/-", "value": "ui-added"}])
    drift = shop.run("plan", "--detailed-exitcode")
    assert drift.code == 2
    assert drift.out == ("Project shop\n"
                         "  ~ update order-value (custom numeric)\n"
                         '      unit: "EUR" → "USD"\n'
                         "      tags: - ui-added\n"
                         "\n"
                         "Plan: 0 to create, 1 to update, 0 to archive, 9 unchanged.\n")
    assert shop.run("apply", "--auto-approve").code == 0
    assert shop.store.get("shop", "order-value")["unit"] == "USD"
    assert shop.run("plan", "--detailed-exitcode").code == 0


def test_saved_plan_applies_and_refuses_when_stale(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.edit_yaml("checkout.yaml", "name: Order value", "name: Order value (USD)")
    saved = shop.run("plan", "--out", "plan.json")
    assert saved.code == 0 and "Saved the plan to plan.json" in saved.err
    payload = json.loads((shop.root / "plan.json").read_text())
    assert payload["formatVersion"] == 1 and payload["projects"][0]["changes"][0]["remoteVersion"] == 1
    assert TOKEN not in (shop.root / "plan.json").read_text()
    shop.ui_edit("order-value", [{"op": "replace", "path": "/description", "value": "edited in the UI"}])
    stale = shop.run("apply", "--plan", "plan.json")
    assert stale.code == 1
    assert stale.err == ("error: plan is stale: metric order-value changed since the plan (version 1 → 2); "
                         "run plan again\n")
    assert shop.store.get("shop", "order-value")["name"] == "Order value"  # nothing written
    fresh = shop.run("plan", "--out", "plan.json")
    assert fresh.code == 0
    applied = shop.run("apply", "--plan", "plan.json")
    assert applied.code == 0 and applied.out.endswith("Apply complete: 0 created, 1 updated, 0 archived, 0 failed.\n")
    assert shop.store.get("shop", "order-value")["name"] == "Order value (USD)"


def test_saved_plan_is_refused_when_the_definitions_changed(shop: Shop) -> None:
    shop.run("plan", "--out", "plan.json")
    shop.edit_yaml("checkout.yaml", "name: Order placed", "name: Orders placed")
    refused = shop.run("apply", "--plan", "plan.json", "metrics")
    assert refused.code == 1
    assert refused.err == "error: the definitions of project shop changed since the plan (run plan again)\n"
    assert shop.store.snapshot_metrics("shop") == []


def test_a_plan_saved_with_the_earlier_whole_text_hash_still_applies(shop: Shop) -> None:
    """Plans saved before the hash was taken of item digests record `sha256:` and the whole text's hash: apply
    checks the definitions hashed that way, and still refuses when they changed."""
    from metrics_sync.definitions.load import load_definitions
    from metrics_sync.planning.reconcile import definitions_hashes

    definitions, _ = load_definitions([str(shop.root / "metrics")])
    earlier = definitions_hashes(definitions, "managed-by-metrics-sync", {"shop": "sha256:"})["shop"]
    assert earlier.startswith("sha256:")
    shop.run("plan", "--out", "plan.json")
    document = json.loads((shop.root / "plan.json").read_text())
    assert document["projects"][0]["definitionsHash"].startswith("sha256-items:")
    document["projects"][0]["definitionsHash"] = earlier
    (shop.root / "plan.json").write_text(json.dumps(document))
    shop.edit_yaml("checkout.yaml", "name: Order placed", "name: Orders placed")
    refused = shop.run("apply", "--plan", "plan.json", "metrics")
    assert refused.err == "error: the definitions of project shop changed since the plan (run plan again)\n"
    shop.edit_yaml("checkout.yaml", "name: Orders placed", "name: Order placed")
    applied = shop.run("apply", "--plan", "plan.json", "metrics", "--auto-approve")
    assert applied.code == 0, applied.err
    assert len(shop.store.snapshot_metrics("shop")) == 8


def test_saved_plan_is_refused_for_another_launchdarkly(shop: Shop) -> None:
    shop.run("plan", "--out", "plan.json")
    other = shop.run("apply", "--plan", "plan.json", env={"LD_BASE_URL": "http://127.0.0.1:9999"})
    assert other.code == 1
    assert other.err == "error: the plan was made against 127.0.0.1:8765, not 127.0.0.1:9999 (run plan again)\n"


def test_apply_as_json_prints_one_document_with_or_without_changes(shop: Shop) -> None:
    first = json.loads(shop.run("apply", "--auto-approve", "--format", "json").out)  # no plan, no streamed lines
    assert first["summary"]["created"] == 10 and len(first["results"]) == 10 and not first["interrupted"]
    again = shop.run("apply", "--auto-approve", "--format", "json")
    assert again.code == 0
    assert json.loads(again.out) == {
        "formatVersion": 1, "interrupted": False, "stopped": None, "results": [],
        "summary": {"created": 0, "updated": 0, "restored": 0, "archived": 0, "deleted": 0, "failed": 0,
                    "skipped": 0}}


class FailPostsFor(httpx.BaseTransport):
    """LaunchDarkly refuses the creates of some keys (e.g. a momentary validation problem)."""

    def __init__(self, shop: Shop, keys: set[str]) -> None:
        self.inner, self.keys = shop.transport, keys

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and json.loads(request.content)["key"] in self.keys:
            return httpx.Response(400, json={"code": "invalid_request", "message": "try later", "id": "x"})
        return self.inner.handle_request(request)


def test_partial_failure_exits_1_and_a_second_apply_finishes(shop: Shop) -> None:
    good = shop.transport
    shop.transport = FailPostsFor(shop, {"order-value", "product-page-views"})
    partial = shop.run("apply", "--auto-approve")
    assert partial.code == 1
    assert partial.out.endswith("Apply complete: 8 created, 0 updated, 0 archived, 2 failed.\n")
    assert ("  ! failed order-value (metrics/checkout.yaml:33:5): POST /api/v2/metrics/shop failed: 400 "
            "invalid_request: try later"
            in partial.out)
    shop.transport = good
    rest = shop.run("apply", "--auto-approve")
    assert rest.code == 0
    assert rest.out.endswith("Apply complete: 2 created, 0 updated, 0 archived, 0 failed.\n")
    assert shop.run("plan", "--detailed-exitcode").code == 0


def test_apply_without_a_terminal_needs_auto_approve(shop: Shop) -> None:
    refused = shop.run("apply")
    assert refused.code == 1
    assert refused.err.endswith("error: refusing to apply without confirmation: stdin is not a terminal (review "
                                "the plan, then pass --auto-approve (or apply a saved plan with --plan))\n")
    assert shop.store.snapshot_metrics("shop") == []


def test_apply_on_a_terminal_asks_first(shop: Shop) -> None:
    declined = shop.run("apply", tty=True, stdin="n\n")
    assert declined.code == 1 and "Apply these 10 changes? [y/N] " in declined.err
    assert "Apply cancelled; nothing was changed." in declined.err and shop.store.snapshot_metrics("shop") == []
    accepted = shop.run("apply", "--no-color", tty=True, stdin="yes\n")
    assert accepted.code == 0 and len(shop.store.snapshot_metrics("shop")) == 8


def test_colours_only_on_a_terminal_without_no_color(shop: Shop) -> None:
    assert "\x1b[" in shop.run("plan", tty=True).out
    assert "\x1b[" not in shop.run("plan").out
    assert "\x1b[" not in shop.run("plan", "--no-color", tty=True).out
    assert "\x1b[" not in shop.run("plan", tty=True, env={"NO_COLOR": "1"}).out


def test_prune_archives_only_when_asked(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.store.create("shop", {"key": "made-in-ui", "name": "UI", "kind": "custom", "eventKey": "u",
                               "isNumeric": False})
    path = shop.root / "metrics" / "storefront.yaml"
    text = path.read_text()
    start, end = text.index("  # Page viewed conversion count"), text.index("  # Clicked or tapped conversion")
    path.write_text(text[:start] + text[end:])
    listed = shop.run("plan")
    assert "  Would archive with --prune: product-page-views\n" in listed.out
    assert "  Not managed by metrics-sync (left alone): 1 metric: made-in-ui\n" in listed.out
    assert listed.out.endswith("No changes. 7 metrics and 2 metric groups match the definitions; 1 left the "
                               "definitions and would be archived with --prune.\n")
    pruned = shop.run("apply", "--prune", "--auto-approve")
    assert "  - archive product-page-views (pageview conversion count)\n" in pruned.out
    assert pruned.out.endswith("Apply complete: 0 created, 0 updated, 1 archived, 0 failed.\n")
    assert shop.store.get("shop", "product-page-views")["archived"] is True
    assert shop.store.get("shop", "made-in-ui")["archived"] is False
    assert shop.run("plan", "--prune", "--detailed-exitcode").code == 0


def test_a_kind_change_is_refused_by_plan_and_apply(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.edit_yaml("storefront.yaml", "    kind: click\n    selector: \"#place-order\"\n", "    kind: pageview\n")
    refused = shop.run("plan", "--detailed-exitcode")
    assert refused.code == 1
    assert "kind cannot change from click to pageview" in refused.out
    assert refused.out.endswith("Plan refused: 1 change cannot be made as defined (see above).\n")
    assert shop.run("apply", "--auto-approve").code == 1


def test_invalid_definitions_make_no_api_call(shop: Shop) -> None:
    """Nothing is sent but plan's early read of the metrics list (started while the definitions are read): that
    read is given up and says nothing."""
    shop.edit_yaml("checkout.yaml", "unit: USD", "unit: [USD]")
    for command in (("plan",), ("apply", "--auto-approve")):
        result = shop.run(*command)
        assert result.code == 1
        assert result.err.splitlines()[-1] == ("error: 1 problem in the metric definitions (listed above); "
                                               "nothing was changed in LaunchDarkly")
        assert "metrics/checkout.yaml:39:11: `unit` must be text; got a list (at metrics[2].unit)" in result.err
        assert "[api]" not in result.err and "Traceback" not in result.err
        if command == ("plan",):
            assert set(shop.app.stats.requests) <= {"GET /api/v2/metrics/{projectKey}"}
            assert shop.app.stats.total <= 1  # the first page only: the project's 10 metrics fit in it
            early = shop.app.stats.total
    assert shop.app.stats.total == early  # apply sends nothing at all
    assert not shop.app.stats.writes


def test_json_and_markdown_plans(shop: Shop) -> None:
    as_json = json.loads(shop.run("plan", "--format", "json").out)
    assert as_json["summary"] == {"create": 10, "update": 0, "archive": 0, "delete": 0, "unchanged": 0,
                                  "unchangedGroups": 0, "unmanaged": 0, "wouldArchive": 0, "wouldDelete": 0,
                                  "blocked": 0, "alerts": 0}
    first = as_json["projects"][0]["changes"][0]
    assert set(first) == {"action", "key", "metricType", "adopt", "restore", "remoteVersion", "fields", "before",
                          "after", "patch", "body", "warnings", "source", "typeBefore", "resource", "usedBy",
                          "alerts", "findings"}
    markdown = shop.run("plan", "--format", "markdown").out
    assert markdown.startswith("<!-- metrics-sync plan -->\n### metrics-sync plan\n\n"
                               "**Plan: 10 to create, 0 to update, 0 to archive, 0 unchanged.**\n")
    assert "| `shop` | 10 | 0 | 0 | 0 | 0 | 0 | 0 | 0 |" in markdown and "```diff" in markdown


def test_unknown_project_is_a_clear_error(shop: Shop) -> None:
    result = shop.run("plan", env={}, )
    assert result.code == 0
    (shop.root / "metrics-sync.yaml").write_text("project: nope\npaths: [metrics]\n")
    for file in (shop.root / "metrics").glob("*.yaml"):
        file.write_text(file.read_text().replace("project: shop\n", ""))
    missing = shop.run("plan")
    assert missing.code == 1
    assert missing.err == ("error: metrics-sync.yaml:1:10: there is no project `nope` in LaunchDarkly at "
                           "127.0.0.1:8765 (check the project key (`project:` in the file, --project, or the config); "
                           "keys are case-sensitive)\n")
    shop.store.projects["nope"] = {}
    (shop.root / "metrics" / "storefront.yaml").write_text("project: mobil\n" + (
        shop.root / "metrics" / "storefront.yaml").read_text())
    located = shop.run("plan")
    assert located.err.startswith("error: metrics/storefront.yaml:1:10: there is no project `mobil` in LaunchDarkly")


def test_missing_token(shop: Shop) -> None:
    result = run_cli("plan", env={"LD_BASE_URL": "http://127.0.0.1:1"}, cwd=shop.root)
    assert result.code == 1
    assert result.err == ("error: no LaunchDarkly access token (set LD_ACCESS_TOKEN (or LAUNCHDARKLY_ACCESS_TOKEN) "
                          "to an API access token)\n")


def test_progress_line_on_a_terminal(shop: Shop) -> None:
    result = shop.run("apply", "--auto-approve", "--no-color", tty=True)
    assert result.code == 0
    assert "\r  applying: " in result.err and result.err.endswith("\r  applying: 10/10 changes done\n")
    assert "applying" not in shop.run("apply", "--auto-approve").err  # not without a terminal
