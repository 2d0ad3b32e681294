"""Data-driven planner cases: desired YAML + remote metrics -> expected changes and exact patch ops.

Each `fixtures/planner/<case>.yaml` holds `desired` (a definitions file, project `shop`), `remote`
(metrics as created in LaunchDarkly; the emulator turns them into real API representations, with
server defaults), optional `options`, and `expect`. Every case is then applied to that emulator and
planned again, which must show no changes (apply-then-plan is empty).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from metrics_sync.apply.executor import apply_plan
from metrics_sync.core.model import DesiredMetric, Plan, ProjectPlan, SourceRef
from metrics_sync.core.resources import METRIC
from metrics_sync.definitions.load import load_definitions
from metrics_sync.emulator import EmulatorApp, Store
from metrics_sync.planning.planner import PlanOptions, plan_project
from tests.conftest import FIXTURES, TOKEN, make_client
from tests.ldspec import ITEM, validate_request

CASES = sorted((FIXTURES / "planner").glob("*.yaml"))
TAG = "managed-by-metrics-sync"


def _plan(case: dict[str, Any], tmp_path: Path, store: Store) -> ProjectPlan:
    definitions_file = tmp_path / "metrics.yaml"
    definitions_file.write_text(yaml.safe_dump({"project": "shop", **case["desired"]}))
    definitions, problems = load_definitions([str(definitions_file)])
    assert not [p for p in problems if p.severity == "error"], problems
    remote = make_client(EmulatorApp(store, token=TOKEN)).list_items(METRIC, "shop")
    options = PlanOptions(ownership_tag=TAG, prune=case.get("options", {}).get("prune", False))
    return plan_project("shop", definitions.metrics.get("shop", []), remote, options)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_planner_case(path: Path, tmp_path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    expect = case["expect"]
    store = Store(["shop"])
    store.seed({"projects": {"shop": case["remote"]},
                "experimentationSettings": {"shop": ["user", "organization", "device"]}})
    result = _plan(case, tmp_path, store)

    by_action: dict[str, dict[str, Any]] = {"create": {}, "update": {}, "archive": {}}
    for change in result.changes:
        by_action[change.action][change.key] = change
    assert set(by_action["create"]) == set(expect.get("create", {}))
    assert set(by_action["update"]) == set(expect.get("update", {}))
    assert set(by_action["archive"]) == set(expect.get("archive", {}))
    for key, body in expect.get("create", {}).items():
        assert by_action["create"][key].body == body
        validate_request("POST", "/api/v2/metrics/shop", body)
    for key, label in expect.get("types", {}).items():
        assert next(c for c in result.changes if c.key == key).metric_type == label
    for action in ("update", "archive"):
        for key, want in expect.get(action, {}).items():
            change = by_action[action][key]
            assert change.patch == want["patch"]
            validate_request("PATCH", ITEM.replace("{projectKey}", "shop").replace("{metricKey}", key), change.patch)
            assert change.adopt == want.get("adopt", False)
            if "remoteVersion" in want:
                assert change.remote_version == want["remoteVersion"]
            if "fields" in want:
                assert [f.field for f in change.fields] == want["fields"]
            assert list(change.warnings) == want.get("warnings", [])
            for field, details in want.get("details", {}).items():
                assert list(next(f for f in change.fields if f.field == field).details) == details
    assert result.unchanged == expect.get("unchanged", 0)
    assert result.unmanaged == expect.get("unmanaged", 0)
    assert result.would_archive == expect.get("would_archive", [])
    assert {b.key: b.reason for b in result.blocked} == expect.get("blocked", {})
    # Refusals start with the place in the YAML (`…/metrics.yaml:LINE:COL: `).
    assert [r.split("metrics.yaml:", 1)[1].split(": ", 1)[1] for r in result.refused] == expect.get("refused", [])

    # Apply the plan to the same emulator: planning again must show no changes.
    if result.refused:
        return
    client = make_client(EmulatorApp(store, token=TOKEN))
    outcome = apply_plan(Plan([result], prune=False, ownership_tag=TAG, base_url_host="", tool_version=""), client)
    assert not outcome.failed, outcome.results
    assert all(not r.not_kept for r in outcome.results), outcome.results
    again = _plan(case, tmp_path, store)
    assert again.changes == []


def test_a_conversion_made_numeric_sends_success_criteria_when_launchdarkly_had_none() -> None:
    """Under the reading where LaunchDarkly does not fill in successCriteria for conversions, the PATCH that
    makes one numeric must still carry it (LaunchDarkly requires it for numeric metrics)."""
    desired = [DesiredMetric("shop", "v", {"key": "v", "name": "V", "kind": "custom", "eventKey": "e",
                                            "isNumeric": True, "unit": "ms"}, SourceRef("m.yaml", 3, 5))]
    remote = [{"key": "v", "name": "V", "kind": "custom", "eventKey": "e", "isNumeric": False, "_version": 1,
               "tags": [TAG]}]
    (change,) = plan_project("shop", desired, remote, PlanOptions(ownership_tag=TAG)).changes
    assert change.patch[-1] == {"op": "add", "path": "/successCriteria", "value": "HigherThanBaseline"}
