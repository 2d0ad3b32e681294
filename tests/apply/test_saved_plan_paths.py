"""One set of paths: a saved plan records the definition files it was made from, and when apply is given
other files, the refusal says so (which files), not that the definitions changed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Shop

EXTRA = """project: shop
metrics:
  - key: newsletter-signup
    name: Newsletter signup
    kind: custom
    eventKey: newsletter-signup
    isNumeric: false
"""


def two_folders(shop: Shop) -> None:
    (shop.root / "more-metrics").mkdir()
    (shop.root / "more-metrics" / "newsletter.yaml").write_text(EXTRA)
    (shop.root / "metrics-sync.yaml").write_text("project: shop\npaths: [metrics, more-metrics]\n")


def test_the_saved_plan_records_its_files(shop: Shop) -> None:
    two_folders(shop)
    assert shop.run("plan", "--out", "plan.json").code == 0
    saved = json.loads((shop.root / "plan.json").read_text())
    assert saved["definitionFiles"] == ["metrics/checkout.yaml", "metrics/storefront.yaml",
                                        "more-metrics/newsletter.yaml"]
    assert json.loads(shop.run("plan", "--format", "json").out)["definitionFiles"] == saved["definitionFiles"]


def test_apply_given_fewer_files_than_the_plan_says_which(shop: Shop) -> None:
    two_folders(shop)
    assert shop.run("plan", "--out", "plan.json").code == 0
    refused = shop.run("apply", "--plan", "plan.json", "metrics")
    assert refused.code == 1
    assert refused.err == ("error: the plan covered 3 definition files, you gave 2 (not given: "
                           "more-metrics/newsletter.yaml) (pass apply the same PATHs as plan (or set `paths` in "
                           "metrics-sync.yaml and give neither any))\n")
    assert "changed since the plan" not in refused.err
    assert shop.store.snapshot_metrics("shop") == []


def test_apply_given_other_files_names_both_sides(shop: Shop) -> None:
    two_folders(shop)
    assert shop.run("plan", "--out", "plan.json", "more-metrics").code == 0
    refused = shop.run("apply", "--plan", "plan.json", "metrics")
    assert refused.code == 1
    assert refused.err.startswith("error: the plan covered 1 definition file, you gave 2 (not given: "
                                  "more-metrics/newsletter.yaml; not in the plan: metrics/checkout.yaml, "
                                  "metrics/storefront.yaml)")


def test_the_same_paths_spelled_differently_apply(shop: Shop) -> None:
    two_folders(shop)
    assert shop.run("plan", "--out", "plan.json").code == 0
    applied = shop.run("apply", "--plan", "plan.json", "./metrics", "more-metrics/")
    assert applied.code == 0, applied.err
    assert applied.out.endswith("Apply complete: 11 created, 0 updated, 0 archived, 0 failed.\n")


def test_other_files_with_the_same_definitions_still_apply(shop: Shop) -> None:
    """A file renamed between plan and apply changes no definition: the plan is still exactly right."""
    assert shop.run("plan", "--out", "plan.json").code == 0
    (shop.root / "metrics" / "storefront.yaml").rename(shop.root / "metrics" / "store.yaml")
    applied = shop.run("apply", "--plan", "plan.json")
    assert applied.code == 0, applied.err


def test_a_plan_file_from_before_the_file_list_keeps_the_old_message(shop: Shop) -> None:
    two_folders(shop)
    assert shop.run("plan", "--out", "plan.json").code == 0
    plan_file: Path = shop.root / "plan.json"
    older = json.loads(plan_file.read_text())
    del older["definitionFiles"]
    plan_file.write_text(json.dumps(older))
    refused = shop.run("apply", "--plan", "plan.json", "metrics")
    assert refused.code == 1
    assert refused.err == "error: the definitions of project shop changed since the plan (run plan again)\n"
    (shop.root / "metrics-sync.yaml").write_text("project: shop\npaths: [metrics, more-metrics]\n")
    assert shop.run("apply", "--plan", "plan.json").code == 0  # and still applies with the same files
