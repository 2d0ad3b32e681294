"""The Markdown output stays within what one GitHub issue holds (65,536 characters, shared with the nightly
workflow's drift report, which keeps the first 30,000 characters of it): whole lines, worst first, and how many
more the other outputs list."""

from __future__ import annotations

from metrics_sync.core.findings import Finding
from metrics_sync.health.model import NEVER_SEEN, RUNNING_WITHOUT_EVENTS, Flag, Health, MetricRow
from metrics_sync.output.health import markdown

METRICS = 1_000


def _row(i: int) -> MetricRow:
    key = f"a-rather-long-metric-key-for-the-checkout-team-{i:04d}"
    code = RUNNING_WITHOUT_EVENTS if i == 999 else NEVER_SEEN
    finding = Finding(code, "alert" if i == 999 else "warning", f"LaunchDarkly has never seen an event `{key}` for it",
                      f"metric `{key}` in project `shop`", "send the event, or remove the metric if nothing will",
                      f"metrics/checkout/many-metrics.yaml:{i * 6 + 3}:5")
    return MetricRow("shop", key, key, "custom", "custom conversion binary", key, "", (), finding.source, True, True,
                     False, None, None, (), (), None, None, (Flag(finding, "shop", key),))


def test_a_thousand_findings_fit_one_issue_in_whole_lines_worst_first() -> None:
    rows = sorted((_row(i) for i in range(METRICS)), key=lambda r: r.flags[0].code != RUNNING_WITHOUT_EVENTS)
    health = Health(0, 30, False, tuple(rows), (), tuple(f for r in rows for f in r.flags), METRICS + 3)
    text = markdown(health)
    assert len(text) < 30_000
    lines = text.splitlines()
    findings = [line for line in lines if line.startswith("- **")]
    table = [line for line in lines if line.startswith("| `")]
    assert findings[0].startswith("- **running-without-events**")
    assert f"… and {METRICS - len(findings)} more findings (the JSON and HTML outputs list all)." in lines
    assert f"… and {METRICS - len(table)} more (the JSON and HTML outputs list all)." in lines
    assert all(line.endswith("nothing will") for line in findings)  # whole lines only
    assert "1000 metrics, 0 metric groups: 1 running without events, 999 never seen" in text  # counts all
