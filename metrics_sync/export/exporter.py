"""Turn LaunchDarkly's metrics and metric groups into definition files that plan clean: `metrics-sync export`.

Pure: API representations in, file names and texts out. For every metric it writes only what differs
from the defaults (the canonical form of fields.py, so a plan right after the export shows no
changes), in a stable field order. What the schema cannot express is never dropped silently:
  * fields metrics-sync does not manage (any LaunchDarkly adds after the field table was written) are kept
    under `unmanagedFields` and reported;
  * metrics it cannot represent at all (a kind or an aggregation it does not know) are reported and left out;
    `valueColumn`, which LaunchDarkly never returns, cannot be exported;
  * archived metrics are left out unless asked for (then written with `archived: true`).
Metric groups go to their own file (`metric-groups.yaml`, or the single file), in key order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from metrics_sync.core.errors import MetricsSyncError
from metrics_sync.core.resources import METRIC, METRIC_GROUP
from metrics_sync.definitions.schema import check_document, load_schema
from metrics_sync.definitions.yaml_reader import YamlDocument, definition_file_name, parse_yaml_text
from metrics_sync.export import yaml_writer

GROUPS_FILE = "metric-groups.yaml"


@dataclass(frozen=True)
class ExportOptions:
    project: str
    ownership_tag: str
    single_file: bool = False
    include_archived: bool = False
    adopt: bool = False
    tags: tuple[str, ...] = ()
    prefix: str = ""
    schema_ref: str = "metrics.schema.json"
    tool_version: str = ""


@dataclass
class ExportResult:
    files: dict[str, str] = field(default_factory=dict)  # file name -> YAML text
    counts: dict[str, int] = field(default_factory=dict)  # file name -> metrics in it
    exported: int = 0
    archived_skipped: list[str] = field(default_factory=list)
    filtered_out: int = 0
    unsupported: list[tuple[str, str]] = field(default_factory=list)  # (key, why)
    unmanaged: list[tuple[str, list[str]]] = field(default_factory=list)  # (key, field names)
    groups: int = 0  # metric groups exported
    filtered_groups: int = 0  # metric groups left out by --tag/--prefix


def _unsupported(rep: Mapping[str, Any]) -> str | None:
    """Why a metric cannot be written as definitions: a value of an enumerated field the schema does not know
    (the schema's enums are what the definitions can say)."""
    properties = load_schema()["$defs"]["metric"]["properties"]
    for name in ("kind", "unitAggregationType", "analysisType"):
        value = rep.get(name)
        if value is not None and value not in properties[name]["enum"]:
            return f"{name} {value} is not supported yet"
    return None


def _unmanaged_fields(rep: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in rep.items():
        if name in METRIC.server_owned or name in METRIC.names or name in METRIC.aliases or value in (None, [], {}):
            continue
        out[name] = value
    return dict(sorted(out.items()))


def metric_document(rep: Mapping[str, Any], ownership_tag: str) -> dict[str, Any]:
    """One metric as the YAML should define it: canonical, defaults left out (the field table decides),
    the key first and fields metrics-sync does not manage last."""
    out: dict[str, Any] = {"key": rep["key"], **METRIC.document(METRIC.canonical(rep), leave_out=[ownership_tag])}
    unmanaged = _unmanaged_fields(rep)
    if unmanaged:
        out["unmanagedFields"] = unmanaged
    return out


def _group(doc: Mapping[str, Any], ownership_tag: str, options: ExportOptions) -> str:
    if options.single_file:
        return definition_file_name(options.project)
    tags = [t for t in doc.get("tags", []) if t != ownership_tag]
    return definition_file_name(sorted(tags)[0] if tags else "untagged")


def group_document(rep: Mapping[str, Any], ownership_tag: str) -> dict[str, Any]:
    """One metric group as the YAML should define it."""
    return {"key": rep["key"], **METRIC_GROUP.document(METRIC_GROUP.canonical(rep), leave_out=[ownership_tag])}


def render_file(metrics: Sequence[Mapping[str, Any]], options: ExportOptions, group: str,
                metric_groups: Sequence[Mapping[str, Any]] = ()) -> str:
    parts = [f"{len(metrics)} metric{'s' if len(metrics) != 1 else ''}"] if metrics or not metric_groups else []
    if metric_groups:
        parts.append(f"{len(metric_groups)} metric group{'s' if len(metric_groups) != 1 else ''}")
    counted = " and ".join(parts)
    lines = [
        f"# yaml-language-server: $schema={options.schema_ref}",
        "#",
        f"# Exported from LaunchDarkly project `{options.project}` by metrics-sync {options.tool_version}.",
        f"# {counted}" + (f" tagged `{group}`." if group else "."),
        f"project: {yaml_writer.scalar(options.project)}",
    ]
    if not options.adopt:
        lines += [
            "# adopt: false keeps these metrics as they are in LaunchDarkly: metrics-sync shows their drift and",
            "# applies your edits, but does not add its ownership tag (so --prune never archives them). Remove",
            "# this line to hand them over to metrics-sync; the next apply adds the tag.",
            "adopt: false",
        ]
    lines.append("metrics:" if metrics else "metrics: []")
    for index, metric in enumerate(metrics):
        if index:
            lines.append("")
        lines.extend(yaml_writer.sequence([metric], 2))
    if metric_groups:
        if metrics:
            lines.append("")
        lines.append("metricGroups:")
        for index, metric_group in enumerate(metric_groups):
            if index:
                lines.append("")
            lines.extend(yaml_writer.sequence([metric_group], 2))
    return "\n".join(lines) + "\n"


def export(reps: Sequence[Mapping[str, Any]], options: ExportOptions,
           group_reps: Sequence[Mapping[str, Any]] = ()) -> ExportResult:
    result = ExportResult()
    metric_groups = _group_documents(group_reps, options, result)
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rep in sorted(reps, key=lambda r: str(r.get("key"))):
        key = str(rep.get("key"))
        tags = set(rep.get("tags") or [])
        if not key.startswith(options.prefix) or not set(options.tags) <= tags:
            result.filtered_out += 1
            continue
        if rep.get("archived") and not options.include_archived:
            result.archived_skipped.append(key)
            continue
        why = _unsupported(rep)
        if why:
            result.unsupported.append((key, why))
            continue
        doc = metric_document(rep, options.ownership_tag)
        problems = check_document(YamlDocument(key, {"project": options.project, "metrics": [doc]}))
        if problems:  # e.g. a tag or name LaunchDarkly accepted but the schema does not
            result.unsupported.append((key, problems[0].message))
            continue
        if "unmanagedFields" in doc:
            result.unmanaged.append((key, list(doc["unmanagedFields"])))
        groups[_group(doc, options.ownership_tag, options)].append(doc)
        result.exported += 1
    if metric_groups and options.single_file:
        groups.setdefault(definition_file_name(options.project), [])
    for name in sorted(groups):
        group = "" if options.single_file or name == "untagged.yaml" else name.removesuffix(".yaml")
        # The groups' own file; a metric tag `metric-groups` names it too: the two share it, never replace.
        in_file = metric_groups if options.single_file or name == GROUPS_FILE else []
        text = render_file(groups[name], options, group, in_file)
        _check_reads_back(name, text, groups[name], in_file)
        result.files[name] = text
        result.counts[name] = len(groups[name])
    if metric_groups and not options.single_file and GROUPS_FILE not in groups:
        text = render_file([], options, "", metric_groups)
        _check_reads_back(GROUPS_FILE, text, [], metric_groups)
        result.files[GROUPS_FILE] = text
        result.counts[GROUPS_FILE] = 0
    return result


def _group_documents(reps: Sequence[Mapping[str, Any]], options: ExportOptions,
                     result: ExportResult) -> list[dict[str, Any]]:
    out = []
    for rep in sorted(reps, key=lambda r: str(r.get("key"))):
        key = str(rep.get("key"))
        if not key.startswith(options.prefix) or not set(options.tags) <= set(rep.get("tags") or []):
            result.filtered_groups += 1
            continue
        doc = group_document(rep, options.ownership_tag)
        problems = check_document(YamlDocument(key, {"project": options.project, "metrics": [],
                                                     "metricGroups": [doc]}))
        if problems:
            result.unsupported.append((key, problems[0].message))
            continue
        out.append(doc)
    result.groups = len(out)
    return out


def _check_reads_back(name: str, text: str, metrics: list[dict[str, Any]],
                      metric_groups: Sequence[Mapping[str, Any]] = ()) -> None:
    """Never write a file that does not read back as exactly what was meant."""
    doc, problems = parse_yaml_text(text, name)
    if problems or doc is None or doc.data.get("metrics") != metrics or \
            (doc.data.get("metricGroups") or []) != list(metric_groups):
        raise MetricsSyncError(f"internal error: the exported {name} does not read back as written; "
                               "please report this with the metric that caused it")


def summary(result: ExportResult, project: str, out: str, written: list[str] | None, *,
            adopted: bool = False) -> str:
    """What export did, for the person who ran it. `written` is None when the YAML went to stdout."""
    folder = out.rstrip("/")
    lines = []
    what_exported = f"{result.exported} metric(s)" + (f" and {result.groups} metric group(s)" if result.groups else "")
    if not result.exported and not result.groups:
        lines.append(f"Nothing to export from project {project}.")
    elif written is None:
        lines.append(f"Exported {what_exported} of project {project} to stdout.")
    else:
        lines.append(f"Exported {what_exported} of project {project} to {folder}/ "
                     f"({len(result.files)} definition file{'s' if len(result.files) != 1 else ''}):")
        width = max(len(name) for name in written)
        for name in written:
            count = result.counts.get(name)
            what = f"{count} metric{'s' if count != 1 else ''}" if count else "the schema, for editors"
            if name == GROUPS_FILE:
                what = f"{result.groups} metric group{'s' if result.groups != 1 else ''}"
            lines.append(f"  {folder}/{name.ljust(width)}  {what}")
    if result.filtered_out or result.filtered_groups:
        groups = f" and {result.filtered_groups} metric group(s)" if result.filtered_groups else ""
        lines.append(f"Left out by --tag/--prefix: {result.filtered_out} metric(s){groups}.")
    if result.archived_skipped:
        lines.append(f"Skipped {len(result.archived_skipped)} archived metric(s) (use --include-archived): "
                     + ", ".join(result.archived_skipped))
    if result.unsupported:
        lines.append("Not exported (metrics-sync cannot express them yet; they stay untouched in LaunchDarkly):")
        lines.extend(f"  {key}: {why}" for key, why in result.unsupported)
    if result.unmanaged:
        lines.append("Kept under unmanagedFields (shown for reference, never compared or sent):")
        lines.extend(f"  {key}: {', '.join(names)}" for key, names in result.unmanaged)
    if (result.exported or result.groups) and written is not None:
        expect = ("an `adopt` update per metric, which adds the ownership tag" if adopted
                  else "No changes.")
        lines.append(f"Next: metrics-sync plan {folder} --detailed-exitcode  (expect: {expect})")
    return "\n".join(lines) + "\n"
