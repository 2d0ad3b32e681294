"""How many calls a health run of 1,000 metrics makes (docs/performance.md gives the figure): the list pages, one
read per metric, the holders; counted by the emulator and stated by the run itself."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from metrics_sync.emulator import EmulatorApp, Store
from tests.conftest import ENV, TOKEN, FakeClock, run_cli

METRICS = 1_000


def test_a_thousand_metrics_take_one_read_each_plus_the_lists(tmp_path: Path) -> None:
    clock = FakeClock()
    store = Store(["shop"], clock=clock)
    metrics = [{"key": f"metric-{i:04d}", "name": f"Metric {i}", "kind": "custom", "eventKey": f"event-{i % 400}",
                "isNumeric": False, "tags": ["managed-by-metrics-sync"]} for i in range(METRICS)]
    store.seed({"projects": {"shop": metrics},
                "metricGroups": {"shop": [{"key": f"group-{g}", "name": f"Group {g}", "kind": "funnel", "tags": [],
                                           "maintainerId": "569fdeadbeef1644facecafe",
                                           "metrics": [{"key": f"metric-{g * 3 + s:04d}", "nameInGroup": f"Step {s}"}
                                                       for s in range(3)]}
                                          for g in range(20)]},
                "experiments": {"shop": [{"key": f"exp-{g}", "status": "running", "metricGroups": [f"group-{g}"]}
                                         for g in range(10)]},
                "events": {"shop": {f"event-{e}": "-1h" for e in range(300)}}})
    (tmp_path / "metrics").mkdir()
    lines = ["project: shop", "metrics:"]
    for m in metrics:
        lines += [f"  - key: {m['key']}", f"    name: {m['name']}", "    kind: custom",
                  f"    eventKey: {m['eventKey']}", "    isNumeric: false"]
    (tmp_path / "metrics" / "many.yaml").write_text("\n".join(lines) + "\n")
    app = EmulatorApp(store, token=TOKEN, clock=clock)
    result = run_cli("health", "--format", "json", env=ENV, cwd=tmp_path, transport=httpx.WSGITransport(app=app),
                     clock=clock)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["calls"] == app.stats.total
    # 20 metric list pages, 1 group list page, 1,000 metric reads, 10 group reads (the used ones), holders
    # (release policies, environments, each environment's holdouts): no more.
    assert report["calls"] == 20 + 1 + METRICS + 10 + 1 + 1 + 2, app.stats.requests
    # Events 300-399 (metrics 300-399 and 700-799) were never seen.
    assert report["summary"]["findings"]["never-seen"] == 200
    assert report["summary"]["findings"]["running-without-events"] == 0
