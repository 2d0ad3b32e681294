"""Every field of LaunchDarkly's metric metrics-sync manages (event filters, winsorization, count_distinct,
warehouse-native and ratio metrics, trace metrics) under every reading of the contract: apply creates them, plan is
then clean, an edit is a field-level diff that apply makes, and export → validate → plan is clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from metrics_sync.emulator.readings import Readings, every_reading
from tests.conftest import Shop

FIELDS_YAML = """\
project: shop
metrics:
  - key: pro-orders
    name: Orders on paid plans
    kind: custom
    eventKey: order-placed
    filters:
      type: group
      op: or
      negate: false
      values:
        - {type: eventProperty, attribute: plan, op: in, values: [pro, business], negate: false}
        - {type: contextAttribute, contextKind: user, attribute: country, op: in, values: [JP, DE], negate: true}
  - key: order-value-capped
    name: Order value, capped
    kind: custom
    eventKey: order-placed
    isNumeric: true
    unit: USD
    successCriteria: HigherThanBaseline
    winsorLowerPercentile: 1
    winsorUpperPercentile: 99.5
    winsorIncludeImputed: true
  - key: buyers-per-session
    name: Distinct buyers per session
    kind: custom
    eventKey: order_placed
    unitAggregationType: count_distinct
    unitAggregationField: buyer_id
    dataSource: {key: snowflake, environmentKey: production}
    denominator:
      eventName: session_started
      unitAggregationType: sum
      filters: {type: eventProperty, attribute: amount, op: greaterThan, values: [10.5], negate: false}
  - key: warehouse-revenue
    name: Warehouse revenue
    kind: custom
    eventKey: order_placed
    isNumeric: true
    unit: USD
    successCriteria: HigherThanBaseline
    dataSource: {key: snowflake}
    valueColumn: order_total
  - key: checkout-spans
    name: Checkout spans
    kind: trace
    traceQuery: service.name = "checkout"
  - key: checkout-latency
    name: Checkout latency
    kind: trace
    traceQuery: service.name = "checkout"
    isNumeric: true
    traceValueLocation: duration
    unit: ms
    successCriteria: LowerThanBaseline
    winsorUpperPercentile: 99
"""


def _id(readings: Readings) -> str:
    changed = [f"{k}={v}" for k, v in vars(readings).items() if v != getattr(Readings(), k)]
    return ",".join(changed) or "defaults"


@pytest.fixture(params=every_reading(), ids=_id)
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Shop:
    shop = Shop(tmp_path / "repo", request.param)
    (shop.root / "metrics" / "fields.yaml").write_text(FIELDS_YAML)
    return shop


def test_create_update_and_export_every_new_field(shop: Shop) -> None:
    applied = shop.run("apply", "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    stored = shop.store.get("shop", "warehouse-revenue")
    assert stored["valueColumn"] == "order_total" and stored["dataSource"] == {"key": "snowflake"}
    assert shop.store.get("shop", "checkout-latency")["traceValueLocation"] == "duration"

    clean = shop.run("plan", "--detailed-exitcode")
    assert clean.code == 0, clean.out
    assert "`valueColumn` of `warehouse-revenue` is not compared: LaunchDarkly does not return it" in clean.out

    shop.edit_yaml("fields.yaml", "values: [JP, DE], negate: true", "values: [JP, DE, US], negate: true")
    shop.edit_yaml("fields.yaml", "winsorUpperPercentile: 99.5", "winsorUpperPercentile: 95")
    shop.edit_yaml("fields.yaml", "eventName: session_started", "eventName: visit_started")
    shop.edit_yaml("fields.yaml", "winsorUpperPercentile: 99\n", "winsorUpperPercentile: 98\n")
    shop.edit_yaml("fields.yaml", "buyer_id", "customer_id")
    planned = shop.run("plan", "--detailed-exitcode")
    assert planned.code == 2, planned.out
    assert '+ group or › user.country not in ["DE", "JP", "US"]' in planned.out
    assert '- group or › user.country not in ["DE", "JP"]' in planned.out
    assert "winsorUpperPercentile: 99.5 → 95" in planned.out
    assert "winsorUpperPercentile: 99 → 98" in planned.out
    assert 'eventName: "session_started" → "visit_started"' in planned.out
    assert 'unitAggregationField: "buyer_id" → "customer_id"' in planned.out
    assert "Plan: 0 to create, 4 to update" in planned.out

    updated = shop.run("apply", "--auto-approve")
    assert updated.code == 0, updated.out + updated.err
    assert shop.store.get("shop", "order-value-capped")["winsorUpperPercentile"] == 95
    assert shop.run("plan", "--detailed-exitcode").code == 0

    exported = shop.run("export", "--project", "shop", "--out", "exported")
    assert exported.code == 0, exported.err
    assert "unmanagedFields" not in exported.out and "Not exported" not in exported.out
    assert shop.run("validate", "exported", "--project", "shop").code == 0
    again = shop.run("plan", "exported", "--detailed-exitcode")
    assert again.code == 0, again.out


def test_the_reordered_reading_really_reorders_and_plan_stays_clean(tmp_path: Path) -> None:
    shop = Shop(tmp_path / "repo", Readings(filter_order="reordered"))
    (shop.root / "metrics" / "fields.yaml").write_text(FIELDS_YAML)
    assert shop.run("apply", "--auto-approve").code == 0
    # metrics-sync sends a tree in its canonical order (sorted); this reading stores the reverse of what was sent.
    stored = shop.store.get("shop", "pro-orders")["filters"]["values"]
    assert [m["type"] for m in stored] == ["eventProperty", "contextAttribute"]
    assert stored[0]["values"] == ["pro", "business"] and stored[1]["values"] == ["JP", "DE"]
    assert shop.run("plan", "--detailed-exitcode").code == 0


def test_a_metric_without_data_source_plans_as_the_hosted_one(tmp_path: Path) -> None:
    """MetricRep.dataSource is required in the spec; a list item without it still plans, as the hosted source."""
    shop = Shop(tmp_path / "repo")
    assert shop.run("apply", "--auto-approve").code == 0
    for record in shop.store.projects["shop"].values():
        record.pop("dataSource", None)
    assert shop.run("plan", "--detailed-exitcode").code == 0
