"""export: UI-made metrics become definitions that validate and plan clean, for every supported kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from metrics_sync.definitions.yaml_reader import parse_yaml_text
from metrics_sync.emulator import EmulatorApp, Store
from metrics_sync.export.yaml_writer import scalar
from tests.conftest import TOKEN, Result, run_cli

ENV = {"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": "http://127.0.0.1:8765"}

# Metrics as people make them in the UI: no ownership tag, non-default settings of every kind.
UI_METRICS: list[dict[str, Any]] = [
    {"key": "order-placed", "name": "Order placed", "kind": "custom", "eventKey": "order", "isNumeric": False,
     "description": "Did the user order?", "tags": ["checkout"]},
    {"key": "add-to-cart", "name": "Add to cart", "kind": "custom", "eventKey": "cart", "isNumeric": False,
     "unitAggregationType": "sum", "tags": ["checkout", "funnel"], "analysisUnits": ["user", "organization"]},
    {"key": "errors-seen", "name": "Errors seen", "kind": "custom", "eventKey": "error", "isNumeric": False,
     "successCriteria": "LowerThanBaseline", "eventDefault": {"disabled": True, "value": 0}},
    {"key": "order-value", "name": "Order value", "kind": "custom", "eventKey": "order", "isNumeric": True,
     "unit": "USD", "successCriteria": "HigherThanBaseline", "unitAggregationType": "sum", "tags": ["revenue"]},
    {"key": "latency-p99", "name": "Latency P99", "kind": "custom", "eventKey": "render", "isNumeric": True,
     "unit": "ms", "successCriteria": "LowerThanBaseline", "analysisType": "percentile", "percentileValue": 99,
     "tags": ["performance"]},
    {"key": "home-viewed", "name": "Home: viewed?", "kind": "pageview",
     "urls": [{"kind": "canonical", "url": "https://shop.example.com/"}, {"kind": "regex", "pattern": "^/h.*$"}]},
    {"key": "buy-clicked", "name": "no", "kind": "click", "selector": "#buy > .btn",
     "urls": [{"kind": "substring", "substring": "/product/"}], "unitAggregationType": "sum", "tags": ["web"]},
]
EXTRAS: list[dict[str, Any]] = [
    {"key": "upgrades", "name": "Upgrades", "kind": "custom", "eventKey": "upgrade", "isNumeric": False,
     "tags": ["growth"], "filters": {"type": "eventProperty", "attribute": "plan", "op": "in", "values": ["pro"],
                                     "negate": False}},
    {"key": "api-trace", "name": "API trace", "kind": "trace", "isNumeric": False, "traceQuery": "service.name = api"},
    {"key": "api-latency", "name": "API latency", "kind": "trace", "isNumeric": True,
     "traceQuery": "service.name = api", "traceValueLocation": "duration", "unit": "ms",
     "successCriteria": "LowerThanBaseline", "winsorUpperPercentile": 99.5, "tags": ["growth"]},
    {"key": "distinct-buyers", "name": "Distinct buyers per session", "kind": "custom", "eventKey": "order",
     "isNumeric": False, "unitAggregationType": "count_distinct", "unitAggregationField": "buyer_id",
     "dataSource": {"key": "snowflake", "environmentKey": "production", "_name": "Snowflake"},
     "denominator": {"eventName": "session.started", "unitAggregationType": "sum", "winsorExcludeImputed": False,
                     "filters": {"type": "group", "op": "or", "negate": False, "values": [
                         {"type": "contextAttribute", "contextKind": "user", "attribute": "country", "op": "in",
                          "values": ["JP", "DE"], "negate": True},
                         {"type": "eventProperty", "attribute": "amount", "op": "greaterThan", "values": [10.5],
                          "negate": False}]}},
     "tags": ["growth"]},
    {"key": "retired", "name": "Retired", "kind": "custom", "eventKey": "old", "isNumeric": False, "archived": True,
     "tags": ["checkout"]},
]


class Project:
    def __init__(self, root: Path, metrics: list[dict[str, Any]]) -> None:
        root.mkdir()
        self.root = root
        self.store = Store(["shop"])
        self.store.seed({"projects": {"shop": metrics}, "experimentationSettings": {"shop": ["user", "organization"]}})
        self.transport = httpx.WSGITransport(app=EmulatorApp(self.store, token=TOKEN))

    def run(self, *args: str) -> Result:
        return run_cli(*args, env=ENV, cwd=self.root, transport=self.transport)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path / "repo", UI_METRICS + EXTRAS)


def test_round_trip_every_kind_plans_clean(project: Project) -> None:
    exported = project.run("export", "--project", "shop")
    assert exported.code == 0, exported.err
    assert project.run("validate", "metrics", "--project", "shop").code == 0
    plan = project.run("plan", "metrics", "--detailed-exitcode")
    assert plan.code == 0, plan.out
    assert plan.out.endswith("No changes. 11 metrics match the definitions.\n")
    assert "Not managed by metrics-sync (left alone): 1 metric: retired" in plan.out  # the archived one


def test_export_writes_canonical_yaml_and_reports_what_it_cannot_express(project: Project) -> None:
    result = project.run("export", "--project", "shop")
    assert result.out == """\
Exported 11 metric(s) of project shop to metrics/ (6 definition files):
  metrics/checkout.yaml        2 metrics
  metrics/growth.yaml          3 metrics
  metrics/metrics.schema.json  the schema, for editors
  metrics/performance.yaml     1 metric
  metrics/revenue.yaml         1 metric
  metrics/untagged.yaml        3 metrics
  metrics/web.yaml             1 metric
Skipped 1 archived metric(s) (use --include-archived): retired
Next: metrics-sync plan metrics --detailed-exitcode  (expect: No changes.)
"""
    assert (project.root / "metrics" / "checkout.yaml").read_text() == """\
# yaml-language-server: $schema=metrics.schema.json
#
# Exported from LaunchDarkly project `shop` by metrics-sync 0.1.0.
# 2 metrics tagged `checkout`.
project: shop
# adopt: false keeps these metrics as they are in LaunchDarkly: metrics-sync shows their drift and
# applies your edits, but does not add its ownership tag (so --prune never archives them). Remove
# this line to hand them over to metrics-sync; the next apply adds the tag.
adopt: false
metrics:
  - key: add-to-cart
    name: Add to cart
    kind: custom
    eventKey: cart
    unitAggregationType: sum
    analysisUnits: [organization, user]
    tags: [checkout, funnel]

  - key: order-placed
    name: Order placed
    description: Did the user order?
    kind: custom
    eventKey: order
    tags: [checkout]
"""
    untagged = (project.root / "metrics" / "untagged.yaml").read_text()
    assert 'name: "Home: viewed?"' in untagged and "pattern: \"^/h.*$\"" in untagged
    assert "successCriteria: LowerThanBaseline\n    eventDefault:\n      disabled: true\n      value: 0" in untagged
    web = (project.root / "metrics" / "web.yaml").read_text()
    assert 'name: "no"' in web and 'selector: "#buy > .btn"' in web
    growth = (project.root / "metrics" / "growth.yaml").read_text()
    assert "    filters:\n      type: eventProperty\n      attribute: plan\n      op: in\n" in growth
    assert "unmanagedFields" not in growth and "_name" not in growth and "winsorExcludeImputed" not in growth
    assert "    dataSource:\n      key: snowflake\n      environmentKey: production\n" in growth
    assert "    traceQuery: service.name = api\n" in growth and "    winsorUpperPercentile: 99.5\n" in growth


def test_fields_metrics_sync_does_not_know_are_kept_under_unmanaged_fields() -> None:
    from metrics_sync.export.exporter import metric_document

    doc = metric_document({"key": "k", "name": "K", "kind": "custom", "eventKey": "e", "someNewField": {"a": 1},
                           "dataSource": {"key": "launchdarkly-hosted", "_name": "LaunchDarkly"},
                           "winsorExcludeImputed": False}, "managed-by-metrics-sync")
    assert doc == {"key": "k", "name": "K", "kind": "custom", "eventKey": "e",
                   "unmanagedFields": {"someNewField": {"a": 1}}}


def test_archived_metrics_when_asked(project: Project) -> None:
    result = project.run("export", "--project", "shop", "--include-archived", "--single-file")
    assert "metrics/shop.yaml" in result.out
    text = (project.root / "metrics" / "shop.yaml").read_text()
    assert "  - key: retired\n" in text and "    archived: true\n" in text
    assert project.run("plan", "metrics", "--detailed-exitcode").code == 0


def test_adopt_hands_the_metrics_to_metrics_sync(project: Project) -> None:
    project.run("export", "--project", "shop", "--adopt")
    assert "adopt: false" not in (project.root / "metrics" / "checkout.yaml").read_text()
    plan = project.run("plan", "metrics", "--detailed-exitcode")
    assert plan.code == 2
    assert plan.out.endswith("Plan: 0 to create, 11 to update, 0 to archive, 0 unchanged.\n")
    assert plan.out.count("~ adopt ") == 11
    assert project.run("apply", "metrics", "--auto-approve").code == 0
    assert "managed-by-metrics-sync" in project.store.get("shop", "order-placed")["tags"]
    assert project.run("plan", "metrics", "--detailed-exitcode").code == 0


def test_never_overwrites_without_force(project: Project) -> None:
    assert project.run("export", "--project", "shop").code == 0
    again = project.run("export", "--project", "shop")
    assert again.code == 0  # identical content: nothing is overwritten
    project.store.patch("shop", "order-placed", [{"op": "replace", "path": "/name", "value": "Orders"}])
    before = (project.root / "metrics" / "checkout.yaml").read_text()
    refused = project.run("export", "--project", "shop")
    assert refused.code == 1
    assert refused.err.startswith("error: refusing to overwrite ") and "checkout.yaml" in refused.err
    assert "nothing was written" in refused.err
    assert (project.root / "metrics" / "checkout.yaml").read_text() == before
    assert project.run("export", "--project", "shop", "--force").code == 0
    assert "name: Orders" in (project.root / "metrics" / "checkout.yaml").read_text()


def test_filters_and_stdout(project: Project) -> None:
    by_tag = project.run("export", "--project", "shop", "--tag", "checkout", "--out", "-")
    assert by_tag.code == 0
    assert [line for line in by_tag.out.splitlines() if line.startswith("  - key:")] == [
        "  - key: add-to-cart", "  - key: order-placed"]
    assert "Exported 2 metric(s) of project shop to stdout." in by_tag.err
    by_prefix = project.run("export", "--project", "shop", "--prefix", "order", "--out", "-")
    assert [line for line in by_prefix.out.splitlines() if line.startswith("  - key:")] == [
        "  - key: order-placed", "  - key: order-value"]
    assert "Left out by --tag/--prefix: 10 metric(s)." in by_prefix.err


def test_export_is_deterministic(project: Project, tmp_path: Path) -> None:
    first = project.run("export", "--project", "shop", "--out", "-").out
    second = project.run("export", "--project", "shop", "--out", "-").out
    assert first == second


@pytest.mark.parametrize("text", ["no", "Yes", "on", "null", "~", "1e3", "100", "0x1F", "2024-01-01", "#x", "a: b",
                                  " lead", "trail ", "-x", "@x", "*x", "&x", "!x", "%x", "", "x #y", "[x]", "{x}",
                                  "'q'", '"q"', "multi\nline", "tab\tx", "é", "Order placed", "/checkout", "a - b",
                                  "Why? Because!", "it's", "50%", "a&b", "x=1", "Y", "n", "NaN", ".inf", "-.5"])
def test_scalars_read_back_as_the_same_string(text: str) -> None:
    doc, problems = parse_yaml_text(f"value: {scalar(text)}\n", "t.yaml")
    assert not problems and doc is not None and doc.data == {"value": text}


def test_a_metric_tagged_like_the_groups_file_shares_it_and_is_not_lost() -> None:
    """A metric's first tag names its file; the tag `metric-groups` names the groups' file too: the metric and the
    groups end up in that one file, and it reads back with both."""
    from metrics_sync.export.exporter import GROUPS_FILE, ExportOptions, export

    metrics = [{"key": key, "name": key, "kind": "custom", "eventKey": "e", "tags": ["metric-groups", "owned"],
                "_version": 1} for key in ("m1", "m2")]
    group = {"key": "g1", "name": "G1", "kind": "standard", "tags": ["owned"], "_version": 1,
             "metrics": [{"key": "m1", "nameInGroup": ""}, {"key": "m2", "nameInGroup": ""}]}
    result = export(metrics, ExportOptions(project="shop", ownership_tag="owned"), [group])
    assert list(result.files) == [GROUPS_FILE]
    data = parse_yaml_text(result.files[GROUPS_FILE], GROUPS_FILE)[0].data
    assert [m["key"] for m in data["metrics"]] == ["m1", "m2"] and [g["key"] for g in data["metricGroups"]] == ["g1"]
