"""The recovery protocol of each action, the same for every resource: one executor, driven by the resource
description. A fake LaunchDarkly answers each call from a script and records what apply sent."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from metrics_sync.apply.executor import IN_FLIGHT, apply_plan
from metrics_sync.core.cancel import Cancelled
from metrics_sync.core.errors import ApiError
from metrics_sync.core.fields import Resource
from metrics_sync.core.model import ApplyResult, Change, FieldChange, Plan, ProjectPlan
from metrics_sync.core.resources import METRIC, METRIC_GROUP
from metrics_sync.planning.diffing import diff

TAG = "managed-by-metrics-sync"
REPS: dict[str, dict[str, Any]] = {
    "metric": {"key": "k", "name": "Old", "kind": "custom", "eventKey": "e", "isNumeric": False, "tags": [TAG],
               "archived": False, "_version": 3},
    "metric-group": {"key": "k", "name": "Old", "kind": "standard", "tags": [TAG], "maintainerId": "mem",
                     "metrics": [{"key": "a", "nameInGroup": ""}, {"key": "b", "nameInGroup": ""}], "_version": 3},
}
BOTH = pytest.mark.parametrize("resource", [METRIC, METRIC_GROUP], ids=["metric", "metric-group"])


def refused(status: int, method: str = "PATCH") -> ApiError:
    return ApiError(method, "/api/v2/x/k", status, "refused")


@dataclass
class ScriptedApi:
    """Answers each call with the next scripted answer for its method (an ApiError is raised)."""

    script: dict[str, list[Any]]
    calls: list[tuple[str, str, Any]] = field(default_factory=list)

    def _answer(self, method: str, resource: Resource, sent: Any) -> Any:
        self.calls.append((method, resource.kind, sent))
        answer = self.script[method].pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def find_item(self, resource: Resource, project: str, key: str) -> dict[str, Any] | None:
        return self._answer("find", resource, key)  # type: ignore[no-any-return]

    def create_item(self, resource: Resource, project: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        return self._answer("create", resource, body)  # type: ignore[no-any-return]

    def patch_item(self, resource: Resource, project: str, key: str, operations: list[dict[str, Any]], *,
                   comment: str | None = None) -> dict[str, Any]:
        return self._answer("patch", resource, (operations, comment))  # type: ignore[no-any-return]

    def delete_item(self, resource: Resource, project: str, key: str) -> bool:
        return self._answer("delete", resource, key)  # type: ignore[no-any-return]

    @property
    def methods(self) -> list[str]:
        return [method for method, _, _ in self.calls]


def rep(resource: Resource, **values: Any) -> dict[str, Any]:
    return {**REPS[resource.kind], **values}


def create(resource: Resource, **values: Any) -> Change:
    after = resource.canonical(rep(resource, name="New", **values))
    return Change("create", "k", "t", None, after, [FieldChange(f, None, v) for f, v in after.items()], [],
                  body=resource.post_body("k", after), resource=resource.kind)


def update(resource: Resource) -> Change:
    before = resource.canonical(REPS[resource.kind])
    fields, patch = diff({**before, "name": "New"}, REPS[resource.kind], resource)
    return Change("update", "k", "t", before, {**before, "name": "New"}, fields, patch, remote_version=3,
                  resource=resource.kind)


def retire(resource: Resource) -> Change:
    before = resource.canonical(REPS[resource.kind])
    if resource.retire == "delete":
        return Change("delete", "k", "t", before, None, [], [], remote_version=3, resource=resource.kind)
    fields = [FieldChange("archived", False, True)]
    return Change("archive", "k", "t", before, {**before, "archived": True}, fields,
                  [{"op": "test", "path": "/archived", "value": False},
                   {"op": "replace", "path": "/archived", "value": True}], remote_version=3, resource=resource.kind)


def applied(change: Change, api: ScriptedApi) -> ApplyResult:
    plan = Plan([ProjectPlan("shop", "sha256:" + "0" * 64, [change], 0, 0, [], [], [])], False, TAG, "", "")
    return apply_plan(plan, api, comment="why")


def outcome(result: ApplyResult) -> tuple[str, str | None]:
    [one] = result.results
    return one.outcome, one.message


# --- create ------------------------------------------------------------------------------------------------

@BOTH
@pytest.mark.parametrize("status", [400, 409])
def test_a_create_refused_as_existing_and_equal_is_already_applied(resource: Resource, status: int) -> None:
    api = ScriptedApi({"create": [refused(status, "POST")], "find": [rep(resource, name="New", _version=4)]})
    assert outcome(applied(create(resource), api)) == ("created", "already applied")
    assert api.methods == ["create", "find"]


@BOTH
def test_a_create_refused_as_existing_and_different_overwrites_nothing(resource: Resource) -> None:
    api = ScriptedApi({"create": [refused(409, "POST")], "find": [rep(resource, name="Theirs")]})
    assert outcome(applied(create(resource), api)) == (
        "failed", f"{resource.name} k was created in LaunchDarkly since the plan, differently (name); nothing was "
                  "overwritten; run plan again")
    assert api.methods == ["create", "find"]


@BOTH
def test_a_create_refused_though_nothing_is_there_reports_the_refusal(resource: Resource) -> None:
    api = ScriptedApi({"create": [refused(409, "POST")], "find": [None]})
    assert outcome(applied(create(resource), api)) == ("failed", "POST /api/v2/x/k failed: 409: refused")


@BOTH
def test_a_create_refused_as_existing_and_archived_is_restored_where_the_resource_archives(resource: Resource) -> None:
    archived = rep(resource, name="Old", archived=True)
    api = ScriptedApi({"create": [refused(409, "POST")], "find": [archived],
                       "patch": [rep(resource, name="New", archived=False)]})
    result = outcome(applied(create(resource), api))
    if resource.retire == "archive":
        assert result == ("restored", "it was archived in LaunchDarkly; restored and updated to the definition")
        [(_, _, (ops, comment))] = [c for c in api.calls if c[0] == "patch"]
        assert [op["path"] for op in ops if op["op"] != "test"] == ["/name", "/archived"] and comment == "why"
    else:  # a metric group has no archive: the stored field means nothing, and the rest differs
        assert result[0] == "failed" and "created in LaunchDarkly since the plan, differently (name)" in str(result[1])
        assert api.methods == ["create", "find"]


@BOTH
def test_a_create_found_after_an_unclear_answer_is_counted_once(resource: Resource) -> None:
    api = ScriptedApi({"create": [(rep(resource, name="New", maintainerId="m1"), True)]})
    assert outcome(applied(create(resource, maintainerId="m1"), api)) == (
        "created", "found created after an unclear answer")
    assert api.methods == ["create"]


@BOTH
def test_what_a_post_does_not_take_is_set_after_create_with_a_guarded_patch(resource: Resource) -> None:
    answered = {k: v for k, v in rep(resource, name="New").items() if k != "maintainerId"}
    api = ScriptedApi({"create": [(answered, False)], "patch": [{**answered, "maintainerId": "m1"}]})
    assert outcome(applied(create(resource, maintainerId="m1"), api))[0] == "created"
    if "maintainerId" in resource.set_after_create:  # a metric's maintainer is set only after create
        [(_, _, (ops, _))] = [c for c in api.calls if c[0] == "patch"]
        assert ops == [{"op": "add", "path": "/maintainerId", "value": "m1"}]
    else:  # a group's maintainer goes in the POST
        assert api.methods == ["create"] and api.calls[0][2]["maintainerId"] == "m1"


@BOTH
def test_a_created_item_missing_a_field_it_was_sent_is_reported(resource: Resource) -> None:
    api = ScriptedApi({"create": [(rep(resource, name="Old"), False)]})
    result = applied(create(resource), api)
    assert result.results[0].outcome == "created" and result.results[0].not_kept == ("name",)


def test_a_field_never_read_back_is_not_reported_as_not_kept() -> None:
    """`valueColumn` goes in the POST of a warehouse metric, and LaunchDarkly never returns it (A36)."""
    values = {"kind": "custom", "eventKey": "e", "isNumeric": True, "unit": "usd",
              "dataSource": {"key": "snowflake", "environmentKey": "production"}, "valueColumn": "amount"}
    change = create(METRIC, **values)
    assert change.body is not None and change.body["valueColumn"] == "amount"
    answered = {k: v for k, v in change.body.items() if k != "valueColumn"}
    result = applied(change, ScriptedApi({"create": [(answered, False)]}))
    assert result.results[0].outcome == "created" and result.results[0].not_kept == ()


@BOTH
def test_a_change_cut_off_by_ctrl_c_is_reported_in_flight_not_as_a_bug(resource: Resource) -> None:
    api = ScriptedApi({"patch": [ApiError("PATCH", "/p", 409, "test failed")], "find": [Cancelled("reading")]})
    assert outcome(applied(update(resource), api)) == ("failed", IN_FLIGHT)


def test_a_metric_created_before_ctrl_c_cut_off_its_maintainer_counts_as_created() -> None:
    answered = {k: v for k, v in rep(METRIC, name="New").items() if k != "maintainerId"}
    api = ScriptedApi({"create": [(answered, False)], "patch": [Cancelled("setting the maintainer")]})
    assert outcome(applied(create(METRIC, maintainerId="m1"), api)) == (
        "created", "maintainerId not set (interrupted); run apply again")


# --- guarded patch (update; archive is the same protocol) --------------------------------------------------

@BOTH
def test_an_accepted_update_sends_its_guarded_patch(resource: Resource) -> None:
    api = ScriptedApi({"patch": [rep(resource, name="New", _version=4)]})
    assert outcome(applied(update(resource), api)) == ("updated", None)
    [(_, kind, (ops, comment))] = api.calls
    assert kind == resource.kind and [op["op"] for op in ops] == ["test", "replace"]
    assert comment == ("why" if resource.patch_comment else None)  # groups take a bare JSON Patch


@BOTH
@pytest.mark.parametrize("status", [400, 409])
def test_a_refused_patch_that_already_landed_is_already_applied(resource: Resource, status: int) -> None:
    api = ScriptedApi({"patch": [refused(status)], "find": [rep(resource, name="New", _version=4)]})
    assert outcome(applied(update(resource), api)) == ("updated", "already applied")
    assert api.methods == ["patch", "find"]


@BOTH
def test_a_refused_patch_of_an_item_gone_fails(resource: Resource) -> None:
    api = ScriptedApi({"patch": [refused(409)], "find": [None]})
    assert outcome(applied(update(resource), api)) == (
        "failed", f"{resource.name} k no longer exists in LaunchDarkly; run plan again")


@BOTH
def test_a_refused_patch_of_an_item_moved_on_overwrites_nothing(resource: Resource) -> None:
    api = ScriptedApi({"patch": [refused(409)], "find": [rep(resource, name="Theirs", _version=4)]})
    assert outcome(applied(update(resource), api)) == (
        "failed", f"{resource.name} k was changed in LaunchDarkly since the plan (name); nothing was overwritten; "
                  "run plan again")
    assert api.methods == ["patch", "find"]


@BOTH
def test_a_refused_patch_of_an_unchanged_item(resource: Resource) -> None:
    """Metrics: the refusal is reported. Metric groups (`unguarded_retry`, A24): LaunchDarkly may test against
    the expanded representation, so the sets are sent once more, without the guard."""
    api = ScriptedApi({"patch": [refused(409), rep(resource, name="New", _version=4)], "find": [rep(resource)]})
    result = outcome(applied(update(resource), api))
    if resource.unguarded_retry:
        assert result == ("updated", "sent without its guard, after a read showed the group as planned against")
        assert api.methods == ["patch", "find", "patch"]
        assert [op["op"] for op in api.calls[2][2][0]] == ["replace"]
    else:
        assert result == ("failed", "PATCH /api/v2/x/k failed: 409: refused")
        assert api.methods == ["patch", "find"]


@BOTH
def test_a_refused_patch_of_an_item_at_a_newer_version_is_never_sent_unguarded(resource: Resource) -> None:
    api = ScriptedApi({"patch": [refused(409)], "find": [rep(resource, _version=5)]})
    result = outcome(applied(update(resource), api))
    assert api.methods == ["patch", "find"]
    assert result == ("failed", "metric group k was changed in LaunchDarkly since the plan (a newer version); "
                                "nothing was overwritten; run plan again") if resource.unguarded_retry else \
        ("failed", "PATCH /api/v2/x/k failed: 409: refused")


def test_an_unguarded_resend_that_is_refused_reports_the_first_refusal() -> None:
    api = ScriptedApi({"patch": [refused(409), refused(400)], "find": [rep(METRIC_GROUP)]})
    assert outcome(applied(update(METRIC_GROUP), api)) == ("failed", "PATCH /api/v2/x/k failed: 409: refused")


@BOTH
@pytest.mark.parametrize("status", [404, 500])
def test_a_patch_refused_otherwise_is_not_read_again(resource: Resource, status: int) -> None:
    api = ScriptedApi({"patch": [refused(status)]})
    assert outcome(applied(update(resource), api)) == ("failed", f"PATCH /api/v2/x/k failed: {status}: refused")
    assert api.methods == ["patch"]


# --- retire: archive (metrics) or delete (metric groups) ---------------------------------------------------

@BOTH
def test_a_retirement_is_done_as_the_resource_retires(resource: Resource) -> None:
    api = ScriptedApi({"patch": [rep(resource, archived=True, _version=4)], "delete": [True]})
    result = outcome(applied(retire(resource), api))
    assert result == ("archived" if resource.retire == "archive" else "deleted", None)
    assert api.methods == ["patch" if resource.retire == "archive" else "delete"]


@BOTH
def test_a_retirement_that_already_happened_counts_as_done(resource: Resource) -> None:
    api = ScriptedApi({"patch": [refused(409)], "find": [rep(resource, archived=True)], "delete": [False]})
    result = outcome(applied(retire(resource), api))
    assert result == (("archived", "already applied") if resource.retire == "archive" else
                      ("deleted", "it was already gone"))


@BOTH
def test_a_refused_retirement_fails_and_is_reported(resource: Resource) -> None:
    api = ScriptedApi({"patch": [refused(409)], "find": [rep(resource)], "delete": [refused(409, "DELETE")]})
    verb = "PATCH" if resource.retire == "archive" else "DELETE"
    assert outcome(applied(retire(resource), api)) == ("failed", f"{verb} /api/v2/x/k failed: 409: refused")


@BOTH
def test_a_retirement_the_resource_does_not_have_is_never_sent(resource: Resource) -> None:
    other = "delete" if resource.retire == "archive" else "archive"
    change = replace(retire(resource), action=other)
    api = ScriptedApi({})
    assert outcome(applied(change, api)) == ("failed", f"not sent: a {resource.name} cannot be {other}d")
    assert api.calls == []


# --- a permission error ------------------------------------------------------------------------------------

@BOTH
def test_a_write_refused_for_permission_stops_new_changes_without_an_interrupt(resource: Resource) -> None:
    api = ScriptedApi({"create": [refused(403, "POST")]})
    plan = Plan([ProjectPlan("shop", "sha256:" + "0" * 64, [create(resource), update(resource)], 0, 0, [], [], [])],
                False, TAG, "", "")
    result = apply_plan(plan, api, parallelism=1)
    assert [(r.outcome, r.message) for r in result.results] == [
        ("failed", "POST /api/v2/x/k failed: 403: refused"),
        ("skipped", "not started: stopped after a permission error")]
    assert result.stopped and not result.interrupted
