"""What LaunchDarkly observes of a metric: when its event was last seen (`lastSeen`) and when an experiment or
guarded rollout last used it (`lastUsedInExperiment`, `lastUsedInGuardedRollout`).

LaunchDarkly documents `lastSeen` only as an int64 on `MetricListingRep` and `MetricRep`: not whether it is
kept per event key (every metric measuring `order-placed` shares it) or per metric (events before a metric
existed do not count for it). The `last_seen` reading picks one (docs/launchdarkly-contract.md, A50). Either
way it is one value across the project's environments: the representation has no environment.

A seed gives times as epoch milliseconds or relative to the emulator's now: "-2h", "-3d", "-45m", "-30s".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_RELATIVE = re.compile(r"-(\d{1,6})([smhd])")


def moment(value: Any, now_ms: int) -> int:
    """A seed's time: epoch milliseconds, or "-<n><s|m|h|d>" before `now_ms`."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _RELATIVE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"a time must be epoch milliseconds or relative such as \"-3d\", not {value!r}")
    return now_ms - int(match.group(1)) * _UNITS[match.group(2)]


def event_of(record: Mapping[str, Any]) -> str:
    """The key of the events a metric counts: a custom metric's `eventKey`; pageview and click events carry the
    metric's own key (the JavaScript SDK sends them so)."""
    event = record.get("eventKey")
    return event if isinstance(event, str) and event else str(record["key"])


def last_seen(record: Mapping[str, Any], seen: Mapping[str, int], reading: str) -> int | None:
    """The metric's `lastSeen`: under "event_key" the latest event of its key (or its own seeded value, if
    later); under "metric" its own value only (events are credited to the metrics that existed when they came)."""
    own = record.get("lastSeen")
    own = own if isinstance(own, int) and not isinstance(own, bool) else None
    if reading == "metric":
        return own
    shared = seen.get(event_of(record))
    return max((t for t in (own, shared) if t is not None), default=None)


def latest_experiment(experiments: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """`lastUsedInExperiment` (a DependentExperimentRep): the most recently created experiment using it."""
    return max(experiments, key=lambda e: e.get("creationDate") or 0, default=None)


def latest_rollout(rollouts: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """`lastUsedInGuardedRollout` (DependentMeasuredRolloutRep-like): the last guarded rollout a seed attached."""
    return rollouts[-1] if rollouts else None
