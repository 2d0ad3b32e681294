"""The scaling chart `make bench` draws (benchmarks/chart.py): every series drawn, log axes in order."""

from __future__ import annotations

import re
import sys

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

from chart import series_from, svg  # benchmarks/ is a folder of scripts, put on the path above


def test_the_chart_draws_measured_and_computed_lines() -> None:
    data = {"latency_ms": 150, "validate": {"1000": 0.2, "10000": 0.65}, "plan": {"1000": 0.4, "10000": 1.7},
            "plan_latency": {"1000": 1.0, "10000": 5.1}, "eppo": {"10000": 10.0}}
    series = series_from(data)
    assert [s["name"] for s in series] == ["plan, 150 ms per request", "plan, loopback", "validate",
                                           "sequential pages, 150 ms", "one GET per metric, 150 ms",
                                           "eppo-metrics-sync --dryrun"]
    sequential = next(s for s in series if s["name"].startswith("sequential"))
    assert sequential["points"] == [[1000, 3.0], [10000, 30.0]]
    drawn = svg(series, "title")
    assert drawn.startswith("<svg") and drawn.count("<polyline") == 5  # eppo is a single point
    for s in series:
        assert s["name"] in drawn
    # Larger numbers are further right and higher up.
    first = re.search(r'<polyline points="([^"]+)"', drawn)
    assert first is not None
    (x1, y1), (x2, y2) = [tuple(map(float, p.split(","))) for p in first.group(1).split()]
    assert x2 > x1 and y2 < y1
