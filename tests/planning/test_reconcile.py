"""The one reconcile loop, for metric groups as for metrics: pure cases (definitions + a `ProjectState` -> the
project's plan), the resource hooks, findings as values with kind codes, and reading state that stops when the
run is cancelled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from metrics_sync.core.cancel import Cancelled, CancelSignal
from metrics_sync.core.fields import Resource
from metrics_sync.core.model import Definitions, DesiredGroup, DesiredMetric, Plan, ProjectPlan, SourceRef
from metrics_sync.core.resources import METRIC, METRIC_GROUP
from metrics_sync.definitions.load import load_definitions
from metrics_sync.planning import planfile
from metrics_sync.planning.desired import Desired
from metrics_sync.planning.reconcile import Options, definitions_hashes, plan_project
from metrics_sync.planning.state import Listed, ProjectState, read_state
from metrics_sync.planning.usage import usage_of
from tests.conftest import ROOT

TAG = "managed-by-metrics-sync"
METRICS = [{"key": "a", "name": "A", "kind": "custom", "eventKey": "a", "isNumeric": False},
           {"key": "b", "name": "B", "kind": "custom", "eventKey": "b", "isNumeric": False}]


def _metric(body: dict[str, Any], line: int = 1) -> DesiredMetric:
    return DesiredMetric("shop", body["key"], dict(body), SourceRef("m.yaml", line, 3))


def _group(key: str, metrics: Sequence[str], kind: str = "standard", **fields: Any) -> DesiredGroup:
    return DesiredGroup("shop", key, {"key": key, "name": key.title(), "kind": kind,
                                      "metrics": [{"key": m} for m in metrics], **fields},
                        SourceRef("g.yaml", 10, 5), field_sources={"kind": SourceRef("g.yaml", 12, 11)},
                        metric_sources=tuple(SourceRef("g.yaml", 14 + i, 9) for i in range(len(metrics))))


def _rep(resource: Resource, body: dict[str, Any], owned: bool = True, **extra: Any) -> dict[str, Any]:
    tags = [TAG] if owned else []
    rep = {**body, "tags": tags, "_version": 3, **extra}
    if resource is METRIC_GROUP:
        rep["metrics"] = [{"key": m["key"], "nameInGroup": ""} for m in body.get("metrics", [])]
    return rep


def _plan(metrics: Sequence[DesiredMetric], groups: Sequence[DesiredGroup], remote_metrics: Sequence[dict[str, Any]],
          remote_groups: Sequence[dict[str, Any]] | None, *, prune: bool = False, units: Sequence[str] | None = None,
          maintainer: str | None = "member-1", targets: tuple[str, ...] = (),
          details: dict[str, dict[str, Any]] | None = None) -> ProjectPlan:
    definitions = Definitions({"shop": list(metrics)}, ["m.yaml"], groups={"shop": list(groups)})
    state = ProjectState("shop", {"metric": Listed(tuple(remote_metrics)),
                                  "metric-group": None if remote_groups is None else Listed(tuple(remote_groups),
                                                                                            details or {})},
                         units=None if units is None else tuple(units), maintainer=maintainer,
                         maintainer_problem=None if maintainer else "LaunchDarkly names no member for the token")
    return plan_project(Desired(definitions, "shop", TAG), state, Options(TAG, prune=prune, targets=targets))


DEFINED = [_metric(m) for m in METRICS]
LISTED = [_rep(METRIC, m) for m in METRICS]
GROUP = {"key": "g", "name": "G", "kind": "standard", "metrics": [{"key": "a"}, {"key": "b"}]}


def _summary(p: ProjectPlan) -> dict[str, Any]:
    return {"changes": [(c.action, c.resource, c.key) for c in p.changes], "unchanged_groups": p.unchanged_groups,
            "unmanaged_groups": p.unmanaged_groups, "would_delete": p.would_delete,
            "blocked": [(b.key, b.reason) for b in p.blocked], "refused": [f.kind for f in p.refused]}


@pytest.mark.parametrize("groups, remote, options, expected", [
    # created, with the token's member as maintainer
    ([_group("g", ["a", "b"])], [], {}, {"changes": [("create", "metric-group", "g")]}),
    # equal: unchanged
    ([_group("g", ["a", "b"])], [_rep(METRIC_GROUP, GROUP)], {}, {"unchanged_groups": 1}),
    # another metric order: an update
    ([_group("g", ["b", "a"])], [_rep(METRIC_GROUP, GROUP)], {}, {"changes": [("update", "metric-group", "g")]}),
    # unowned and not defined: counted, never touched
    ([], [_rep(METRIC_GROUP, GROUP, owned=False)], {"prune": True}, {"unmanaged_groups": 1}),
    # managed and not defined: listed without --prune, deleted with it
    ([], [_rep(METRIC_GROUP, GROUP, experimentCount=0)], {}, {"would_delete": ["g"]}),
    ([], [_rep(METRIC_GROUP, GROUP, experimentCount=0)], {"prune": True},
     {"changes": [("delete", "metric-group", "g")]}),
    # a delete cannot be undone: a stopped experiment blocks it, and so does not knowing
    ([], [_rep(METRIC_GROUP, GROUP, experimentCount=1, activeExperimentCount=0)], {"prune": True},
     {"blocked": [("g", "used by 1 experiment")]}),
    ([], [_rep(METRIC_GROUP, GROUP)], {"prune": True},
     {"blocked": [("g", "LaunchDarkly did not say whether experiments use it")]}),
    # refusals leave the group out of the plan
    ([_group("g", ["a", "zzz"])], [], {}, {"refused": ["group-metric-missing"]}),
    ([_group("g", ["a", "b"], kind="funnel")], [_rep(METRIC_GROUP, GROUP)], {}, {"refused": ["kind-change"]}),
    ([_group("g", ["a", "b"])], [], {"maintainer": None}, {"refused": ["maintainer-missing"]}),
    # --target selects groups by key, as it selects metrics
    ([_group("g", ["a", "b"]), _group("h", ["a"])], [], {"targets": ("h",)},
     {"changes": [("create", "metric-group", "h")]}),
])
def test_groups_go_through_the_one_loop(groups: list[DesiredGroup], remote: list[dict[str, Any]],
                                        options: dict[str, Any], expected: dict[str, Any]) -> None:
    want = {"changes": [], "unchanged_groups": 0, "unmanaged_groups": 0, "would_delete": [], "blocked": [],
            "refused": [], **expected}
    targets = options.get("targets", ())
    result = _plan(DEFINED, groups, LISTED, remote, **options)
    assert _summary(result) == want
    assert result.unchanged == (2 if not targets else 0)


def test_a_new_group_names_its_maintainer_and_a_refusal_is_located_at_the_metric() -> None:
    created = _plan(DEFINED, [_group("g", ["a", "b"])], LISTED, []).changes[0]
    assert created.body is not None and created.body["maintainerId"] == "member-1"
    assert next(f for f in created.fields if f.field == "maintainerId").details == ("the access token's member",)
    (refusal,) = _plan(DEFINED, [_group("g", ["a", "zzz"])], LISTED, []).refused
    assert refusal.text() == ("g.yaml:15:9: metric group `g`: metric `zzz` is neither in the definitions nor in "
                              "LaunchDarkly project `shop`; define it, or correct the key")
    (kind,) = _plan(DEFINED, [_group("g", ["a", "b"], kind="funnel")], LISTED, [_rep(METRIC_GROUP, GROUP)]).refused
    assert kind.source == "g.yaml:12:11" and kind.hint == ("give the new definition a new key, and delete the old "
                                                           "metric group with --prune")


def test_a_group_may_not_name_a_metric_this_plan_archives() -> None:
    gone = _rep(METRIC, {"key": "c", "name": "C", "kind": "custom", "eventKey": "c", "isNumeric": False},
                experimentCount=0, activeExperimentCount=0)
    result = _plan(DEFINED, [_group("g", ["a", "c"])], [*LISTED, gone], [], prune=True)
    assert [f.kind for f in result.refused] == ["group-metric-archiving"]
    assert [(c.action, c.key) for c in result.changes] == [("archive", "c")]


def test_an_analysis_unit_the_project_lacks_is_refused_at_its_line() -> None:
    metric = DesiredMetric("shop", "a", {**METRICS[0], "analysisUnits": ["account"]}, SourceRef("m.yaml", 3, 5),
                           field_sources={"analysisUnits": SourceRef("m.yaml", 7, 20)})
    result = _plan([metric], [], [], None, units=["user"])
    assert [(f.kind, f.text()) for f in result.refused] == [(
        "unavailable-unit", "m.yaml:7:20: metric `a`: analysis unit `account` is not a context kind available for "
        "experiments in project `shop` (available: user); make it available in the project's experimentation "
        "settings, or use one of those")]
    assert result.changes == []  # a refused definition is left out of the plan
    assert _plan([metric], [], [], None, units=None).refused == []  # the settings were not read: not checked


def test_a_new_key_beside_one_that_left_is_noted_as_a_rename() -> None:
    renamed = _metric({**METRICS[0], "key": "a2"})
    (change,) = _plan([renamed, DEFINED[1]], [], LISTED, None).changes
    assert [(f.kind, f.severity) for f in change.findings] == [("rename", "note")]
    assert change.warnings[0].text().startswith("`a2` looks like a new name for `a`: LaunchDarkly cannot rename")


def test_warnings_carry_kinds_and_plan_files_keep_them() -> None:
    fields = {**METRICS[0], "unmanagedFields": ["dataSource"]}
    created = _plan([_metric(fields)], [], [], None)
    assert [f.kind for f in created.changes[0].findings] == ["unmanaged-fields-not-sent"]
    semantic = _plan([_metric({**METRICS[0], "unitAggregationType": "sum"})], [],
                     [_rep(METRIC, METRICS[0], experimentCount=2)], None)
    assert [f.kind for f in semantic.changes[0].findings] == ["changes-results"]
    plan = Plan([semantic], False, TAG, "h", "v")
    data = planfile.to_dict(plan)
    assert planfile.from_dict(data) == plan
    # A plan file written before findings were saved as values still reads, from their text.
    del data["projects"][0]["changes"][0]["findings"]
    (old,) = planfile.from_dict(data).projects[0].changes[0].findings
    assert (old.kind, old.severity, old.text()) == ("from-plan-file", "warning",
                                                    semantic.changes[0].findings[0].text())


@pytest.mark.parametrize("rep, archive, delete", [
    ({}, "", "LaunchDarkly did not say whether experiments use it"),
    ({"experimentCount": 0}, "", ""),
    ({"experimentCount": 3, "activeExperimentCount": 0}, "", "used by 3 experiments"),
    ({"experimentCount": 3, "activeExperimentCount": 1}, "used by 1 running experiment", "used by 3 experiments"),
    ({"experimentCount": 2}, "used by 2 experiments (LaunchDarkly did not say whether they are running)",
     "used by 2 experiments"),
    ({"guardedRollouts": [{"flagKey": "f"}], "experiments": []},
     "used by 1 guarded rollout (LaunchDarkly did not say whether they are running)", "used by 1 guarded rollout"),
    ({"activeGuardedRolloutCount": 1, "experimentCount": 0}, "used by 1 running guarded rollout",
     "used by 1 guarded rollout"),
])
def test_one_reading_of_usage_decides_archive_and_delete(rep: dict[str, Any], archive: str, delete: str) -> None:
    usage = usage_of(rep)
    assert usage.blocks(METRIC) == archive
    assert usage.blocks(METRIC_GROUP) == delete


def test_the_definitions_hash_is_the_one_saved_plans_record() -> None:
    """Saved plans record this hash: the same definitions must always hash the same. A plan saved before the
    hash was taken of item digests recorded the whole text's hash (`sha256:`): given such a hash, the
    definitions are hashed that way again, to the very values of then (those the planner computed before
    metrics and groups shared one loop)."""
    definitions = Definitions({"shop": DEFINED}, ["m.yaml"], groups={"shop": [_group("g", ["a", "b"])]})
    example, _ = load_definitions([str(ROOT / "examples" / "metrics")])
    before = {"shop": "sha256:4ee2740b63f9eebe40f368c28b6617c6ba73aa837a983819bc50822953504e19"}
    assert definitions_hashes(definitions, TAG, before) == before
    before_example = {"shop": "sha256:0ade01aadb93a6c9115709e818beaafbb2bea78a0cf5dc46bb16f20cbe346c0f"}
    assert definitions_hashes(example, TAG, before_example) == before_example
    assert definitions_hashes(definitions, TAG) == {
        "shop": "sha256-items:2bc47e97b1dc8167cce6514b4e3de02a009d1507016f53ec3616230aa5afb3df"}
    assert definitions_hashes(example, TAG) == definitions_hashes(example, TAG, {"shop": "sha256-items:0"}) == {
        "shop": "sha256-items:d27241b3eb138d69b12de4f2bdd4c70c8f1b8fc49bf2ecd0301d28e629846c1a"}


class CancelsWhileListing:
    """A fake LaunchDarkly that cancels the run while the metrics are listed, and counts what it is asked."""

    host, read_concurrency = "fake.test", 2

    def __init__(self, cancel: CancelSignal) -> None:
        self.cancel = cancel
        self.asked: list[str] = []

    def list_items(self, resource: Resource, project: str, **_: Any) -> list[dict[str, Any]]:
        self.asked.append(f"list {resource.kind}")
        self.cancel.set()
        return [_rep(METRIC, {"key": "gone", "name": "Gone", "kind": "custom", "eventKey": "g", "isNumeric": False})]

    def get_item(self, resource: Resource, project: str, key: str, expand: Sequence[str] = ()) -> dict[str, Any]:
        self.asked.append(f"get {key}")
        return {}

    def experiment_units(self, project: str) -> list[str]:
        return ["user"]

    def experiment(self, project: str, environment: str, key: str) -> dict[str, Any]:
        return {}

    def my_member_id(self) -> tuple[str | None, str | None]:
        return "member-1", None


def test_reading_starts_no_new_read_once_the_run_is_cancelled() -> None:
    cancel = CancelSignal()
    api = CancelsWhileListing(cancel)
    definitions = Definitions({"shop": DEFINED}, ["m.yaml"])
    with pytest.raises(Cancelled):
        read_state(api, "shop", definitions, ownership_tag=TAG, prune=True, cancel=cancel)
    assert "get gone" not in api.asked  # the retire candidate's read was never started


def test_the_marker_of_an_item_in_sync_reads_as_the_mapping_it_stands_for() -> None:
    from metrics_sync.planning.state import IN_SYNC, InSync

    marker = InSync("checkout", 7)
    assert dict(marker) == {"key": "checkout", "_version": 7, IN_SYNC: True}
    assert marker.get("tags") is None and marker.get("archived") is None and "name" not in marker
    with pytest.raises(KeyError):
        marker["name"]
    assert not hasattr(marker, "__dict__")  # slotted: 100,000 of them in a big project in sync


def test_what_a_keep_function_returns_is_checked_unless_it_vouches_for_it() -> None:
    import httpx

    from metrics_sync.core.errors import ApiError
    from metrics_sync.emulator import EmulatorApp
    from metrics_sync.launchdarkly.client import Client
    from metrics_sync.planning.state import InSync
    from tests.conftest import TOKEN
    from tests.launchdarkly.test_concurrent_reads import seeded

    transport = httpx.WSGITransport(app=EmulatorApp(seeded(120, 5), token=TOKEN))
    with Client("http://127.0.0.1", TOKEN, transport=transport) as client:
        markers = client.list_items(METRIC, "shop", keep=lambda rep: InSync(str(rep["key"]), rep.get("_version")))
        assert len(markers) == 120 and all(isinstance(m, InSync) for m in markers)
        with pytest.raises(ApiError, match="malformed metric"):  # a dict it returns is checked as ever
            client.list_items(METRIC, "shop", keep=lambda rep: {**rep, "tags": "not a list"})
