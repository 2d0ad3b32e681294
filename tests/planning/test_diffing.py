"""diffing.py: what differs between a definition and a representation, the guarded JSON Patch that closes it,
and `compare`, the one decision plan takes for an item both sides have."""

from __future__ import annotations

from typing import Any

import pytest

from metrics_sync.core.model import FieldChange
from metrics_sync.core.resources import METRIC, METRIC_GROUP
from metrics_sync.planning.diffing import compare, diff, guarded_patch, missing_required

TAG = "managed-by-metrics-sync"
BINARY = {"key": "m", "name": "M", "kind": "custom", "eventKey": "e", "isNumeric": False, "tags": [TAG],
          "_version": 4}


def _after(**fields: Any) -> dict[str, Any]:
    return METRIC.canonical({**BINARY, **fields})


@pytest.mark.parametrize("changed, rep, fields, patch", [
    # A scalar: `test` the value seen, then `replace` it.
    ({"name": "New"}, {}, ["name"],
     [{"op": "test", "path": "/name", "value": "M"}, {"op": "replace", "path": "/name", "value": "New"}]),
    # A field LaunchDarkly does not send: nothing to test, `add` it.
    ({"description": "Words"}, {}, ["description"], [{"op": "add", "path": "/description", "value": "Words"}]),
    # A set: compared sorted, the order LaunchDarkly sends it in is not a change; the test uses the raw value.
    ({"tags": [TAG, "kpi"]}, {"tags": ["web", TAG]}, ["tags"],
     [{"op": "test", "path": "/tags", "value": ["web", TAG]},
      {"op": "replace", "path": "/tags", "value": ["kpi", TAG]}]),
    ({"tags": ["kpi", TAG]}, {"tags": [TAG, "kpi"]}, [], []),
    # An object: the default LaunchDarkly fills in is equal; another value is a change.
    ({"eventDefault": {"disabled": False, "value": 0}}, {"eventDefault": {"disabled": False}}, [], []),
    ({"eventDefault": {"disabled": True}}, {"eventDefault": {"disabled": False, "value": 0}}, ["eventDefault"],
     [{"op": "test", "path": "/eventDefault", "value": {"disabled": False, "value": 0}},
      {"op": "replace", "path": "/eventDefault", "value": {"disabled": True, "value": 0}}]),
])
def test_differences_and_guarded_patches(changed: dict[str, Any], rep: dict[str, Any], fields: list[str],
                                         patch: list[dict[str, Any]]) -> None:
    found, ops = diff(_after(**changed), {**BINARY, **rep})
    assert [f.field for f in found] == fields
    assert ops == patch


def test_a_list_keeps_its_order_and_names_each_item() -> None:
    urls = [{"kind": "exact", "url": "https://x.test/a"}, {"kind": "substring", "substring": "/b"}]
    rep = {**BINARY, "kind": "pageview", "urls": urls}
    after = METRIC.canonical({**rep, "urls": list(reversed(urls))})
    (field,), ops = diff(after, rep)
    assert (field.before, field.after) == (urls, list(reversed(urls)))  # the order of URL matchers is a change
    assert ops[0] == {"op": "test", "path": "/urls", "value": urls}


def test_set_details_name_what_is_added_and_removed() -> None:
    (field,), _ = diff(_after(tags=[TAG, "kpi"]), {**BINARY, "tags": [TAG, "web"]})
    assert field.details == ("+ kpi", "- web")


def test_a_conversion_made_numeric_must_send_its_default_success_criteria() -> None:
    after = _after(isNumeric=True, unit="ms")
    rep = {**BINARY, "isNumeric": True, "unit": "ms"}  # LaunchDarkly sends no successCriteria
    assert [f.field for f in missing_required(after, rep, METRIC.canonical(rep))] == ["successCriteria"]
    assert missing_required(after, {**rep, "successCriteria": "HigherThanBaseline"}, METRIC.canonical(rep)) == []
    assert missing_required(_after(), BINARY, METRIC.canonical(BINARY)) == []  # not required of a conversion


def test_a_cleared_field_is_tested_then_replaced_and_a_removed_one_removed() -> None:
    rep = {**BINARY, "description": "Old"}
    _, ops = diff(_after(), rep)
    assert ops == [{"op": "test", "path": "/description", "value": "Old"},
                   {"op": "replace", "path": "/description", "value": ""}]
    removed = [FieldChange("description", "Old", None)]
    assert guarded_patch(rep, removed) == [{"op": "test", "path": "/description", "value": "Old"},
                                           {"op": "remove", "path": "/description"}]


def test_a_group_patch_sends_metrics_in_the_form_launchdarkly_takes() -> None:
    rep = {"key": "g", "name": "G", "kind": "standard", "metrics": [{"key": "a", "nameInGroup": ""}], "tags": [TAG]}
    after = METRIC_GROUP.canonical({**rep, "metrics": [{"key": "a"}, {"key": "b"}]})
    _, ops = diff(after, rep, METRIC_GROUP)
    assert ops[-1] == {"op": "replace", "path": "/metrics",
                       "value": [{"key": "a", "nameInGroup": ""}, {"key": "b", "nameInGroup": ""}]}


@pytest.mark.parametrize("rep, adopt, in_sync, adopts, kind_changed", [
    (BINARY, True, True, False, False),
    ({**BINARY, "tags": []}, True, False, True, False),  # unowned: adopted (an update that adds the tag)
    ({**BINARY, "tags": []}, False, True, False, False),  # `adopt: false`: compared without the tag
    ({**BINARY, "kind": "pageview", "urls": [{"kind": "exact", "url": "https://x.test/"}]}, True, False, False, True),
])
def test_compare_is_the_one_decision(rep: dict[str, Any], adopt: bool, in_sync: bool, adopts: bool,
                                     kind_changed: bool) -> None:
    found = compare(METRIC, _after(), rep, adopt=adopt, tag=TAG)
    assert (found.in_sync, found.adopts, found.kind_changed) == (in_sync, adopts, kind_changed)
    if kind_changed:
        assert found.fields == []  # refused, never diffed
