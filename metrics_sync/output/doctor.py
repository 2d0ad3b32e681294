"""The doctor's findings as a table: assumption → observed → metrics-sync copes. Pure."""

from __future__ import annotations

from metrics_sync.doctor.checks import Report
from metrics_sync.output.escape import shown


def table(report: Report) -> str:
    mode = "read and write checks" if report.write else "read-only; --write adds the checks that create a metric"
    lines = [f"Checking LaunchDarkly at {report.base_url_host}, project {report.project} ({mode})", ""]
    if report.access_problem and not report.checks:
        return "\n".join(shown(line) for line in [*lines, f"Nothing was checked: {report.access_problem}."]) + "\n"
    width = max((len(c.assumption) for c in report.checks), default=10)
    width = min(width, 70)
    observed = max((len(c.observed) for c in report.checks), default=8)
    observed = min(observed, 40)
    lines.append(f"     {'id':<4} {'assumption'.ljust(width)}  {'observed'.ljust(observed)}  metrics-sync copes")
    for c in report.checks:
        mark = "ok" if c.holds else ("FAIL" if c.needed else "--")
        lines.append(f"{mark:>4} {c.id:<4} {_cut(c.assumption, width).ljust(width)}  "
                     f"{_cut(c.observed, observed).ljust(observed)}  {c.copes}")
    lines.append("")
    if report.cleanup:
        lines.append(f"Clean-up: {report.cleanup}.")
    broken = [c for c in report.checks if c.broken]
    if report.access_problem:  # the account's setup, not LaunchDarkly's contract: nothing to report as a bug
        lines.append(f"Not all checked: {report.access_problem}.")
    elif broken:
        lines.append(f"Broken: {len(broken)} assumption(s) metrics-sync needs: " + ", ".join(c.id for c in broken)
                     + ". See docs/launchdarkly-contract.md, and attach the report to a bug report.")
    else:
        lines.append(f"All {sum(c.needed for c in report.checks)} assumptions metrics-sync needs hold; "
                     "the others show which reading of LaunchDarkly's contract this account follows.")
    return "\n".join(shown(line) for line in lines) + "\n"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
