"""Match the events the code sends against the events the custom metrics measure.

Event keys are matched across projects: the code does not say which project's SDK key it runs with, and an
event sent once is counted by every environment's metrics that measure it. Pageview and click metrics have
no event key and are left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from metrics_sync.coderefs.scanner import Ref, Scan
from metrics_sync.core.model import Definitions, DesiredMetric, Problem

SHOWN_PLACES = 5  # places listed per event in text; JSON lists all
SEND_HINT = "send it with the SDK's track call; if a wrapper sends it, add the wrapper to codeRefs.aliases"


@dataclass(frozen=True)
class MetricRefs:
    metric: DesiredMetric
    refs: tuple[Ref, ...]  # where the code sends its event; () when nowhere

    @property
    def event(self) -> str:
        return str(self.metric.fields["eventKey"])

    @property
    def where(self) -> str:
        """Where the metric's eventKey is written (file:line:col)."""
        return str(self.metric.field_sources.get("eventKey", self.metric.source))


@dataclass(frozen=True)
class Report:
    scan: Scan
    metrics: tuple[MetricRefs, ...]  # each custom metric, in definitions order (projects sorted)
    unmeasured: tuple[tuple[str, tuple[Ref, ...]], ...]  # events sent that no metric measures, sorted
    dynamic: tuple[Ref, ...]  # track calls whose key is not known before run time
    without_event: int = 0  # pageview and click metrics: no event key, left out

    @property
    def unsent(self) -> list[MetricRefs]:
        return [m for m in self.metrics if not m.refs]


def custom_metrics(definitions: Definitions) -> Iterator[DesiredMetric]:
    for project in sorted(definitions.metrics):
        for metric in definitions.metrics[project]:
            if isinstance(metric.fields.get("eventKey"), str):
                yield metric


def match(definitions: Definitions, scan: Scan) -> Report:
    sent: dict[str, list[Ref]] = {}
    dynamic: list[Ref] = []
    for ref in scan.refs:
        if ref.event is None:
            dynamic.append(ref)
        else:
            sent.setdefault(ref.event, []).append(ref)
    metrics = tuple(MetricRefs(m, tuple(sent.get(str(m.fields["eventKey"]), ()))) for m in custom_metrics(definitions))
    measured = {m.event for m in metrics}
    unmeasured = tuple((event, tuple(refs)) for event, refs in sorted(sent.items()) if event not in measured)
    without_event = definitions.metric_count - len(metrics)
    return Report(scan, metrics, unmeasured, tuple(dynamic), without_event)


def unsent_problems(report: Report, *, strict: bool) -> list[Problem]:
    """A warning (an error when `strict`) at each metric whose event no code sends."""
    folders = ", ".join(report.scan.folders)
    maybe = (f"; {len(report.dynamic)} track call(s) pass a key known only at run time "
             f"(`metrics-sync refs` lists them)" if report.dynamic else "")
    problems = []
    for item in report.unsent:
        source = item.metric.field_sources.get("eventKey", item.metric.source)
        problems.append(Problem(
            source.file, source.line, source.column,
            f"no code under {folders} sends the event `{item.event}` that metric `{item.metric.key}` measures, "
            f"so it will have no data{maybe}",
            hint=SEND_HINT,
            severity="error" if strict else "warning"))
    return problems
