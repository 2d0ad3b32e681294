"""Load the definitions: find the files, read and check each one, and turn them into desired metrics and
metric groups.

`load_definitions` is what validate, plan and apply call. The checks that need more than one metric or
file live here: project resolution, duplicate metric and group keys within a project (across files), a
metric named twice in a group, funnel steps that cannot be funnel steps, and the `randomizationUnits`
deprecation. Everything is collected; nothing stops at the first problem. Whether a metric a group names
exists is known only with LaunchDarkly's answer: plan checks it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from metrics_sync.core import event_filters
from metrics_sync.core.confusables import CHECKED_FIELDS, lookalike
from metrics_sync.core.confusables import message as confusable_message
from metrics_sync.core.gc_tuning import gc_paused
from metrics_sync.core.model import Definitions, DesiredGroup, DesiredMetric, Positions, Problem, SourceRef
from metrics_sync.core.resources import METRIC
from metrics_sync.definitions.schema import check_document
from metrics_sync.definitions.yaml_reader import (
    DEFAULT_MAX_FILE_BYTES,
    YamlDocument,
    describe_type,
    find_definition_files,
    format_path,
    load_yaml_file,
)

DEPRECATED_UNITS_HINT = "rename `randomizationUnits` to `analysisUnits` (LaunchDarkly deprecated the old name)"
# Reading YAML is CPU-bound, but a worker's results come back pickled, which costs about as much as making them
# since the fast YAML reader (block_yaml.py). Measured on 2 CPUs (docs/performance.md, issue 25): 50,000 metrics
# (12 MB) take 1.7 s of CPU in one process and 3.4 s in two, 100,000 (24 MB) 3.3 s and 7.4 s, and longer in wall
# time too. So one process well beyond the sizes measured; the pool only for far bigger inputs.
PARALLEL_MIN_BYTES = 64_000_000
PARALLEL_MIN_FILES = 4

# (project, where the project is named, metrics, metric groups, problems)
FileResult = tuple[str | None, str | None, list[DesiredMetric], list[DesiredGroup], list[Problem]]


def check_file(path: Path, display: str, default_project: str | None, max_file_bytes: int) -> FileResult:
    """Everything that can be known from one file alone: its project, its metrics, its problems."""
    with gc_paused():  # about a third of the load time on 10,000 metrics otherwise
        doc, problems = load_yaml_file(path, display=display, max_bytes=max_file_bytes)
        if doc is None:
            return None, None, [], [], problems
        read_problems = {p.path for p in problems}  # e.g. `.inf`: reported once, not again as a type error
        problems.extend(p for p in check_document(doc) if p.path not in read_problems or p.path is None)
        problems.extend(_yaml_version_warnings(doc, problems))
        project, metrics, more = _desired_metrics(doc, default_project)
        groups, group_problems = _desired_groups(doc, project)
        named = doc.data.get("project") if isinstance(doc.data, dict) else None
        if isinstance(named, str) and named == project:
            line, col = doc.position(("project",))
            where = f"{doc.file}:{line}:{col}"
        else:
            where = None  # from --project or the config
        return project, where, metrics, groups, problems + more + group_problems


def _yaml_version_warnings(doc: YamlDocument, problems: list[Problem]) -> list[Problem]:
    """Scalars YAML 1.1 (metrics-sync) and YAML 1.2 (editors) read differently, so the editor and the CLI
    never silently disagree; a value already reported as an error is not reported twice."""
    flagged = {p.path for p in problems}
    warnings = []
    for path, (source, ours, theirs) in doc.yaml12_differences.items():
        where = format_path(path)
        if where in flagged:
            continue
        line, col = doc.position(path)
        if isinstance(ours, bool):
            hint = f"write {str(ours).lower()}"
        elif isinstance(ours, str) or isinstance(theirs, str):
            hint = f'quote it: "{source}"'
        else:
            hint = f"write {ours}, which both read the same"
        warnings.append(Problem(doc.file, line, col,
                                f"YAML versions read `{source}` differently: metrics-sync (YAML 1.1) reads "
                                f"{describe_type(ours)}, editors (YAML 1.2) read {describe_type(theirs)}",
                                path=where or None, hint=hint, severity="warning"))
    return warnings


def _check_all(files: list[tuple[Path, str]], default_project: str | None, max_file_bytes: int,
               parallel: bool | None) -> list[FileResult]:
    """Check every file, in worker processes when there is enough YAML for that to pay (`parallel=None`
    decides by size; True/False force it, for tests). The results are the same either way, in file order."""
    jobs = [(path, display, default_project, max_file_bytes) for path, display in files]
    workers = min(os.cpu_count() or 1, 8, len(files))
    if parallel is None:
        total = 0
        for path, _ in files:
            with contextlib.suppress(OSError):  # unreadable files are reported by check_file
                total += path.stat().st_size
        parallel = workers >= 2 and len(files) >= PARALLEL_MIN_FILES and total >= PARALLEL_MIN_BYTES
    if not parallel or workers < 2:
        return [check_file(*job) for job in jobs]
    # `spawn` exists on every platform (`fork` does not on Windows, and forking a process that runs other
    # threads can copy a held lock); workers import this module and build their own schema validator.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(check_file, *zip(*jobs, strict=True), chunksize=max(1, len(jobs) // (workers * 4))))


def load_definitions(
    paths: Sequence[str],
    *,
    default_project: str | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    base: Path | None = None,
    parallel: bool | None = False,
    default_project_source: str = "--project",
    paths_source: str | None = None,
) -> tuple[Definitions, list[Problem]]:
    """Read and check all definitions under `paths`.

    Returns the desired metrics (built from every metric with a usable key) and every problem found,
    errors and warnings, sorted by file, line and column. Callers must not act on the metrics when any
    problem is an error. `parallel=None` lets large inputs be checked in worker processes; that starts new
    interpreters (`spawn`), so only a program's entry point should ask for it (the CLI does).
    """
    # The collector is paused once for the whole load (each resumption costs a collection): reading, checking
    # and merging make millions of objects that form no cycles, and a collection in the middle walks them all.
    with gc_paused():
        return _load(paths, default_project, max_file_bytes, base, parallel, default_project_source, paths_source)


def _load(paths: Sequence[str], default_project: str | None, max_file_bytes: int, base: Path | None,
          parallel: bool | None, default_project_source: str,
          paths_source: str | None) -> tuple[Definitions, list[Problem]]:
    files, problems = find_definition_files(paths, base, paths_source=paths_source)
    metrics: dict[str, list[DesiredMetric]] = {}
    groups: dict[str, list[DesiredGroup]] = {}
    first_seen: dict[tuple[str, str], SourceRef] = {}
    first_group: dict[tuple[str, str], SourceRef] = {}
    sources: dict[str, str] = {}
    for project, where, file_metrics, file_groups, file_problems in _check_all(files, default_project,
                                                                               max_file_bytes, parallel):
        problems.extend(file_problems)
        if project is not None:
            metrics.setdefault(project, [])  # a project whose file lists no metrics still gets planned (prune)
            sources.setdefault(project, where or default_project_source)
        _keep_first(file_groups, groups, first_group, "metric group", problems)
        _keep_first(file_metrics, metrics, first_seen, "metric", problems)
    problems.extend(_funnel_step_problems(metrics, groups))
    problems = sorted(set(problems), key=Problem.sort_key)
    return Definitions(metrics=metrics, files=[d for _, d in files], project_sources=sources,
                       groups=groups), problems


def _keep_first(items: list[Any], kept: dict[str, list[Any]], first: dict[tuple[str, str], SourceRef], noun: str,
                problems: list[Problem]) -> None:
    """Add each item (a DesiredMetric or DesiredGroup) to `kept` under its project, unless its key is already
    defined in that project: then a problem that points at both."""
    for item in items:
        seen_key = (item.project, item.key)
        if seen_key in first:
            problems.append(Problem(
                item.source.file, item.source.line, item.source.column,
                f"duplicate {noun} key `{item.key}` in project `{item.project}` (first defined at {first[seen_key]})",
                hint=f"{noun} keys must be unique within a project; rename or remove one"))
            continue
        first[seen_key] = item.source
        kept.setdefault(item.project, []).append(item)


def _funnel_step_problems(metrics: dict[str, list[DesiredMetric]],
                          groups: dict[str, list[DesiredGroup]]) -> list[Problem]:
    """A funnel's steps must measure conversions averaged per unit: LaunchDarkly's docs ("Metric analysis"):
    "For metrics you plan to use in funnel experiments, you must select Average". Checked here for the
    metrics the definitions hold; plan checks the ones only LaunchDarkly holds."""
    problems = []
    for project, project_groups in groups.items():
        by_key = {m.key: m for m in metrics.get(project, [])}
        for group in project_groups:
            if group.fields.get("kind") != "funnel":
                continue
            entries = group.fields.get("metrics")
            for index, entry in enumerate(entries if isinstance(entries, list) else []):
                metric = by_key.get(str(entry.get("key"))) if isinstance(entry, dict) else None
                if metric is None or metric.fields.get("unitAggregationType", "average") == "average":
                    continue
                at = group.metric_sources[index] if index < len(group.metric_sources) else group.source
                problems.append(Problem(
                    at.file, at.line, at.column,
                    f"funnel `{group.key}`: step `{metric.key}` aggregates units by "
                    f"`{metric.fields.get('unitAggregationType')}`; funnel steps must use `average`",
                    path=f"{group.path}.metrics[{index}].key",
                    hint=f"set `unitAggregationType: average` on `{metric.key}` (defined at {metric.source}), or use "
                         f"a standard group"))
    return problems


def _desired_metrics(
    doc: YamlDocument, default_project: str | None
) -> tuple[str | None, list[DesiredMetric], list[Problem]]:
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), list):
        return None, [], []
    project = data.get("project") if isinstance(data.get("project"), str) else default_project
    if project is None:
        if not data["metrics"] and not data.get("metricGroups"):
            return None, [], []
        line, col = doc.position(("metrics",), key=True)
        return None, [], [Problem(
            doc.file, line, col, "no project for these metrics",
            hint="add `project: <key>` to the file, pass --project, or set `project` in metrics-sync.yaml",
        )]
    raw_defaults = data.get("defaults")
    defaults: dict[str, Any] = raw_defaults if isinstance(raw_defaults, dict) else {}
    metrics: list[DesiredMetric] = []
    problems: list[Problem] = []
    shared: dict[str, list[Any]] = {}  # (_merge_defaults)
    if "randomizationUnits" in defaults:
        problems.append(_deprecated(doc, ("defaults", "randomizationUnits")))
    for index, raw in enumerate(data["metrics"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("key"), str) or not raw["key"]:
            continue
        path = ("metrics", index)
        line, col = doc.position(path)
        if "randomizationUnits" in raw:
            problems.append(_deprecated(doc, (*path, "randomizationUnits")))
        problems.extend(_cross_field_problems(doc, path, raw))
        problems.extend(_lookalikes(doc, path, raw))
        fields = _merge_defaults(raw, defaults, shared)
        adopt = data.get("adopt") is not False
        metrics.append(DesiredMetric(project, raw["key"], fields, SourceRef(doc.file, line, col), adopt,
                                     _field_sources(doc, path, raw, fields)))
    return project, metrics, problems


def _desired_groups(doc: YamlDocument, project: str | None) -> tuple[list[DesiredGroup], list[Problem]]:
    data = doc.data
    if project is None or not isinstance(data, dict) or not isinstance(data.get("metricGroups"), list):
        return [], []
    groups: list[DesiredGroup] = []
    problems: list[Problem] = []
    adopt = data.get("adopt") is not False
    for index, raw in enumerate(data["metricGroups"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("key"), str) or not raw["key"]:
            continue
        path = ("metricGroups", index)
        line, col = doc.position(path)
        listed = raw.get("metrics")
        entries: list[Any] = listed if isinstance(listed, list) else []
        metric_sources = tuple(SourceRef(doc.file, *doc.position((*path, "metrics", i, "key")))
                               for i in range(len(entries)))
        seen: dict[str, int] = {}
        for i, entry in enumerate(entries):
            key = entry.get("key") if isinstance(entry, dict) else None
            if not isinstance(key, str):
                continue
            if key in seen:
                at = metric_sources[i]
                problems.append(Problem(doc.file, at.line, at.column,
                                        f"metric `{key}` is in metric group `{raw['key']}` twice "
                                        f"(first as item {seen[key] + 1})",
                                        path=format_path((*path, "metrics", i, "key")),
                                        hint="a group holds each metric once; remove the repeat"))
            else:
                seen[key] = i
        problems.extend(_lookalikes(doc, path, raw))
        field_sources = {name: SourceRef(doc.file, *doc.position((*path, name))) for name in raw}
        groups.append(DesiredGroup(project, raw["key"], dict(raw), SourceRef(doc.file, line, col), adopt,
                                   field_sources, metric_sources, format_path(path)))
    return groups, problems


# The metric fields a file's `defaults` may set, and those whose problems point at their own line (found by plan,
# with LaunchDarkly's answer; the others point at the metric): the field table says which (Field.in_defaults,
# Field.located). Kept to few: a position per field of every metric costs time and memory on big files.
INHERITED = tuple((f.name, (f.name, *f.aliases), f.in_defaults) for f in METRIC.fields if f.in_defaults or f.aliases)
LOCATED = tuple((f.name, (f.name, *f.aliases)) for f in METRIC.fields if f.located)
ALIASES = tuple(METRIC.aliases)


def _first(values: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:  # a loop, not a generator: this runs for every metric
        value = values.get(name)
        if value:
            return value
    return None


def _written(values: dict[str, Any], names: tuple[str, ...]) -> str | None:
    """The first of `names` (a field and its aliases) that `values` holds."""
    for name in names:  # a loop, not a generator: this runs for every metric
        if name in values:
            return name
    return None


def _field_sources(doc: YamlDocument, path: tuple[str | int, ...], raw: dict[str, Any],
                   fields: dict[str, Any]) -> Positions:
    """Where each located field of a metric is written: its own key (or alias), else the `defaults` it inherits."""
    places = {}
    defaults = doc.data.get("defaults") or {}
    for name, names in LOCATED:
        if name not in fields:
            continue
        own = _written(raw, names)
        at = (*path, own) if own else ("defaults", _written(defaults, names) or name)
        places[name] = doc.position(at)
    return Positions(doc.file, places)


def _merge_defaults(raw: dict[str, Any], defaults: dict[str, Any],
                    shared: dict[str, list[Any]] | None = None) -> dict[str, Any]:
    """The metric's fields with the file's defaults merged in (see the schema's `defaults`), aliases folded into
    the field's own name. `shared`: lists already made from these defaults (a file's metrics share them)."""
    if shared is None:
        shared = {}
    fields = dict(raw)
    for alias in ALIASES:
        fields.pop(alias, None)
    for name, names, how in INHERITED:
        own = _first(raw, names)
        if how == "union" and isinstance(defaults.get(name), list):
            mine = raw.get(name)
            if isinstance(mine, list):
                fields[name] = _union([*defaults[name], *mine])
            else:  # the defaults' list alone: one list for every metric of the file (fields are never mutated)
                fields[name] = shared.setdefault(name, _union(defaults[name]))
        elif own is not None:
            fields[name] = own
        elif how and defaults and (inherited := _first(defaults, names)) is not None:
            fields[name] = inherited
    return fields


def _union(items: list[Any]) -> list[Any]:
    """The items, each once, in order. A list the schema refused (a tag that is itself a list) is kept as it is:
    its error is reported, and nothing is planned from it."""
    try:
        return list(dict.fromkeys(items))
    except TypeError:
        return items


# "Not yet implemented" in LaunchDarkly's spec (MetricPost.windowStartOffset/windowEndOffset).
WINDOW_HINT = "LaunchDarkly's API documents measurement windows as not yet implemented; remove it, or keep it for later"


def _cross_field_problems(doc: YamlDocument, path: tuple[str | int, ...], raw: dict[str, Any]) -> list[Problem]:
    """Rules across fields of one metric (and of its denominator) the schema cannot say: winsorization bounds in
    order, filter numbers LaunchDarkly can store, and measurement windows LaunchDarkly ignores today."""
    found = []

    def add(at: tuple[str | int, ...], message: str, hint: str, severity: str = "error") -> None:
        line, col = doc.position(at)
        found.append(Problem(doc.file, line, col, message, path=format_path(at), hint=hint,
                             severity="warning" if severity == "warning" else "error"))

    denominator = raw.get("denominator")
    for where, part in ((path, raw), ((*path, "denominator"), denominator)):
        if not isinstance(part, dict):
            continue
        lower, upper = part.get("winsorLowerPercentile"), part.get("winsorUpperPercentile")
        if isinstance(lower, (int, float)) and isinstance(upper, (int, float)) and _is_number(lower) \
                and _is_number(upper) and upper <= lower:
            add((*where, "winsorUpperPercentile"), f"`winsorUpperPercentile` ({upper}) must be greater than "
                f"`winsorLowerPercentile` ({lower})", "the upper bound caps the highest values, the lower the lowest")
        for at, message, hint in event_filters.problems(part.get("filters"), (*where, "filters")):
            add(at, message, hint)
    for name in ("windowStartOffset", "windowEndOffset"):
        if name in raw:
            add((*path, name), f"`{name}` has no effect: LaunchDarkly ignores it today", WINDOW_HINT, "warning")
    return found


def _lookalikes(doc: YamlDocument, path: tuple[str | int, ...], raw: dict[str, Any]) -> list[Problem]:
    """A warning for each key, event key or name that may read as other text (core/confusables.py)."""
    found: list[Problem] = []
    for name, identifier in CHECKED_FIELDS:
        value = raw.get(name)
        if not isinstance(value, str) or value.isascii():  # the fast path: nearly every value
            continue
        suspicious = lookalike(value, identifier=identifier)
        if suspicious is not None:
            line, col = doc.position((*path, name))
            found.append(Problem(doc.file, line, col, confusable_message(name, value, suspicious),
                                 path=format_path((*path, name)), hint=suspicious.hint(), severity="warning"))
    return found


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _deprecated(doc: YamlDocument, path: tuple[str | int, ...]) -> Problem:
    line, col = doc.position(path, key=True)
    return Problem(doc.file, line, col, "`randomizationUnits` is deprecated", path=format_path(path),
                   hint=DEPRECATED_UNITS_HINT, severity="warning")
