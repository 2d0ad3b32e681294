"""The table of metric fields (metrics_sync/core/fields.py) against the published schema: they cannot drift."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics_sync.core.fields import NO_DEFAULT, Resource
from metrics_sync.core.resources import METRIC, RESOURCES
from metrics_sync.definitions.schema import load_schema

SCHEMA = load_schema()
PROPERTIES: dict[str, Any] = SCHEMA["$defs"]["metric"]["properties"]
RULES: list[dict[str, Any]] = SCHEMA["$defs"]["metric"]["allOf"]
KINDS: list[str] = PROPERTIES["kind"]["enum"]
# Schema properties that are not managed fields: the identity, the deprecated alias of analysisUnits (read
# through the table's `read`), informational fields export writes for reference, and what the schema refuses
# (LaunchDarkly's deprecated, ignored `winsorExcludeImputed`).
REFUSED = {"winsorExcludeImputed"}
NOT_FIELDS = {"key", "randomizationUnits", "unmanagedFields"} | REFUSED
# A metric of each shape, to ask the table and the schema the same questions.
SHAPES = {
    "custom": {"key": "k", "kind": "custom", "eventKey": "e"},
    "numeric": {"key": "k", "kind": "custom", "eventKey": "e", "isNumeric": True, "unit": "ms",
                "successCriteria": "LowerThanBaseline"},
    "percentile": {"key": "k", "kind": "custom", "eventKey": "e", "isNumeric": True, "unit": "ms",
                   "successCriteria": "LowerThanBaseline", "analysisType": "percentile", "percentileValue": 95},
    "pageview": {"key": "k", "kind": "pageview", "urls": [{"kind": "exact", "url": "https://x.test"}]},
    "click": {"key": "k", "kind": "click", "selector": "#b", "urls": [{"kind": "exact", "url": "https://x.test"}]},
    "trace": {"key": "k", "kind": "trace", "traceQuery": "service.name = \"checkout\""},
    "trace-numeric": {"key": "k", "kind": "trace", "traceQuery": "q", "isNumeric": True, "unit": "ms",
                      "successCriteria": "LowerThanBaseline", "traceValueLocation": "duration"},
    "distinct": {"key": "k", "kind": "custom", "eventKey": "e", "unitAggregationType": "count_distinct",
                 "unitAggregationField": "order_id"},
}


def _rules_for(metric: dict[str, Any]) -> list[dict[str, Any]]:
    """The `then` parts of the schema's per-kind rules whose `if` holds for `metric`."""
    found = []
    for rule in RULES:
        condition = rule["if"]
        # As in JSON Schema, `properties` constrain only the properties that are present.
        holds = all(name in metric for name in condition.get("required", [])) and all(
            metric[name] == spec["const"] for name, spec in condition.get("properties", {}).items() if name in metric)
        if holds:
            found.append(rule["then"])
        elif "else" in rule:
            found.append(rule["else"])
    return found


def test_every_schema_field_is_in_the_table_and_back() -> None:
    assert set(METRIC.names) == set(PROPERTIES) - NOT_FIELDS


def test_defaults_agree_with_the_schema() -> None:
    for name, spec in PROPERTIES.items():
        if "default" in spec and name not in NOT_FIELDS:
            assert METRIC.field(name).default_for({}) == spec["default"], name


def test_compare_kinds_agree_with_the_schema_types() -> None:
    for f in METRIC.fields:
        spec = PROPERTIES[f.name]
        if f.compare == "set":
            assert spec["type"] == "array" and spec["uniqueItems"] and spec["items"]["type"] == "string", f.name
        elif f.compare == "list":
            assert spec["type"] == "array", f.name
        elif f.compare == "object":
            assert spec["type"] == "object", f.name
        else:
            assert spec.get("type") in ("string", "boolean", "integer", "number") or "enum" in spec, f.name


def test_the_kinds_the_table_knows_are_the_schemas() -> None:
    mentioned = {k for f in METRIC.fields if f.kinds for k in f.kinds}
    assert mentioned <= set(KINDS)
    assert {shape["kind"] for shape in SHAPES.values()} == set(KINDS)


@pytest.mark.parametrize("shape", SHAPES)
def test_fields_a_kind_does_not_use_are_forbidden_by_the_schema(shape: str) -> None:
    metric = SHAPES[shape]
    canonical = METRIC.canonical(metric)
    forbidden = {name for then in _rules_for(metric) for name, spec in then.get("properties", {}).items()
                 if spec.get("not") == {}}
    fixed = {name: spec["const"] for then in _rules_for(metric) for name, spec in then.get("properties", {}).items()
             if "const" in spec}
    unused = {f.name for f in METRIC.fields if f.name not in canonical and not f.assigned_by_server}
    assert forbidden == unused, shape
    for name, value in fixed.items():  # e.g. isNumeric: false for pageview and click
        if name in canonical:
            assert canonical[name] == value, (shape, name)


@pytest.mark.parametrize("shape", SHAPES)
def test_fields_the_schema_requires_are_required_in_the_table(shape: str) -> None:
    metric = SHAPES[shape]
    canonical = METRIC.canonical(metric)
    required = {name for then in _rules_for(metric) for name in then.get("required", [])}
    flagged = {f.name for f in METRIC.fields if f.required is not None and f.required(canonical)}
    assert required == flagged, shape


def test_export_writes_only_what_differs_from_the_defaults() -> None:
    canonical = METRIC.canonical(SHAPES["custom"])
    assert METRIC.document(canonical) == {"name": "k", "kind": "custom", "eventKey": "e"}
    percentile = METRIC.document(METRIC.canonical(SHAPES["percentile"]))
    assert percentile["eventDefault"] == {"disabled": True} and percentile["percentileValue"] == 95


def test_server_assigned_fields_are_compared_only_when_the_yaml_sets_them() -> None:
    remote = METRIC.canonical({**SHAPES["custom"], "analysisUnits": ["user"], "_maintainer": {"_id": "a" * 24}})
    desired = METRIC.canonical(SHAPES["custom"])
    assert "analysisUnits" in remote and "maintainerId" in remote
    assert "analysisUnits" not in METRIC.compared(desired, remote)
    assert "maintainerId" not in METRIC.compared(desired, remote)
    assert all(f.default is not NO_DEFAULT or not f.assigned_by_server or f.name == "maintainerId"
               for f in METRIC.fields)


def test_the_group_table_and_the_group_schema_name_the_same_fields() -> None:
    from metrics_sync.core.resources import METRIC_GROUP

    group = SCHEMA["$defs"]["metricGroup"]
    assert set(group["properties"]) - {"key"} == set(METRIC_GROUP.names)
    assert set(group["required"]) - {"key"} <= {f.name for f in METRIC_GROUP.fields if f.export == "always"}
    assert METRIC_GROUP.field("kind").compare == "scalar" and set(group["properties"]["kind"]["enum"]) == {
        "funnel", "standard"}


def test_a_group_canonical_form_keeps_order_and_drops_standard_step_names() -> None:
    from metrics_sync.core.resources import METRIC_GROUP

    funnel = METRIC_GROUP.canonical({"name": "F", "kind": "funnel", "metrics": [
        {"key": "b", "nameInGroup": "B", "_links": {}}, {"key": "a", "nameInGroup": "A", "name": "A metric"}]})
    assert funnel["metrics"] == [{"key": "b", "nameInGroup": "B"}, {"key": "a", "nameInGroup": "A"}]
    standard = METRIC_GROUP.canonical({"name": "S", "kind": "standard", "metrics": [
        {"key": "b", "nameInGroup": ""}, {"key": "a"}], "maintainer": {"key": "m", "_member": {"_id": "x" * 24}}})
    assert standard["metrics"] == [{"key": "b"}, {"key": "a"}] and standard["maintainerId"] == "x" * 24
    body = METRIC_GROUP.post_body("s", standard)
    assert body["metrics"] == [{"key": "b", "nameInGroup": ""}, {"key": "a", "nameInGroup": ""}]
    assert "description" not in body and body["tags"] == []


def test_the_defaults_a_file_may_set_are_the_fields_marked_so() -> None:
    """`defaults` in the schema and `Field.in_defaults`/`aliases` in the table name the same fields."""
    allowed = set(SCHEMA["properties"]["defaults"]["properties"])
    marked = {name for f in METRIC.fields if f.in_defaults for name in (f.name, *f.aliases)}
    assert allowed == marked


def test_every_alias_is_a_deprecated_schema_property() -> None:
    for alias in METRIC.aliases:
        assert PROPERTIES[alias].get("deprecated") is True, alias
    assert NOT_FIELDS - {"key", "unmanagedFields"} - REFUSED == set(METRIC.aliases)


def test_a_refused_property_is_deprecated_and_says_what_to_use() -> None:
    for name in REFUSED:
        spec = PROPERTIES[name]
        assert spec["not"] == {} and spec["deprecated"] is True and "winsorIncludeImputed" in spec["x-hint"]
        assert SCHEMA["$defs"]["denominator"]["properties"][name] == spec


def test_the_denominator_schema_names_denominator_post_fields() -> None:
    from metrics_sync.core.resources import DENOMINATOR_FIELDS

    assert set(SCHEMA["$defs"]["denominator"]["properties"]) - REFUSED == set(DENOMINATOR_FIELDS)


def test_write_only_fields_are_posted_never_compared_or_exported() -> None:
    numeric = {**SHAPES["numeric"], "valueColumn": "amount"}
    form = METRIC.canonical(numeric)
    assert METRIC.write_only == ("valueColumn",)
    assert METRIC.post_body("k", form)["valueColumn"] == "amount"
    assert "valueColumn" not in METRIC.compared(form, METRIC.canonical(SHAPES["numeric"]))
    assert "valueColumn" not in METRIC.document(form)


def test_hosted_data_source_and_false_flags_are_the_same_as_none() -> None:
    plain = METRIC.canonical(SHAPES["numeric"])
    hosted = METRIC.canonical({**SHAPES["numeric"], "winsorIncludeImputed": False,
                               "dataSource": {"key": "launchdarkly-hosted", "_name": "LaunchDarkly"}})
    assert plain == hosted and plain["dataSource"] is None
    warehouse = METRIC.canonical({**SHAPES["numeric"], "dataSource": {"key": "wh", "_name": "Snowflake"}})
    assert warehouse["dataSource"] == {"key": "wh"}


def test_member_ids_compare_in_either_case_and_team_keys_are_kept() -> None:
    from metrics_sync.core.resources import METRIC_GROUP

    upper = METRIC.canonical({**SHAPES["custom"], "maintainerId": "569FDEADBEEF1644FACECAFE"})
    assert upper["maintainerId"] == "569fdeadbeef1644facecafe"
    team = METRIC_GROUP.canonical({"name": "G", "kind": "standard", "metrics": [],
                                   "maintainer": {"key": "Growth-Team", "kind": "team",
                                                  "_team": {"key": "Growth-Team", "name": "Growth"}}})
    assert team["maintainerId"] == "Growth-Team"


@pytest.mark.parametrize("resource", ["metric", "metric-group"])
def test_every_field_has_a_wire_type_and_no_field_is_also_server_owned(resource: str) -> None:
    from metrics_sync.core.resources import RESOURCES

    table = RESOURCES[resource]
    assert [f.name for f in table.fields if f.wire is None] == []
    assert not set(table.names) & table.server_owned
    assert set(table.wire_rules) >= set(table.names) | set(table.aliases)


def test_positions_read_as_the_mapping_of_source_refs_they_pack() -> None:
    """A metric's located fields are kept packed (`Positions`); read, they are the SourceRefs they were, also
    after the trip from a worker process (pickle)."""
    import pickle

    from metrics_sync.core.model import Positions, SourceRef

    places = {"kind": (3, 5), "eventKey": (70_000, 1)}
    positions = Positions("m.yaml", places)
    assert positions == {"kind": SourceRef("m.yaml", 3, 5), "eventKey": SourceRef("m.yaml", 70_000, 1)}
    assert list(positions) == ["kind", "eventKey"] and len(positions) == 2
    assert positions.get("analysisUnits") is None and "analysisUnits" not in positions
    assert str(positions.get("eventKey", SourceRef("other.yaml"))) == "m.yaml:70000:1"
    again = pickle.loads(pickle.dumps(positions))
    assert again == positions
    assert again._names is Positions("n.yaml", {"kind": (1, 1), "eventKey": (2, 2)})._names  # one tuple of names


# Values a field may hold, on either side: what LaunchDarkly sends, what YAML gives, and what neither should.
_VALUES = st.one_of(
    st.none(), st.just(""), st.just([]), st.just({}), st.booleans(), st.integers(-3, 3), st.just(0.0),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(["user", "launchdarkly-hosted", "x", " "]),
    st.lists(st.sampled_from(["user", "b", "a", 1]), max_size=3),
    st.dictionaries(st.sampled_from(["key", "_name", "disabled", "value", "environmentKey"]),
                    st.one_of(st.none(), st.just(""), st.booleans(), st.integers(0, 2), st.just("launchdarkly-hosted")),
                    max_size=3))


@st.composite
def _representations(draw: st.DrawFn, resource: Resource) -> dict[str, Any]:
    # (a kind the table does not name goes through the whole table: both sides then agree by construction)
    kinds = sorted({k for f in resource.fields if f.kinds for k in f.kinds}) or ["standard", "funnel"]
    names = [f.name for f in resource.fields] + sorted(resource.aliases) + ["_maintainer", "maintainer"]
    raw = draw(st.dictionaries(st.sampled_from(names), _VALUES, max_size=len(names)))
    raw["kind"] = draw(st.sampled_from(kinds))
    return raw


@pytest.mark.parametrize("resource", RESOURCES.values(), ids=RESOURCES.keys())
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_each_kinds_own_canonical_function_gives_what_the_whole_table_gives(resource: Resource,
                                                                           data: st.DataObject) -> None:
    raw = data.draw(_representations(resource))
    try:
        expected: Any = resource._canonical_any(raw)
    except Exception as exc:  # junk a normalizer refuses: refused the same way
        expected = type(exc)
    try:
        got: Any = resource.canonical(raw)
    except Exception as exc:
        got = type(exc)
    assert got == expected
