"""The emulator's data: projects holding metrics, with LaunchDarkly's server-owned fields.

Thread-safe (one lock), and optionally persisted (`--state FILE`) as a snapshot plus a journal:
  * every change appends one line to the journal (`.FILE.journal`: the changed record, or the deleted key)
    and fsyncs it before the change is answered, so every acknowledged write survives a kill;
  * the snapshot (FILE) is rewritten only at start and every COMPACT_EVERY changes: written to a temporary
    file, fsync'ed and renamed over FILE, then the journal is emptied. A kill at any moment leaves either the
    old or the new snapshot, never a torn file; replaying a journal line twice is harmless (lines hold whole
    records), and a torn last line (a write that was never answered) is ignored.
Rewriting the whole state on every write made 2,000 creates 18 times slower than without a state file.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from metrics_sync.emulator.groups import (
    EXPERIMENT_STATUSES,
    GROUP_EDITABLE,
    check_group,
    dependent_experiment,
    dependent_group,
    stored_metrics,
)
from metrics_sync.emulator.holders import DEFAULT_ENVIRONMENTS, names, seed_holdout, seed_policy
from metrics_sync.emulator.jsonpatch import apply_patch
from metrics_sync.emulator.observed import event_of, last_seen, latest_experiment, latest_rollout, moment
from metrics_sync.emulator.readings import Readings
from metrics_sync.emulator.rules import EDITABLE_FIELDS, RuleError, check_metric, stored_denominator

STATE_FORMAT_VERSION = 1
COMPACT_EVERY = 5000  # journal lines between two snapshots
# Fields of a guarded rollout a seed may give that the `guardedRollouts` expansion shows (it has no declared shape).
ROLLOUT_FIELDS = ("key", "flagKey", "flagName", "environmentKey", "status")
# The member the emulator's token belongs to; it becomes the maintainer of metrics created without one.
TOKEN_MEMBER_ID = "569fdeadbeef1644facecafe"
HOSTED_DATA_SOURCE = {"key": "launchdarkly-hosted", "_name": "LaunchDarkly"}
# Connection data a seed may preload (experiments, guarded rollouts); read-only through the API.
CONNECTION_FIELDS = ("experimentCount", "activeExperimentCount", "activeGuardedRolloutCount",
                     "metricGroupCount", "experiments", "metricGroups", "guardedRollouts")
# Read-only fields of a representation that only LaunchDarkly sets; a seed may preload them.
SERVER_SET_FIELDS = ("category", "lastSeen")
# The context kinds a new project has available for experiments (LaunchDarkly's default `user`).
DEFAULT_EXPERIMENT_UNITS = ({"randomizationUnit": "user", "default": True, "_hidden": False},)
# The custom-metric success criteria LaunchDarkly fills in when a POST leaves it out (Terraform provider,
# commit 147d7f4a: "add default to metric successCriteria field to comply with API update").
DEFAULT_SUCCESS_CRITERIA = "HigherThanBaseline"


class NotFound(Exception):
    pass


class Conflict(Exception):
    pass


class DuplicateKey(Conflict):
    """A create whose key exists in the project."""


class Store:
    def __init__(
        self,
        projects: Iterable[str] = ("default",),
        *,
        state_file: Path | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        readings: Readings | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self._rng = rng or random.Random()
        self.readings = readings or Readings()
        self.state_file = state_file
        self.projects: dict[str, dict[str, dict[str, Any]]] = {p: {} for p in projects}
        # Per project: the randomization units (context kinds) available for experiments.
        self.experiment_units: dict[str, list[dict[str, Any]]] = {}
        self._keys: dict[str, list[str]] = {}  # creation-ordered keys per project, for O(page) listing
        self._in_order: dict[str, bool] = {}  # per project: creation order is `_creationDate` order
        # Metric groups per project (creation order), and what uses metrics and groups: seeded experiments and
        # guarded rollouts (the emulator has no flags or environments of its own to run them).
        self.groups: dict[str, dict[str, dict[str, Any]]] = {}
        self.experiments: dict[str, dict[str, dict[str, Any]]] = {}
        self.rollouts: dict[str, list[dict[str, Any]]] = {}
        # Per project, seeded: its environments (LaunchDarkly's two defaults when not seeded), holdouts (each in
        # one environment) and release policies (emulator/holders.py).
        self.environments: dict[str, list[str]] = {}
        self.holdouts: dict[str, dict[str, dict[str, Any]]] = {}
        self.policies: dict[str, list[dict[str, Any]]] = {}
        # Per project and metric key: the versions a PATCH superseded (`_versionId` -> the metric as it was), under
        # the reading where an update makes a new version (A47). The current version is the record itself.
        self.old_versions: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        self._usage: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}  # per project, rebuilt on change
        # Per project: event key -> when LaunchDarkly last saw it (epoch ms; seeded, or POST /_emulator/events).
        # Not persisted: a seed gives them again at each start.
        self.seen: dict[str, dict[str, int]] = {}
        self._offset_ms = 0  # how far tests moved the emulator's clock ahead (POST /_emulator/clock)
        self._journal: IO[bytes] | None = None
        self._journal_lines = 0
        if state_file is not None:
            journal = self._journal_path()
            # A kill between writing a temporary file and renaming it leaves the temporary file behind.
            for leftover in state_file.parent.glob(f".{state_file.name}.*"):
                if leftover != journal:
                    leftover.unlink(missing_ok=True)
            if state_file.exists():
                self._load_state(state_file)
            if journal.exists():
                self._replay(journal)
            self.compact()

    # --- persistence -------------------------------------------------------------------------

    def _load_state(self, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("formatVersion", data.get("version")) != STATE_FORMAT_VERSION:
            raise ValueError(f"{path}: not an emulator state file (version {STATE_FORMAT_VERSION})")
        for project, metrics in data["projects"].items():
            self.projects[project] = {m["key"]: m for m in metrics}
        self.experiment_units.update(data.get("experimentationSettings", {}))
        for project, groups in data.get("metricGroups", {}).items():
            self.groups[project] = {g["key"]: g for g in groups}
        for project, experiments in data.get("experiments", {}).items():
            self.experiments[project] = {e["key"]: e for e in experiments}
        self.rollouts.update(data.get("guardedRollouts", {}))
        self.environments.update(data.get("environments", {}))
        for project, holdouts in data.get("holdouts", {}).items():
            self.holdouts[project] = {h["key"]: h for h in holdouts}
        self.policies.update(data.get("releasePolicies", {}))
        self.old_versions.update(data.get("metricVersions", {}))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"formatVersion": STATE_FORMAT_VERSION,
                    "projects": {p: list(copy.deepcopy(ms).values()) for p, ms in self.projects.items()},
                    "experimentationSettings": copy.deepcopy(self.experiment_units),
                    "metricGroups": {p: list(copy.deepcopy(gs).values()) for p, gs in self.groups.items()},
                    "experiments": {p: list(copy.deepcopy(es).values()) for p, es in self.experiments.items()},
                    "guardedRollouts": copy.deepcopy(self.rollouts),
                    "environments": copy.deepcopy(self.environments),
                    "holdouts": {p: list(copy.deepcopy(hs).values()) for p, hs in self.holdouts.items()},
                    "releasePolicies": copy.deepcopy(self.policies),
                    "metricVersions": copy.deepcopy(self.old_versions)}

    def _journal_path(self) -> Path:
        assert self.state_file is not None
        return self.state_file.with_name(f".{self.state_file.name}.journal")

    def _replay(self, journal: Path) -> None:
        """Apply the journal's changes on top of the snapshot; a last line cut short by a kill is ignored."""
        for line in journal.read_bytes().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                break  # the torn end of a write that was never answered
            store = self.projects if entry["kind"] == "metric" else self.groups
            if entry["op"] == "put":
                if entry["kind"] == "metric":
                    self._supersede(entry["project"], store.get(entry["project"], {}).get(entry["record"]["key"]),
                                    entry["record"])
                store.setdefault(entry["project"], {})[entry["record"]["key"]] = entry["record"]
            elif entry["op"] == "delete":
                store.get(entry["project"], {}).pop(entry["key"], None)
            elif entry["op"] == "settings":
                self.projects.setdefault(entry["project"], {})
                self.experiment_units[entry["project"]] = entry["units"]

    def _log(self, entry: dict[str, Any]) -> None:
        """Journal one change, durably, before it is answered (called with the store's lock held: the journal's
        order is the changes' order). Compacts every COMPACT_EVERY lines."""
        if self.state_file is None:
            return
        if self._journal is None:
            self._journal = self._journal_path().open("ab")
        self._journal.write(json.dumps(entry, separators=(",", ":")).encode() + b"\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self._journal_lines += 1
        if self._journal_lines >= COMPACT_EVERY:
            self.compact()

    def compact(self) -> None:
        """Write the whole state as the snapshot, then empty the journal."""
        with self._lock:
            self._persist()
            if self._journal is not None:
                self._journal.close()
                self._journal = None
            self._journal_path().unlink(missing_ok=True)
            self._journal_lines = 0

    def _persist(self) -> None:
        if self.state_file is None:
            return
        payload = json.dumps(self.snapshot(), separators=(",", ":"))
        folder = self.state_file.parent
        fd, tmp = tempfile.mkstemp(prefix=f".{self.state_file.name}.", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.state_file)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    # --- helpers ---------------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock() * 1000) + self._offset_ms

    def advance(self, seconds: float) -> int:
        """Move the emulator's clock ahead (for tests of what time makes stale); returns the new now, epoch ms."""
        if not 0 <= seconds <= 10 * 365 * 86_400:
            raise ValueError("advance must be between 0 and ten years, in seconds")
        with self._lock:
            self._offset_ms += int(seconds * 1000)
            return self._now_ms()

    def record_event(self, project: str, event: str, at: Any = None) -> int:
        """LaunchDarkly receives an `event` (now, or at a seed's time): under the per-metric reading of `lastSeen`
        (A50) it is credited to the unarchived metrics that count it now."""
        with self._lock:
            self.project(project)
            when = self._now_ms() if at is None else moment(at, self._now_ms())
            seen = self.seen.setdefault(project, {})
            seen[event] = max(when, seen.get(event, 0))
            if self.readings.last_seen == "metric":
                for record in self.projects[project].values():
                    if not record.get("archived") and event_of(record) == event:
                        record["lastSeen"] = max(when, record.get("lastSeen") or 0)
            return when

    def _modified(self) -> dict[str, str]:
        moment = datetime.fromtimestamp(self._now_ms() / 1000, tz=UTC)
        return {"date": moment.isoformat(timespec="microseconds").replace("+00:00", "Z")}

    def _hex(self, n: int) -> str:
        return "".join(self._rng.choice("0123456789abcdef") for _ in range(n))

    def _forget_order(self, project: str) -> None:
        self._keys.pop(project, None)
        self._in_order.pop(project, None)

    def project(self, key: str) -> dict[str, dict[str, Any]]:
        try:
            return self.projects[key]
        except KeyError:
            raise NotFound(f"Unknown project key {key!r}") from None

    # --- operations --------------------------------------------------------------------------

    def seed(self, data: dict[str, Any]) -> int:
        """Preload metrics (a seed file); existing keys are kept. Returns how many were added.

        A seed holds `{"projects": {key: [metric, ...]}}` and optionally `{"experimentationSettings": {key:
        ["user", "organization", ...]}}`, the context kinds available for experiments in a project."""
        added = 0
        with self._lock:
            for project, units in data.get("experimentationSettings", {}).items():
                self.projects.setdefault(project, {})
                self.experiment_units[project] = [
                    {"randomizationUnit": unit, "default": index == 0, "_hidden": False}
                    for index, unit in enumerate(units)]
            for project, metrics in data.get("projects", {}).items():
                self.projects.setdefault(project, {})
                for metric in metrics:
                    if metric.get("key") in self.projects[project]:
                        continue
                    record = self._new_record(project, metric, seeding=True)
                    for field in (*CONNECTION_FIELDS, *SERVER_SET_FIELDS, "_version", "_creationDate", "archived"):
                        if field in metric:
                            record[field] = copy.deepcopy(metric[field])
                    if "lastSeen" in metric:
                        record["lastSeen"] = moment(metric["lastSeen"], self._now_ms())
                    if record["archived"]:
                        record["archivedAt"] = self._now_ms()
                    self.projects[project][record["key"]] = record
                    self._forget_order(project)
                    added += 1
            for project, groups in data.get("metricGroups", {}).items():
                for group in groups:
                    if group.get("key") not in self.groups.get(project, {}):
                        self._add_group(project, group, seeding=True)
                        added += 1
            for project, experiments in data.get("experiments", {}).items():
                for experiment in experiments:
                    self._seed_experiment(project, experiment)
            for project, rollouts in data.get("guardedRollouts", {}).items():
                self.rollouts.setdefault(project, []).extend(
                    {**{k: r[k] for k in ROLLOUT_FIELDS if k in r}, "metrics": list(r.get("metrics", [])),
                     "metricGroups": list(r.get("metricGroups", []))} for r in rollouts)
                self._usage.pop(project, None)
            self._seed_holders(data)
            for project, events in data.get("events", {}).items():  # {project: {event key: when}} (observed.py)
                for event, when in events.items():
                    self.record_event(project, str(event), when)
            if self.state_file is not None:
                self.compact()
        return added

    def _seed_holders(self, data: dict[str, Any]) -> None:
        """Environments (`{"environments": {project: [key, ...]}}`), holdouts and release policies."""
        for project, environments in data.get("environments", {}).items():
            self.projects.setdefault(project, {})
            self.environments[project] = [str(e) for e in environments]
        for project, holdouts in data.get("holdouts", {}).items():
            self.projects.setdefault(project, {})
            for raw in holdouts:
                record = seed_holdout(raw, self._hex(24), self._now_ms())
                self.holdouts.setdefault(project, {})[record["key"]] = record
            self._usage.pop(project, None)
        for project, policies in data.get("releasePolicies", {}).items():
            self.projects.setdefault(project, {})
            existing = self.policies.setdefault(project, [])
            existing.extend(seed_policy(raw, self._hex(24), len(existing) + i + 1) for i, raw in enumerate(policies))

    def _seed_experiment(self, project: str, experiment: dict[str, Any]) -> None:
        """An experiment a seed attaches to metrics and groups: key, name, environmentKey, status (not_started,
        running or stopped), metrics, metricGroups, and optionally archived."""
        status = experiment.get("status", "running")
        if status not in EXPERIMENT_STATUSES:
            raise ValueError(f"experiment {experiment.get('key')!r}: status must be one of "
                             f"{', '.join(EXPERIMENT_STATUSES)}")
        record = {"_id": self._hex(24), "key": str(experiment["key"]), "name": str(experiment.get("name")
                                                                                    or experiment["key"]),
                  "environmentKey": str(experiment.get("environmentKey", "production")),
                  "environmentId": self._hex(24), "status": status,
                  "_creationDate": moment(experiment.get("creationDate", "-0s"), self._now_ms()),
                  "metrics": list(experiment.get("metrics", [])),
                  "metricGroups": list(experiment.get("metricGroups", [])),
                  "maintainerId": TOKEN_MEMBER_ID}
        if experiment.get("archived"):
            record["archivedDate"] = self._now_ms()
        if status != "not_started":  # the iteration started now, with the metrics' versions of now (A48)
            metrics = self.projects.get(project, {})
            record["metricVersions"] = {k: metrics[k]["_versionId"] for k in record["metrics"] if k in metrics}
        self.projects.setdefault(project, {})
        self.experiments.setdefault(project, {})[record["key"]] = record
        self._usage.pop(project, None)

    def _new_record(self, project: str, body: dict[str, Any], *, seeding: bool = False) -> dict[str, Any]:
        metric = {k: copy.deepcopy(v) for k, v in body.items() if k in EDITABLE_FIELDS or k == "key"}
        metric.pop("archived", None)
        if not seeding and self.readings.maintainer_on_create == "ignored":
            metric.pop("maintainerId", None)  # set by a PATCH after create, as the Terraform provider does
        # `randomizationUnits` is the deprecated name of `analysisUnits`; both are stored as one.
        units = metric.pop("randomizationUnits", None)
        if "analysisUnits" not in metric and units is not None:
            metric["analysisUnits"] = units
        check_metric(metric)
        if not seeding:
            self._check_units(project, metric)
        if metric["kind"] not in ("custom", "trace"):
            metric.setdefault("isNumeric", False)
        else:
            metric.setdefault("successCriteria", DEFAULT_SUCCESS_CRITERIA)
        self._store_nested(metric)
        metric.setdefault("name", metric["key"])
        metric.setdefault("unitAggregationType", "average")
        metric.setdefault("analysisType", "mean")
        default = metric.setdefault("eventDefault", {})
        default.setdefault("disabled", metric["analysisType"] == "percentile")
        default.setdefault("value", 0)
        metric.setdefault("analysisUnits", ["user"])
        metric["tags"] = list(dict.fromkeys(metric.get("tags") or []))
        metric.setdefault("maintainerId", TOKEN_MEMBER_ID)
        source = metric.pop("dataSource", None) or dict(HOSTED_DATA_SOURCE)
        return {
            "_id": self._hex(24),
            "_versionId": self._hex(32),
            "_version": 1,
            "_creationDate": self._now_ms(),
            "lastModified": self._modified(),
            **metric,
            "dataSource": source,
            "archived": False,
            "isActive": True,
            "experimentCount": 0,
            "activeExperimentCount": 0,
            "activeGuardedRolloutCount": 0,
            "metricGroupCount": 0,
            "experiments": [],
            "metricGroups": [],
        }

    def _store_nested(self, metric: dict[str, Any]) -> None:
        """The parts of a metric LaunchDarkly stores in a shape of its own: a denominator's own fields, and the
        filter trees in the order the `filter_order` reading says (A34)."""
        if isinstance(metric.get("denominator"), dict):
            metric["denominator"] = stored_denominator(metric["denominator"])
        for holder in (metric, metric.get("denominator") or {}):
            if isinstance(holder.get("filters"), dict):
                holder["filters"] = self._stored_filter(holder["filters"])

    def _stored_filter(self, node: dict[str, Any]) -> dict[str, Any]:
        out = dict(node)
        values = [self._stored_filter(v) if node.get("type") == "group" else v for v in node["values"]]
        if self.readings.filter_order == "reordered":  # LaunchDarkly's own order: here, reversed JSON order
            values.sort(key=lambda v: json.dumps(v, sort_keys=True), reverse=True)
        out["values"] = values
        return out

    def snapshot_metrics(self, project: str) -> list[dict[str, Any]]:
        """Deep copies of every metric of `project`, in creation order (for tests and tools)."""
        with self._lock:
            return [copy.deepcopy(m) for m in self.project(project).values()]

    def count(self, project: str) -> int:
        with self._lock:
            return len(self.project(project))

    def page(self, project: str, offset: int, limit: int) -> list[dict[str, Any]]:
        """Records `offset`..`offset+limit` in creation order, without copying the whole project.

        The records are the stored objects themselves: callers must only read them (the API layer turns
        them into new representation dicts). Stored records are replaced, never mutated, on change.
        """
        with self._lock:
            metrics = self.project(project)
            return [metrics[k] for k in self._ordered_keys(project)[offset:offset + limit]]

    def _ordered_keys(self, project: str) -> list[str]:
        keys = self._keys.get(project)
        if keys is None:
            keys = self._keys[project] = list(self.projects[project])
        return keys

    def in_creation_order(self, project: str) -> bool:
        """Whether the creation order of the records is also the order of their `_creationDate` (so a listing
        sorted by `createdAt` can page without sorting). A seed may preload older dates out of order."""
        with self._lock:
            metrics = self.project(project)
            cached = self._in_order.get(project)
            if cached is None:
                dates = [metrics[k].get("_creationDate") or 0 for k in self._ordered_keys(project)]
                cached = self._in_order[project] = all(a <= b for a, b in itertools.pairwise(dates))
            return cached

    def records(self, project: str) -> list[dict[str, Any]]:
        """All stored records (read-only, as for `page`), for sorting and filtering."""
        with self._lock:
            return list(self.project(project).values())

    def get(self, project: str, key: str) -> dict[str, Any]:
        with self._lock:
            metrics = self.project(project)
            if key not in metrics:
                raise NotFound(f"Unknown metric key {key!r}")
            return copy.deepcopy(metrics[key])

    def create(self, project: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            metrics = self.project(project)
            key = body.get("key")
            if isinstance(key, str) and key in metrics:
                raise DuplicateKey(f"A metric with key {key!r} already exists in project {project!r}")
            record = self._new_record(project, body)
            metrics[record["key"]] = record
            self._forget_order(project)
            self._log({"op": "put", "kind": "metric", "project": project, "record": record})
            return copy.deepcopy(record)

    def version(self, project: str, key: str, version_id: str) -> dict[str, Any]:
        """The metric as it was at `version_id` (`GET …?versionId=`): the current record, or one a PATCH superseded
        under the reading where updates make new versions (A47). An unknown version is a 404."""
        with self._lock:
            current = self.get(project, key)
            if current["_versionId"] == version_id:
                return current
            old = self.old_versions.get(project, {}).get(key, {}).get(version_id)
            if old is None:
                raise NotFound(f"Unknown version {version_id!r} of metric {key!r}")
            return copy.deepcopy(old)

    def _supersede(self, project: str, current: dict[str, Any] | None, updated: dict[str, Any]) -> None:
        """Keep the version an update replaced, when the update made a new one."""
        if current is not None and current.get("_versionId") != updated.get("_versionId"):
            self.old_versions.setdefault(project, {}).setdefault(current["key"], {})[current["_versionId"]] = \
                copy.deepcopy(current)

    def patch(self, project: str, key: str, operations: Any) -> dict[str, Any]:
        return self.patch_changed(project, key, operations)[0]

    def patch_changed(self, project: str, key: str, operations: Any) -> tuple[dict[str, Any], bool]:
        """Apply a JSON Patch; returns (the metric, whether anything changed)."""
        with self._lock:
            metrics = self.project(project)
            if key not in metrics:
                raise NotFound(f"Unknown metric key {key!r}")
            current = metrics[key]
            _check_paths(operations, current)
            # Patch what clients see: the representation mirrors analysisUnits as randomizationUnits.
            visible = dict(current)
            if "analysisUnits" in current:
                visible["randomizationUnits"] = current["analysisUnits"]
            patched = apply_patch(visible, operations)
            if not isinstance(patched, dict):
                raise RuleError("the patched metric must be an object")
            # Only editable fields change; anything else in the patch is ignored, as LaunchDarkly does.
            updated = copy.deepcopy(current)
            for field in EDITABLE_FIELDS:
                if field in patched:
                    updated[field] = patched[field]
                else:
                    updated.pop(field, None)
            units_renamed = patched.get("randomizationUnits") != visible.get("randomizationUnits")
            if units_renamed and patched.get("analysisUnits") == visible.get("analysisUnits"):
                if patched.get("randomizationUnits") is None:
                    updated.pop("analysisUnits", None)
                else:
                    updated["analysisUnits"] = patched["randomizationUnits"]
            updated.pop("randomizationUnits", None)
            updated["key"], updated["kind"] = current["key"], current["kind"]
            updated.setdefault("archived", False)
            check_metric(updated)
            self._store_nested(updated)
            if not updated.get("dataSource"):
                updated["dataSource"] = dict(HOSTED_DATA_SOURCE)  # every metric has one (MetricRep requires it)
            if updated.get("analysisUnits") != current.get("analysisUnits"):
                self._check_units(project, updated)
            if updated == current:
                return copy.deepcopy(current), False  # nothing changed: no new version
            if updated["archived"] and not current.get("archived"):
                if self.readings.policy_blocks_retire == "archive_and_delete" and self._named_by_policy(
                        project, "metric", key):
                    raise Conflict(f"Metric {key!r} is used by a release policy")
                updated["archivedAt"] = self._now_ms()
            elif not updated["archived"]:
                updated.pop("archivedAt", None)
            updated["_version"] = current["_version"] + 1
            if self.readings.metric_versions == "new":
                updated["_versionId"] = self._hex(32)
            updated["lastModified"] = self._modified()
            self._supersede(project, current, updated)
            metrics[key] = updated
            self._log({"op": "put", "kind": "metric", "project": project, "record": updated})
            return copy.deepcopy(updated), True

    def delete(self, project: str, key: str) -> None:
        """LaunchDarkly deletes only archived metrics, and none that experiments, guarded rollouts or metric
        groups use (the Terraform provider's pull request #534: "The LaunchDarkly API now requires a metric to
        be archived before it can be deleted"; a delete blocked by connections "also return[s] 409")."""
        with self._lock:
            metrics = self.project(project)
            if key not in metrics:
                raise NotFound(f"Unknown metric key {key!r}")
            record = self.connected(project, metrics[key])
            if not record.get("archived") and self.readings.archive_before_delete == "required":
                raise Conflict(f"Metric {key!r} must be archived before it can be deleted")
            if any(record.get(count) for count in ("experimentCount", "activeExperimentCount",
                                                    "activeGuardedRolloutCount", "metricGroupCount")):
                raise Conflict(f"Metric {key!r} is used by experiments, guarded rollouts or metric groups")
            if self.readings.policy_blocks_retire != "nothing" and self._named_by_policy(project, "metric", key):
                raise Conflict(f"Metric {key!r} is used by a release policy")
            del metrics[key]
            self._forget_order(project)
            self._log({"op": "delete", "kind": "metric", "project": project, "key": key})

    # --- what uses metrics and groups ------------------------------------------------------------------

    def _uses(self, project: str) -> dict[tuple[str, str], dict[str, Any]]:
        """("metric" | "metric-group", key) -> the experiments, guarded rollouts and groups that use it."""
        index = self._usage.get(project)
        if index is not None:
            return index
        index = {}

        def entry(resource: str, key: str) -> dict[str, Any]:
            return index.setdefault((resource, key), {"experiments": [], "active": 0, "rollouts": [], "groups": []})

        for experiment in self.experiments.get(project, {}).values():
            for resource, keys in (("metric", experiment["metrics"]), ("metric-group", experiment["metricGroups"])):
                for key in keys:
                    used = entry(resource, key)
                    used["experiments"].append(dependent_experiment(project, experiment))
                    if experiment["status"] == "running" and not experiment.get("archivedDate"):
                        used["active"] += 1
        for rollout in self.rollouts.get(project, []):
            shown = {k: rollout[k] for k in ROLLOUT_FIELDS if k in rollout}
            for resource, keys in (("metric", rollout["metrics"]), ("metric-group", rollout["metricGroups"])):
                for key in keys:
                    entry(resource, key)["rollouts"].append(shown)
        for group in self.groups.get(project, {}).values():
            for member in group["metrics"]:
                entry("metric", member["key"])["groups"].append(dependent_group(project, group))
        if self.readings.experiments_through_groups == "listed":
            self._add_group_users(project, entry)
        if self.readings.holdout_in_experiments == "listed":
            for holdout in self.holdouts.get(project, {}).values():
                base = {**holdout, "environmentId": "env-" + holdout["environmentKey"],
                        "_creationDate": holdout["createdAt"]}
                for resource in ("metric", "metric-group"):
                    for key in names(holdout, resource):
                        used = entry(resource, key)
                        used["experiments"].append(dependent_experiment(project, base))
                        if holdout["status"] == "running" and not holdout.get("archivedDate"):
                            used["active"] += 1
        self._usage[project] = index
        return index

    def _add_group_users(self, project: str, entry: Callable[[str, str], dict[str, Any]]) -> None:
        """The reading where a metric lists the experiments that use it through a group (A28)."""
        groups = self.groups.get(project, {})
        for experiment in self.experiments.get(project, {}).values():
            direct = set(experiment["metrics"])
            through = {m["key"] for g in experiment["metricGroups"] if g in groups for m in groups[g]["metrics"]}
            for key in sorted(through - direct):
                used = entry("metric", key)
                used["experiments"].append(dependent_experiment(project, experiment))
                if experiment["status"] == "running" and not experiment.get("archivedDate"):
                    used["active"] += 1

    def connected(self, project: str, record: dict[str, Any], resource: str = "metric") -> dict[str, Any]:
        """`record` with what uses it added to the counts and lists a seed may have preloaded (a new dict when
        anything is added; the stored record is never changed)."""
        with self._lock:
            if resource == "metric":
                record = self._observed(project, record)
            if not (self.groups.get(project) or self.experiments.get(project) or self.rollouts.get(project)
                    or self.holdouts.get(project)):
                return record
            used = self._uses(project).get((resource, record["key"]))
            if used is None:
                return record
            live = [e for e in used["experiments"] if not e.get("archivedDate")]
            out = dict(record)
            out["experimentCount"] = (record.get("experimentCount") or 0) + len(live)
            out["activeExperimentCount"] = (record.get("activeExperimentCount") or 0) + used["active"]
            out["experiments"] = [*(record.get("experiments") or []), *used["experiments"]]
            out["activeGuardedRolloutCount"] = (record.get("activeGuardedRolloutCount") or 0) + len(used["rollouts"])
            out["guardedRollouts"] = [*(record.get("guardedRollouts") or []), *used["rollouts"]]
            if resource == "metric":
                out["metricGroupCount"] = (record.get("metricGroupCount") or 0) + len(used["groups"])
                out["metricGroups"] = [*(record.get("metricGroups") or []), *used["groups"]]
                last_experiment, last_rollout = latest_experiment(out["experiments"]), latest_rollout(used["rollouts"])
                if last_experiment is not None:
                    out.setdefault("lastUsedInExperiment", last_experiment)
                if last_rollout is not None:
                    out.setdefault("lastUsedInGuardedRollout", last_rollout)
            return out

    def _observed(self, project: str, record: dict[str, Any]) -> dict[str, Any]:
        """`record` with its `lastSeen` as the `last_seen` reading has it (a new dict when it differs)."""
        seen = last_seen(record, self.seen.get(project, {}), self.readings.last_seen)
        if seen == record.get("lastSeen"):
            return record
        out = dict(record)
        if seen is None:
            out.pop("lastSeen", None)
        else:
            out["lastSeen"] = seen
        return out

    def _named_by_policy(self, project: str, resource: str, key: str) -> bool:
        return any(key in names(policy, resource) for policy in self.policies.get(project, []))

    # --- environments, holdouts, release policies (seeded; read-only through the API) ----------------------

    def environment_keys(self, project: str) -> list[str]:
        with self._lock:
            self.project(project)
            return list(self.environments.get(project, DEFAULT_ENVIRONMENTS))

    def holdouts_in(self, project: str, environment: str) -> list[dict[str, Any]]:
        with self._lock:
            if environment not in self.environment_keys(project):
                raise NotFound(f"Unknown environment key {environment!r}")
            return [copy.deepcopy(h) for h in self.holdouts.get(project, {}).values()
                    if h["environmentKey"] == environment]

    def release_policies(self, project: str) -> list[dict[str, Any]]:
        with self._lock:
            self.project(project)
            return sorted(copy.deepcopy(self.policies.get(project, [])), key=lambda p: p["rank"])

    def experiment(self, project: str, environment: str, key: str) -> dict[str, Any]:
        with self._lock:
            self.project(project)
            found = self.experiments.get(project, {}).get(key)
            if found is None or found["environmentKey"] != environment:
                raise NotFound(f"Unknown experiment key {key!r}")
            out = copy.deepcopy(found)
            out["metricVersions"] = self.measured_versions(project, found)
            return out

    def measured_versions(self, project: str, experiment: dict[str, Any]) -> dict[str, str]:
        """metric key -> the `_versionId` the experiment's current iteration measures: the version each metric had
        when the iteration started (`pinned`), or the metric's current version (`latest`, or an iteration that has
        not started) (A48)."""
        metrics = self.projects.get(project, {})
        current = {k: metrics[k]["_versionId"] for k in experiment.get("metrics", []) if k in metrics}
        if self.readings.iteration_versions == "latest" or experiment.get("status") == "not_started":
            return current
        return {**current, **experiment.get("metricVersions", {})}

    # --- metric groups ----------------------------------------------------------------------------------

    def group_records(self, project: str) -> list[dict[str, Any]]:
        """Every group of `project` in creation order (the stored objects: read only)."""
        with self._lock:
            self.project(project)
            return list(self.groups.get(project, {}).values())

    def get_group(self, project: str, key: str) -> dict[str, Any]:
        with self._lock:
            self.project(project)
            found = self.groups.get(project, {}).get(key)
            if found is None:
                raise NotFound(f"Unknown metric group key {key!r}")
            return copy.deepcopy(found)

    def create_group(self, project: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.project(project)
            key = body.get("key")
            if isinstance(key, str) and key in self.groups.get(project, {}):
                raise DuplicateKey(f"A metric group with key {key!r} already exists in project {project!r}")
            record = self._add_group(project, body)
            self._log({"op": "put", "kind": "group", "project": project, "record": record})
            return copy.deepcopy(record)

    def _add_group(self, project: str, body: dict[str, Any], *, seeding: bool = False) -> dict[str, Any]:
        # A team maintainer can only be seeded: MetricGroupPost names a member (`maintainerId`), and no API field
        # sets a team (A49).
        seeded_team = seeding and not body.get("maintainerId")
        team: tuple[str, ...] = ("maintainerTeamKey", "maintainerTeamName") if seeded_team else ()
        group = {k: copy.deepcopy(v) for k, v in body.items() if k in GROUP_EDITABLE or k == "key" or k in team}
        check_group(group, self.projects.get(project, {}))
        now = self._now_ms()
        maintainer: dict[str, Any] = {k: group[k] for k in ("maintainerId", *team) if k in group}
        record: dict[str, Any] = {
            "_id": self._hex(24), "key": group["key"], "name": group["name"], "kind": group["kind"],
            "tags": list(dict.fromkeys(group["tags"])), **maintainer, "metrics": stored_metrics(group["metrics"]),
            "_version": 1, "_creationDate": now, "_lastModified": now}
        if group.get("description"):
            record["description"] = group["description"]
        self.projects.setdefault(project, {})
        self.groups.setdefault(project, {})[record["key"]] = record
        self._usage.pop(project, None)
        return record

    def patch_group(self, project: str, key: str, operations: Any,
                    visible: dict[str, Any] | None = None) -> tuple[dict[str, Any], bool]:
        """Apply a JSON Patch to a group; `visible` is the document the patch applies to (the representation
        clients read; by default the stored record). Returns (the group, whether anything changed)."""
        with self._lock:
            current = self.get_group(project, key)
            _check_paths(operations, current)
            patched = apply_patch(visible if visible is not None else dict(current), operations)
            if not isinstance(patched, dict):
                raise RuleError("the patched metric group must be an object")
            updated = copy.deepcopy(current)
            for field in GROUP_EDITABLE:
                if field in patched and field != "kind":
                    updated[field] = copy.deepcopy(patched[field])
            updated["metrics"] = stored_metrics(updated.get("metrics"))
            if updated.get("maintainerId"):  # a member now maintains it (a team cannot be set by the API)
                updated.pop("maintainerTeamKey", None)
                updated.pop("maintainerTeamName", None)
            if not updated.get("description"):
                updated.pop("description", None)
            check_group(updated, self.projects.get(project, {}))
            updated["tags"] = list(dict.fromkeys(updated["tags"]))
            if updated == current:
                return current, False
            updated["_version"] = current["_version"] + 1
            updated["_lastModified"] = self._now_ms()
            self.groups[project][key] = updated
            self._usage.pop(project, None)
            self._log({"op": "put", "kind": "group", "project": project, "record": updated})
            return copy.deepcopy(updated), True

    def delete_group(self, project: str, key: str) -> None:
        """A group that experiments or guarded rollouts use is not deleted (409), as for metrics."""
        with self._lock:
            record = self.get_group(project, key)
            used = self.connected(project, record, "metric-group")
            if used.get("experimentCount") or used.get("activeGuardedRolloutCount"):
                raise Conflict(f"Metric group {key!r} is used by experiments or guarded rollouts")
            if self.readings.policy_blocks_retire != "nothing" and self._named_by_policy(project, "metric-group", key):
                raise Conflict(f"Metric group {key!r} is used by a release policy")
            del self.groups[project][key]
            self._usage.pop(project, None)
            self._log({"op": "delete", "kind": "group", "project": project, "key": key})

    # --- experimentation settings ---------------------------------------------------------------------

    def experimentation_settings(self, project: str) -> list[dict[str, Any]]:
        with self._lock:
            self.project(project)
            return copy.deepcopy(self.experiment_units.get(project, list(DEFAULT_EXPERIMENT_UNITS)))

    def set_experimentation_settings(self, project: str, units: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self._lock:
            self.project(project)
            self.experiment_units[project] = copy.deepcopy(units)
            self._log({"op": "settings", "kind": "settings", "project": project, "units": units})
            return copy.deepcopy(units)

    def _check_units(self, project: str, metric: dict[str, Any]) -> None:
        """Analysis units must be context kinds available for experiments in the project (the Terraform
        provider's docs; its tests configure the project's experimentation settings first)."""
        available = {u.get("randomizationUnit") for u in self.experimentation_settings(project)}
        for unit in metric.get("analysisUnits") or []:
            if unit not in available:
                raise RuleError(f"analysisUnits: {unit!r} is not a context kind available for experiments in "
                                f"project {project!r}")


def _check_paths(operations: Any, current: dict[str, Any]) -> None:
    """`_`-prefixed fields, `key` and `kind` cannot be edited (reading them in a `test` is fine)."""
    if not isinstance(operations, list):
        return  # apply_patch reports the malformed body
    for op in operations:
        if not isinstance(op, dict) or not isinstance(op.get("path"), str) or op.get("op") == "test":
            continue
        field = op["path"].split("/")[1] if op["path"].startswith("/") else ""
        targets = [field]
        if op.get("op") in ("move", "copy") and isinstance(op.get("from"), str) and op.get("op") == "move":
            targets.append(op["from"].split("/")[1] if op["from"].startswith("/") else "")
        for target in targets:
            if target.startswith("_"):
                raise RuleError(f"{target}: read-only field")
            if target in ("key", "kind") and not (op.get("op") == "replace" and op.get("value") == current[target]):
                raise RuleError(f"{target}: cannot be changed")
