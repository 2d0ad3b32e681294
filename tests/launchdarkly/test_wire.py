"""The wire checks (launchdarkly/wire.py): strict JSON, and the shape of each representation LaunchDarkly sends,
derived from the resources' field tables. Every wire type both resources use has a right and a wrong sample
here, so a new type cannot go unchecked."""

from __future__ import annotations

from typing import Any

import pytest

from metrics_sync.core.fields import COUNT, FLAG, INTEGER, MEMBER, NUMBER, OBJECTS, TEXT, TEXTS, Resource, Wire
from metrics_sync.core.resources import (
    DATA_SOURCE,
    DENOMINATOR,
    EVENT_DEFAULT,
    FILTERS,
    GROUP_METRICS,
    MAINTAINER,
    METRIC,
    METRIC_GROUP,
    URLS,
)
from metrics_sync.launchdarkly.wire import MAX_DEPTH, BadJson, decode, depth, kept_depth, named, problem

# For each wire type: a value LaunchDarkly may send, and one it must not.
SAMPLES: dict[Wire, tuple[Any, Any]] = {
    TEXT: ("Order placed", 5),
    FLAG: (True, "yes"),
    NUMBER: (99.5, float("inf")),
    COUNT: (3, -1),
    TEXTS: (["user", "org"], ["user", 1]),
    OBJECTS: ([{"key": "e"}], [{"key": "e"}, "e"]),
    MEMBER: ({"_id": "abc", "email": "a@b.c"}, {"_id": 5}),
    URLS: ([{"kind": "exact", "url": "https://shop.example/"}], [{"kind": "exact", "url": 5}]),
    EVENT_DEFAULT: ({"disabled": True, "value": 0}, {"disabled": "no", "value": 0}),
    GROUP_METRICS: ([{"key": "m1", "nameInGroup": "Step 1"}], {"key": "m1"}),
    MAINTAINER: ({"key": "abc", "_member": {"_id": "abc"}}, "abc"),
    INTEGER: (604800000, 1.5),
    DATA_SOURCE: ({"key": "snowflake", "environmentKey": "production", "_name": "Snowflake"}, {"key": 5}),
    FILTERS: ({"type": "group", "op": "and", "negate": False, "values": [
        {"type": "eventProperty", "attribute": "plan", "op": "in", "values": ["pro", 2.5], "negate": False}]}, "pro"),
    DENOMINATOR: ({"eventName": "visit", "winsorUpperPercentile": 99, "dataSource": {"key": "snowflake"}}, "visit"),
}


@pytest.mark.parametrize("resource", [METRIC, METRIC_GROUP], ids=lambda r: r.kind)
def test_every_typed_field_of_both_resources_is_checked(resource: Resource) -> None:
    assert len(resource.wire_rules) >= 10
    for name, rule in resource.wire_rules.items():
        assert rule in SAMPLES, f"no samples for the wire type of {resource.name} field `{name}`"
        good, bad = SAMPLES[rule]
        assert problem(resource, {"key": "k", name: good}) is None, name
        assert problem(resource, {"key": "k", name: bad}) == f"`{name}` {rule.says}", name
        assert problem(resource, {"key": "k", name: None}) is None  # null is always allowed


@pytest.mark.parametrize("item, reason", [
    ({"key": "m", "isNumeric": "false"}, "`isNumeric` is not true or false"),
    ({"key": "m", "percentileValue": True}, "`percentileValue` is not a number we can use"),  # a bool is not one
    # Larger than any double: refused by name (math.isfinite(10**400) raises OverflowError).
    ({"key": "m", "percentileValue": 10**400}, "`percentileValue` is not a number we can use"),
    ({"key": "m", "winsorLowerPercentile": -(10**400)}, "`winsorLowerPercentile` is not a number we can use"),
    ({"key": "m", "eventDefault": {"disabled": False, "value": 10**400}},
     "`eventDefault.value` is not a number we can use"),
    ({"key": "m", "_version": 1.5}, "`_version` is not a whole number"),
    ({"key": "m", "randomizationUnits": "user"}, "`randomizationUnits` is not a list of text"),
    ({"key": "m", "eventDefault": {"value": "0"}}, "`eventDefault` is not an object of `disabled` (true or false) "
                                                   "and `value` (a number)"),
    ({"key": "m", "_maintainer": "abc"}, "`_maintainer` is not a member"),
    ({"key": "m", "whatever": {"new": "field"}}, None),  # fields the tables do not type are not checked
])
def test_metric_fields(item: dict[str, Any], reason: str | None) -> None:
    assert problem(METRIC, item) == reason


@pytest.mark.parametrize("item, reason", [
    # Reasons from inside a value: the check names the part that is wrong.
    ({"key": "g", "metrics": [{"key": "m1"}, {"key": ".."}]},
     "a metric of the group has no key that follows LaunchDarkly's key pattern"),
    ({"key": "g", "metrics": [{"nameInGroup": "Step"}]},
     "a metric of the group has no key that follows LaunchDarkly's key pattern"),
    ({"key": "g", "metrics": [{"key": "m1", "nameInGroup": 2}]}, "a metric's `nameInGroup` is not text"),
    ({"key": "g", "metrics": ["m1"]}, "`metrics` is not a list of objects"),
    ({"key": "g", "maintainer": {"key": "t", "_member": ["x"]}}, "`maintainer._member` is not a member"),
    ({"key": "g", "maintainer": {"key": 7}}, "`maintainer` is not a member or team"),
    ({"key": "g", "maintainer": {"key": "team-a"}}, None),  # a team has no `_member`
])
def test_metric_group_fields(item: dict[str, Any], reason: str | None) -> None:
    assert problem(METRIC_GROUP, item) == reason


@pytest.mark.parametrize("resource", [METRIC, METRIC_GROUP], ids=lambda r: r.kind)
@pytest.mark.parametrize("item", [{}, {"key": "."}, {"key": ".."}, {"key": "a/b"}, {"key": 5}, {"key": "x" * 257}])
def test_a_key_must_follow_launchdarkly_key_pattern(resource: Resource, item: dict[str, Any]) -> None:
    assert problem(resource, item) == "its key does not follow LaunchDarkly's key pattern"
    assert named(item) == ""  # a malformed key is never repeated in a message


def test_an_item_that_is_not_an_object() -> None:
    assert problem(METRIC, ["key", "m"]) == "an item of the list is not an object"
    assert named({"key": "m1"}) == " `m1`"


def test_decode_takes_strict_json_only() -> None:
    deep = b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)
    assert decode(b'{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    for content, why in [(b'{"a": NaN}', "it holds NaN, which is not JSON"),
                         (b"[Infinity]", "it holds Infinity, which is not JSON"),
                         (b"<html>", "it is not valid JSON"),
                         (b'"\xff"', "it is not UTF-8 text"),
                         (deep, f"it is nested deeper than {MAX_DEPTH} levels"),
                         (b"[" * 100_000 + b"]" * 100_000, f"it is nested deeper than {MAX_DEPTH} levels")]:
        with pytest.raises(BadJson) as bad:
            decode(content)
        assert str(bad.value) == why
    # Without the walk a page is parsed whole: its items' depth is then checked one by one.
    assert depth(decode(deep, walk=False)) == MAX_DEPTH + 1


def test_kept_depth_leaves_out_fields_whose_shape_is_checked() -> None:
    item = {"key": "m", "urls": [{"kind": "exact"}], "_links": {"self": {"href": {"deeper": {}}}}}
    assert kept_depth(item) == 4
    assert kept_depth(item, METRIC.shaped) == 4  # `_links` is not shaped: still measured
    assert kept_depth({"key": "m", "urls": [{"kind": "exact"}]}, METRIC.shaped) == 0
    assert depth([[], {"a": [{}]}]) == 4 and depth("text") == 0


@pytest.mark.parametrize(("name", "value", "says"), [
    ("filters", {"type": "group", "op": "and", "negate": False, "values": ["pro"]},
     "a filter's values are not text, numbers or flags"),
    ("filters", {"type": "eventProperty", "attribute": 5, "values": []}, "a filter's `attribute` is not text"),
    ("dataSource", {"environmentKey": "production"}, "a data source has no `key`"),
    ("denominator", {"eventName": "visit", "filters": {"type": "group", "values": "x"}},
     "`denominator.filters`: a filter's `values` is not a list"),
])
def test_a_bad_tree_says_which_part_is_wrong(name: str, value: Any, says: str) -> None:
    assert problem(METRIC, {"key": "k", name: value}) == says


def test_a_filter_nested_too_deep_is_refused_within_the_depth_walk() -> None:
    node: dict[str, Any] = {"type": "eventProperty", "attribute": "a", "op": "in", "values": ["x"], "negate": False}
    for _ in range(20):
        node = {"type": "group", "op": "and", "negate": False, "values": [node]}
    assert "nested deeper than" in str(problem(METRIC, {"key": "k", "filters": node}))


def test_decode_refuses_a_key_given_twice_in_one_object() -> None:
    with pytest.raises(BadJson, match="it gives the key `tags` twice in one object"):
        decode(b'{"items": [{"key": "m", "tags": ["managed-by-metrics-sync"], "tags": []}]}')
    assert decode(b'{"a": {"k": 1}, "b": {"k": 2}}') == {"a": {"k": 1}, "b": {"k": 2}}  # the same key apart is fine


def test_sorted_json_is_the_same_text_whatever_the_keys_order() -> None:
    """What plan hashes of each definition: compact, keys sorted at every depth, UTF-8."""
    from metrics_sync.launchdarkly.wire import sorted_json

    one = {"b": 1, "a": [{"z": "é", "y": None}], "c": {"k": 1.5, "j": True}}
    other = {"c": {"j": True, "k": 1.5}, "a": [{"y": None, "z": "é"}], "b": 1}
    assert sorted_json(one) == sorted_json(other) == '{"a":[{"y":null,"z":"é"}],"b":1,"c":{"j":true,"k":1.5}}'.encode()
    assert sorted_json(["a", {"b": 2}]) != sorted_json([{"b": 2}, "a"])  # lists keep their order
