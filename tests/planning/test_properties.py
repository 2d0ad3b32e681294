"""Property tests: for random valid metric sets and random remote states, plan is deterministic, and
plan → apply → plan is empty (with and without prune)."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from metrics_sync.apply.executor import apply_plan
from metrics_sync.core.model import DesiredMetric, SourceRef
from metrics_sync.core.resources import METRIC
from metrics_sync.definitions.load import _merge_defaults
from metrics_sync.definitions.schema import check_document
from metrics_sync.definitions.yaml_reader import YamlDocument
from metrics_sync.emulator import EmulatorApp, Store
from metrics_sync.planning import planfile
from metrics_sync.planning.planner import PlanOptions, plan
from tests.conftest import TOKEN, make_client

OWNER = "managed-by-metrics-sync"
KEYS = [f"k{i}" for i in range(12)]
TAGS = ["web", "kpi", "checkout", "mobile"]

names = st.text(alphabet="abcdefghij XYZ-", min_size=1, max_size=12).filter(lambda s: s.strip() == s)
tags = st.lists(st.sampled_from(TAGS), unique=True, max_size=3)


@st.composite
def metric_body(draw: st.DrawFn, key: str) -> dict[str, Any]:
    """A valid metric of any supported kind, as YAML (and the API) would hold it."""
    shape = draw(st.sampled_from(["binary", "count", "numeric", "percentile", "pageview", "click"]))
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


def remote_of(store: Store) -> list[dict[str, Any]]:
    return make_client(EmulatorApp(store, token=TOKEN)).list_items(METRIC, "shop")


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(world(), st.randoms(use_true_random=False))
def test_plan_is_deterministic(case: tuple[list[dict[str, Any]], list[dict[str, Any]], bool],
                               shuffler: random.Random) -> None:
    desired, remote_bodies, prune = case
    store = Store(["shop"])
    store.seed({"projects": {"shop": remote_bodies}, "experimentationSettings": {"shop": ["user", "organization"]}})
    remote = remote_of(store)
    options = PlanOptions(ownership_tag=OWNER, prune=prune)
    first = plan({"shop": desired_metrics(desired)}, {"shop": remote}, options)
    shuffled_remote, shuffled_desired = list(remote), list(desired)
    shuffler.shuffle(shuffled_remote)
    shuffler.shuffle(shuffled_desired)
    second = plan({"shop": desired_metrics(shuffled_desired)}, {"shop": shuffled_remote}, options)
    assert planfile.to_json(first) == planfile.to_json(second)


@SETTINGS
@given(world())
def test_plan_apply_plan_is_empty(case: tuple[list[dict[str, Any]], list[dict[str, Any]], bool]) -> None:
    desired, remote_bodies, prune = case
    store = Store(["shop"])
    store.seed({"projects": {"shop": remote_bodies}, "experimentationSettings": {"shop": ["user", "organization"]}})
    options = PlanOptions(ownership_tag=OWNER, prune=prune)
    metrics = {"shop": desired_metrics(desired)}
    first = plan(metrics, {"shop": remote_of(store)}, options)
    assert not first.refused
    result = apply_plan(first, make_client(EmulatorApp(store, token=TOKEN)))
    assert not result.failed, result.results
    again = plan(metrics, {"shop": remote_of(store)}, options)
    assert again.changes == [], [(c.action, c.key, c.fields) for _, c in again.changes]
    if prune:
        assert again.projects[0].would_archive == []
