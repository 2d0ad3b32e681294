"""Switches for what LaunchDarkly's sources leave open: one per unconfirmed behaviour, so that the tests can
run metrics-sync against every reading of its contract (docs/launchdarkly-contract.md lists the sources).

The defaults are the reading the emulator considers most likely; `metrics-sync doctor --write` observes
the real answer on a LaunchDarkly account.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

CHOICES: dict[str, tuple[Any, ...]] = {
    # Does the metric list include archived metrics? No source says; no filter for them exists.
    "archived_in_list": ("listed", "hidden"),
    # The status of a JSON Patch whose `test` fails: the spec lists both 400 and 409 for PATCH.
    "failed_test_status": (409, 400),
    # Is `maintainerId` in a POST kept? The Terraform provider sets it by PATCH after create, because it
    # "can't be done during create".
    "maintainer_on_create": ("ignored", "kept"),
    # Do list items carry activeExperimentCount / activeGuardedRolloutCount? The spec documents only
    # `expand=experimentCount` for the list.
    "list_counters": ("included", "omitted"),
    # Is the documented `{"comment", "patch"}` wrapper accepted by the metric PATCH? The metric endpoint's
    # schema declares only the bare array.
    "comment_wrapper": ("accepted", "rejected"),
    # The status of a POST whose key exists: the spec lists 409 (and 400); the API overview's example error
    # for an existing key is a 400 `invalid_request`.
    "duplicate_key_status": (409, 400),
    # What a metric group PATCH's `test` compares with: the representation clients read (its metrics carry
    # names, kinds and links) or the stored group (metrics as {key, nameInGroup}). No source says.
    "group_patch_test": ("representation", "stored"),
    # Does a metric's `experiments` expansion list the experiments that use it only through a metric group?
    "experiments_through_groups": ("omitted", "listed"),
    # Does a metric's (or group's) `experiments` expansion list the base experiment that carries a holdout? A
    # holdout is an `Experiment` with a `holdoutId`; no source says whether the expansion shows it.
    "holdout_in_experiments": ("omitted", "listed"),
    # Is retiring a metric or group a release policy names refused? The Terraform provider's unmerged PR 534
    # lists release policies among what blocks a delete; nothing says whether an archive is refused too.
    "policy_blocks_retire": ("delete", "archive_and_delete", "nothing"),
    # Must a metric be archived before it is deleted? PR 534 (closed unmerged) says so, behind a LaunchDarkly
    # flag: it may differ between accounts.
    "archive_before_delete": ("required", "not_required"),
    # Does LaunchDarkly keep the order of an event filter's values and of a group's member conditions, or return
    # them in an order of its own? No source says (A34).
    "filter_order": ("kept", "reordered"),
    # Does a PATCH that changes a metric give it a new `_versionId` (the old version still readable with
    # `?versionId=`), or does the metric keep its one version ID? MetricRep has both `_version` and `_versionId`;
    # no source says what an update does to the latter (A47).
    "metric_versions": ("new", "same"),
    # Does a running experiment iteration measure the metric version it started with (its metrics' `_versionId`),
    # or the metric as it is now? The environment releases API pins a release's analysis settings to the version
    # of its start; for experiments no source says (A48).
    "iteration_versions": ("pinned", "latest"),
    # What a metric's `lastSeen` is: when LaunchDarkly last saw an event of its event key (metrics sharing a key
    # share it) or an event credited to this metric (events before it existed do not count). The spec says only
    # "int64" (A50).
    "last_seen": ("event_key", "metric"),
}


@dataclass(frozen=True)
class Readings:
    archived_in_list: str = "listed"
    failed_test_status: int = 409
    maintainer_on_create: str = "ignored"
    list_counters: str = "included"
    comment_wrapper: str = "accepted"
    duplicate_key_status: int = 409
    group_patch_test: str = "representation"
    experiments_through_groups: str = "omitted"
    holdout_in_experiments: str = "omitted"
    policy_blocks_retire: str = "delete"
    archive_before_delete: str = "required"
    filter_order: str = "kept"
    metric_versions: str = "new"
    iteration_versions: str = "pinned"
    last_seen: str = "event_key"

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) not in CHOICES[f.name]:
                raise ValueError(f"{f.name} must be one of {', '.join(map(str, CHOICES[f.name]))}")


def every_reading() -> list[Readings]:
    """Each switch flipped on its own, plus all flipped together: what the end-to-end tests run under."""
    variants = [Readings()]
    for name, choices in CHOICES.items():
        for choice in choices[1:]:
            variants.append(Readings(**{name: choice}))
    variants.append(Readings(**{name: choices[-1] for name, choices in CHOICES.items()}))
    return variants
