"""Property tests: for random valid metric sets and random remote states, plan is deterministic, the listing's
in-sync fast path decides as the full diff does, and plan → apply → plan is empty (with and without prune)."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from metrics_sync.apply.executor import apply_plan
from metrics_sync.core.model import Definitions, DesiredMetric, Plan, SourceRef
from metrics_sync.core.resources import METRIC
from metrics_sync.definitions.load import _merge_defaults
from metrics_sync.definitions.schema import check_document
from metrics_sync.definitions.yaml_reader import YamlDocument
from metrics_sync.emulator import EmulatorApp, Store
from metrics_sync.planning import planfile
from metrics_sync.planning.desired import Desired
from metrics_sync.planning.diffing import compare, in_sync
from metrics_sync.planning.make import make_plan
from metrics_sync.planning.reconcile import Options, plan, plan_project
from metrics_sync.planning.state import IN_SYNC, Listed, ProjectState, read_state
from tests.conftest import TOKEN, make_client

OWNER = "managed-by-metrics-sync"
KEYS = [f"k{i}" for i in range(12)]
TAGS = ["web", "kpi", "checkout", "mobile"]

names = st.text(alphabet="abcdefghij XYZ-", min_size=1, max_size=12).filter(lambda s: s.strip() == s)
tags = st.lists(st.sampled_from(TAGS), unique=True, max_size=3)


_leaf = st.one_of(
    st.fixed_dictionaries({"type": st.just("eventProperty"), "attribute": st.sampled_from(["plan", "amount"]),
                           "op": st.sampled_from(["in", "greaterThan"]), "negate": st.booleans(),
                           "values": st.lists(st.sampled_from(["pro", "free", 1, 2.5, 0.125]), min_size=1, max_size=3,
                                              unique=True)}),
    st.fixed_dictionaries({"type": st.just("contextAttribute"), "contextKind": st.sampled_from(["user", "org"]),
                           "attribute": st.just("country"), "op": st.just("in"), "negate": st.booleans(),
                           "values": st.lists(st.sampled_from(["JP", "DE", "US"]), min_size=1, max_size=3,
                                              unique=True)}))
# An event filter tree: conditions, and groups of them nested a few deep.
filter_trees = st.recursive(_leaf, lambda members: st.fixed_dictionaries({
    "type": st.just("group"), "op": st.sampled_from(["and", "or"]), "negate": st.booleans(),
    "values": st.lists(members, min_size=1, max_size=3)}), max_leaves=5)


@st.composite
def winsorization(draw: st.DrawFn) -> dict[str, Any]:
    """Winsorization of a numeric metric: either bound or both (upper above lower), maybe with imputed zeros."""
    out: dict[str, Any] = {}
    lower, upper = draw(st.sampled_from([None, 1, 2.5])), draw(st.sampled_from([None, 95, 99.5]))
    if lower is not None:
        out["winsorLowerPercentile"] = lower
    if upper is not None:
        out["winsorUpperPercentile"] = upper
    if out and draw(st.booleans()):
        out["winsorIncludeImputed"] = draw(st.booleans())
    return out


@st.composite
def metric_body(draw: st.DrawFn, key: str) -> dict[str, Any]:
    """A valid metric of any supported kind, as YAML (and the API) would hold it: filters, winsorization,
    warehouse-native data sources, ratios and trace metrics included."""
    shape = draw(st.sampled_from(["binary", "count", "numeric", "percentile", "pageview", "click", "distinct",
                                  "trace", "trace-numeric"]))
    body: dict[str, Any] = {"key": key, "name": draw(names)}
    if draw(st.booleans()):
        body["description"] = draw(names)
    if shape in ("binary", "count"):
        body.update(kind="custom", eventKey=draw(st.sampled_from(["a", "b"])), isNumeric=False)
        if shape == "count":
            body["unitAggregationType"] = "sum"
        if draw(st.booleans()):
            body["successCriteria"] = "LowerThanBaseline"
    elif shape in ("numeric", "percentile"):
        body.update(kind="custom", eventKey="v", isNumeric=True, unit=draw(st.sampled_from(["ms", "USD"])),
                    successCriteria=draw(st.sampled_from(["HigherThanBaseline", "LowerThanBaseline"])))
        if shape == "percentile":
            body.update(analysisType="percentile", percentileValue=draw(st.integers(0, 100)),
                        eventDefault={"disabled": True})
        body.update(draw(winsorization()))
    elif shape == "distinct":
        body.update(kind="custom", eventKey="o", isNumeric=False, unitAggregationType="count_distinct",
                    unitAggregationField=draw(st.sampled_from(["buyer_id", "order_id"])))
    elif shape.startswith("trace"):
        body.update(kind="trace", traceQuery=draw(st.sampled_from(['service.name = "api"', "http.status >= 500"])),
                    isNumeric=shape == "trace-numeric")
        if shape == "trace-numeric":
            body.update(traceValueLocation="duration", unit="ms", successCriteria="LowerThanBaseline")
            body.update(draw(winsorization()))
    else:
        urls = draw(st.lists(st.sampled_from([{"kind": "exact", "url": "https://x.test/"},
                                              {"kind": "substring", "substring": "/cart"},
                                              {"kind": "regex", "pattern": "^/p/[0-9]+$"}]),
                             min_size=1, max_size=2, unique_by=lambda u: u["kind"]))
        body.update(kind=shape, urls=urls)
        if shape == "click":
            body["selector"] = draw(st.sampled_from(["#buy", ".cta"]))
        if draw(st.booleans()):
            body["unitAggregationType"] = "sum"
    if body["kind"] == "custom" and draw(st.booleans()):  # warehouse-native, maybe a ratio
        body["dataSource"] = draw(st.sampled_from([{"key": "snowflake"}, {"key": "bq", "environmentKey": "prod"}]))
        if draw(st.booleans()):
            body["denominator"] = {"eventName": draw(st.sampled_from(["visit", "session"])),
                                   **({"filters": draw(filter_trees)} if draw(st.booleans()) else {})}
    if draw(st.integers(0, 2)) == 0:
        body["filters"] = draw(filter_trees)
    body_tags = draw(tags)
    if body_tags:
        body["tags"] = body_tags
    if draw(st.booleans()):
        body["analysisUnits"] = draw(st.sampled_from([["user"], ["organization", "user"]]))
    return body


@st.composite
def world(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
    """(desired metrics, remote metrics, prune)."""
    desired_keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=8))
    desired = [draw(metric_body(k)) for k in desired_keys]
    remote = []
    for key in draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=8)):
        mine = next((m for m in desired if m["key"] == key), None)
        if mine is not None and draw(st.booleans()):
            rep = dict(mine)  # the same metric, maybe drifted
            if draw(st.booleans()):
                rep["name"] = draw(names)
            if draw(st.booleans()):
                rep["tags"] = draw(tags)
            if draw(st.integers(0, 3)) == 0:
                rep["filters"] = draw(filter_trees)  # a filter edited (or added) in the UI
        else:
            rep = draw(metric_body(key))
            if mine is not None:
                assume(rep["kind"] == mine["kind"])  # a kind change is refused, not planned
        if draw(st.booleans()):
            rep["tags"] = [*rep.get("tags", []), OWNER]
        if draw(st.integers(0, 9)) == 0:
            rep["experimentCount"] = 2
        remote.append(rep)
    return desired, remote, draw(st.booleans())


def desired_metrics(bodies: list[dict[str, Any]]) -> list[DesiredMetric]:
    doc = YamlDocument("props.yaml", {"project": "shop", "metrics": bodies})
    assert check_document(doc) == [], bodies  # the generator only makes valid definitions
    return [DesiredMetric("shop", b["key"], _merge_defaults(b, {}), SourceRef("props.yaml")) for b in bodies]


def definitions_of(bodies: list[dict[str, Any]]) -> Definitions:
    return Definitions({"shop": desired_metrics(bodies)}, ["props.yaml"])


def listed_whole(store: Store) -> ProjectState:
    """The project as LaunchDarkly lists it, every metric whole (no fast path)."""
    reps = make_client(EmulatorApp(store, token=TOKEN)).list_items(METRIC, "shop")
    return ProjectState("shop", {"metric": Listed(tuple(reps))})


def seeded(remote_bodies: list[dict[str, Any]]) -> Store:
    store = Store(["shop"])
    store.seed({"projects": {"shop": remote_bodies}, "experimentationSettings": {"shop": ["user", "organization"]}})
    return store


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(world(), st.randoms(use_true_random=False))
def test_plan_is_deterministic(case: tuple[list[dict[str, Any]], list[dict[str, Any]], bool],
                               shuffler: random.Random) -> None:
    desired, remote_bodies, prune = case
    state = listed_whole(seeded(remote_bodies))
    options = Options(ownership_tag=OWNER, prune=prune)
    first = plan(definitions_of(desired), {"shop": state}, options)
    shuffled_remote, shuffled_desired = list(state.items("metric")), list(desired)
    shuffler.shuffle(shuffled_remote)
    shuffler.shuffle(shuffled_desired)
    shuffled = ProjectState("shop", {"metric": Listed(tuple(shuffled_remote))})
    second = plan(definitions_of(shuffled_desired), {"shop": shuffled}, options)
    assert planfile.to_json(first) == planfile.to_json(second)


@SETTINGS
@given(world())
def test_the_in_sync_fast_path_and_the_full_diff_agree(
        case: tuple[list[dict[str, Any]], list[dict[str, Any]], bool]) -> None:
    """Plan as production reads (state.read_state: what the listing finds equal to its definition is kept as a
    marker only) and from every metric whole: the same plan, and the marked metrics are exactly those the full
    diff leaves unchanged."""
    desired, remote_bodies, prune = case
    store = seeded(remote_bodies)
    definitions = definitions_of(desired)
    options = Options(ownership_tag=OWNER, prune=prune)
    fast = read_state(make_client(EmulatorApp(store, token=TOKEN)), "shop", definitions, ownership_tag=OWNER,
                      prune=prune)
    # The same reads (units, the details of what may be archived), but every metric whole.
    whole = replace(fast, listed={"metric": Listed(listed_whole(store).items("metric"), fast.details("metric"))})
    by_fast = plan_project(Desired(definitions, "shop", OWNER), fast, options)
    by_whole = plan_project(Desired(definitions, "shop", OWNER), whole, options)
    assert planfile.to_json(Plan([by_fast], prune, OWNER, "", "")) == \
        planfile.to_json(Plan([by_whole], prune, OWNER, "", ""))
    marked = {str(r["key"]) for r in fast.items("metric") if r.get(IN_SYNC)}
    planned = {c.key for c in by_whole.changes} | {r.text().split("`")[1] for r in by_whole.refused}
    remote_keys = {str(r["key"]) for r in whole.items("metric")}
    assert marked == {m["key"] for m in desired if m["key"] in remote_keys and m["key"] not in planned}


@SETTINGS
@given(world())
def test_plan_apply_plan_is_empty(case: tuple[list[dict[str, Any]], list[dict[str, Any]], bool]) -> None:
    desired, remote_bodies, prune = case
    store = seeded(remote_bodies)
    definitions = definitions_of(desired)
    first = make_plan(make_client(EmulatorApp(store, token=TOKEN)), definitions, ownership_tag=OWNER, prune=prune)
    assert not first.refused
    result = apply_plan(first, make_client(EmulatorApp(store, token=TOKEN)))
    assert not result.failed, result.results
    again = make_plan(make_client(EmulatorApp(store, token=TOKEN)), definitions, ownership_tag=OWNER, prune=prune)
    assert again.changes == [], [(c.action, c.key, c.fields) for _, c in again.changes]
    if prune:
        assert again.projects[0].would_archive == []


@SETTINGS
@given(world(), st.booleans())
def test_in_sync_decides_as_the_whole_comparison(case: tuple[list[dict[str, Any]], list[dict[str, Any]], bool],
                                                 adopt: bool) -> None:
    """diffing.in_sync (its shortcut for items plainly equal) against compare(...).in_sync, on every metric both
    sides have, as LaunchDarkly lists it and as plan keeps it."""
    desired, remote_bodies, _ = case
    forms = Desired(definitions_of(desired), "shop", OWNER)["metric"]
    for rep in listed_whole(seeded(remote_bodies)).items("metric"):
        after = forms.get(str(rep["key"]))
        for seen in ([rep, METRIC.kept(rep)] if after is not None else []):
            assert in_sync(METRIC, after, seen, adopt=adopt, tag=OWNER) == \
                compare(METRIC, after, seen, adopt=adopt, tag=OWNER).in_sync
