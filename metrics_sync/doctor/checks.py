"""`metrics-sync doctor`: check, on a real LaunchDarkly account, every assumption metrics-sync makes about
LaunchDarkly's API (docs/launchdarkly-contract.md; each check names its assumption there, A1…).

Read-only by default (it also reads the project's environments, one environment's holdouts and one holdout, and
its release policies). With `write=True` it creates a throw-away metric `metrics-sync-doctor-<random>` in the
project, observes how LaunchDarkly treats it, then archives it and deletes it when LaunchDarkly allows, and a
second one it deletes without archiving (archived first when LaunchDarkly requires it); it never touches any
other metric. Each check says what was assumed, what was observed, and whether
metrics-sync copes with what was observed. `needed` checks are those metrics-sync cannot work without.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

from metrics_sync import __version__
from metrics_sync.core.errors import ApiError, UsageError
from metrics_sync.core.fields import KEY
from metrics_sync.core.resources import METRIC
from metrics_sync.launchdarkly.client import Answer, Client
from metrics_sync.launchdarkly.holders import ROUTE_ENVIRONMENTS, ROUTE_HOLDOUT, ROUTE_HOLDOUTS, ROUTE_POLICIES
from metrics_sync.launchdarkly.session import API_VERSION

KEY_HINT = ("a project key has letters, numbers, '.', '_' and '-', and starts with a letter or number; "
            "give --project KEY")

LIST, ITEM = METRIC.collection, METRIC.item  # the routes doctor probes, as the resource describes them
MEMBERS = "/api/v2/members"
DOCTOR_TAG = "metrics-sync-doctor"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Check:
    id: str  # the assumption's id in docs/launchdarkly-contract.md
    assumption: str
    observed: str
    holds: bool  # the assumption was observed to hold
    copes: str  # how metrics-sync fares with what was observed
    needed: bool = False  # metrics-sync cannot work when this does not hold
    reading: str | None = None  # for unconfirmed behaviours: which reading LaunchDarkly showed

    @property
    def broken(self) -> bool:
        return self.needed and not self.holds


@dataclass
class Report:
    base_url_host: str
    project: str
    write: bool
    checks: list[Check] = field(default_factory=list)
    cleanup: str = ""
    # Why nothing could be checked, when that is the account's setup and not LaunchDarkly's contract: no such
    # project (404), a token that may not read it (403) or is refused (401). Not a bug to report.
    access_problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.access_problem is None and not any(c.broken for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {"formatVersion": FORMAT_VERSION, "tool": {"name": "metrics-sync", "version": __version__},
                "apiVersion": API_VERSION, "baseUrlHost": self.base_url_host, "project": self.project,
                "write": self.write, "ok": self.ok, "cleanup": self.cleanup, "accessProblem": self.access_problem,
                "checks": [asdict(c) for c in self.checks]}


class _Doctor:
    def __init__(self, client: Client, project: str, report: Report) -> None:
        self.client = client
        self.project = project
        self.report = report
        self.list_path = f"/api/v2/metrics/{quote(project, safe='')}"

    def add(self, check: Check) -> None:
        self.report.checks.append(check)

    def item(self, key: str) -> str:
        return f"{self.list_path}/{quote(key, safe='')}"

    def call(self, method: str, path: str, route: str, **kwargs: Any) -> Answer:
        return self.client.probe(method, path, route, **kwargs)

    # --- read-only ------------------------------------------------------------------------------------

    def read_only(self) -> bool:
        """Returns whether the read checks passed well enough to go on."""
        answer = self.call("GET", self.list_path, LIST, params={"limit": 50, "offset": 0, "expand": "experimentCount"})
        if answer.status in ACCESS_PROBLEMS:
            self.report.access_problem = ACCESS_PROBLEMS[answer.status].format(
                project=self.project, host=self.client.host, answer=f"{answer.status} {_code(answer)}".strip())
            return False
        readable = answer.status == 200
        self.add(Check("A1", "the access token authenticates and may read the project's metrics",
                       f"{answer.status} {_code(answer)}".strip(), readable,
                       "yes" if readable else "no: plan cannot read LaunchDarkly (check the token's role)",
                       needed=True))
        self.add(Check("A2", f"LD-API-Version {API_VERSION} is accepted",
                       f"{answer.status} to a request that carries it", answer.status != 400,
                       "yes" if answer.status != 400 else "no: every call would be refused", needed=True))
        limits = sorted(h for h in answer.headers if h.startswith("x-ratelimit-") or h == "retry-after")
        self.add(Check("A17", "answers carry rate-limit headers (X-Ratelimit-*)",
                       ", ".join(limits) if limits else "none on this answer", bool(limits),
                       "yes: it paces by them when present, and waits on 429 answers either way"))
        if not readable:
            return False
        body = answer.body if isinstance(answer.body, dict) else {}
        items = body.get("items")
        total = body.get("totalCount")
        shaped = isinstance(items, list) and isinstance(total, int) and total >= 0 and all(
            isinstance(i, dict) and isinstance(i.get("key"), str) and isinstance(i.get("_version"), int)
            for i in items)
        self.add(Check("A3", "the metric list pages with limit/offset and gives items (key, _version) and "
                       "totalCount", f"{len(items) if isinstance(items, list) else 'no'} items, totalCount {total!r}",
                       shaped, "yes" if shaped else "no: plan cannot read the list", needed=True))
        if isinstance(items, list) and items:
            has = any(isinstance(i, dict) and "activeExperimentCount" in i for i in items)
            self.add(Check("A13", "list items carry activeExperimentCount / activeGuardedRolloutCount",
                           "present" if has else "absent", True,
                           "yes: plan reads each metric it may archive on its own, with expansions",
                           reading="included" if has else "omitted"))
            self.add(last_seen_check(items))
        try:
            units = self.client.experiment_units(self.project)
            self.add(Check("A12", "the project's experimentation settings list the context kinds available for "
                           "experiments", ", ".join(units) or "none", True,
                           "yes: plan refuses analysis units outside them"))
        except ApiError as exc:
            self.add(Check("A12", "the project's experimentation settings list the context kinds available for "
                           "experiments", f"{exc.status or 'no answer'}: {exc.api_message}", False,
                           "yes: plan warns that analysis units were not checked"))
        self._holders()
        return True

    def _holders(self) -> None:
        """What else uses a metric (A40-A43), read-only: the environments, the first environment's holdouts, one
        holdout's detail (and whether its metric lists the holdout's base experiment), the release policies."""
        project = quote(self.project, safe="")
        blocks = "plan blocks prune when they cannot be read, and warns on updates"
        answer = self.call("GET", f"/api/v2/projects/{project}/environments", ROUTE_ENVIRONMENTS,
                           params={"limit": 20, "offset": 0})
        items = _items(answer)
        # Keys from LaunchDarkly go into URL paths below: only those that follow the key pattern (never `..`).
        environments = [str(e["key"]) for e in items or [] if isinstance(e, dict) and isinstance(e.get("key"), str)
                        and KEY.fullmatch(e["key"])]
        self.add(Check("A40", "the project's environments list pages with limit/offset and gives items with keys",
                       f"{answer.status}, {len(environments)} environments", answer.status == 200 and items is not None,
                       f"yes: {blocks}"))
        if environments:
            env = quote(environments[0], safe="")
            answer = self.call("GET", f"/api/v2/projects/{project}/environments/{env}/holdouts", ROUTE_HOLDOUTS,
                               params={"limit": 20, "offset": 0})
            holdouts = _items(answer)
            body = answer.body if isinstance(answer.body, dict) else {}
            count = "total_count" if "total_count" in body else "totalCount" if "totalCount" in body else "none"
            self.add(Check("A41", "an environment's holdouts list gives items (key, name, status) and a count",
                           f"{answer.status}, {len(holdouts or [])} holdouts in {environments[0]}, count field "
                           f"{count}", answer.status == 200 and holdouts is not None,
                           f"yes: either count field is read; {blocks}",
                           reading=count if holdouts is not None else None))
            keyed = [h for h in holdouts or [] if isinstance(h, dict) and isinstance(h.get("key"), str)
                     and KEY.fullmatch(h["key"])]
            if keyed:
                self._holdout(project, env, str(keyed[0]["key"]))
        answer = self.call("GET", f"/api/v2/projects/{project}/release-policies", ROUTE_POLICIES,
                           headers={"LD-API-Version": "beta"})
        policies = _items(answer)
        shaped = policies is not None and all(isinstance(p, dict) and isinstance(p.get("key"), str) and (
            not isinstance(p.get("guardedReleaseConfig"), dict) or isinstance(
                p["guardedReleaseConfig"].get("metricKeys", []), list)) for p in policies)
        self.add(Check("A43", "release policies (beta) list items whose guardedReleaseConfig names metricKeys and "
                       "metricGroupKeys", f"{answer.status}, {len(policies or [])} policies", answer.status == 200
                       and shaped, f"yes: {blocks}"))

    def _holdout(self, project: str, env: str, key: str) -> None:
        answer = self.call("GET", f"/api/v2/projects/{project}/environments/{env}/holdouts/{quote(key, safe='')}",
                           ROUTE_HOLDOUT, params={"expand": "draftIteration"})
        body = answer.body if isinstance(answer.body, dict) else {}
        base = body.get("baseExperiment") if isinstance(body.get("baseExperiment"), dict) else None
        iteration = (base or {}).get("currentIteration") or (base or {}).get("draftIteration")
        named = iteration.get("metrics") if isinstance(iteration, dict) else None
        metrics = [m["key"] for m in named if isinstance(m, dict) and isinstance(m.get("key"), str)
                   and KEY.fullmatch(m["key"]) and not m.get("isGroup")] if isinstance(named, list) else []
        self.add(Check("A41", "a holdout's detail carries its base experiment, whose iteration names its metrics",
                       f"{answer.status}, {len(metrics)} metrics", answer.status == 200 and base is not None,
                       "yes: plan reads each holdout's detail for its metrics (at most 100 per plan)"))
        if not metrics:
            return
        rep = self.call("GET", self.item(metrics[0]), ITEM, params={"expand": "experiments"})
        experiments = rep.body.get("experiments") if isinstance(rep.body, dict) else None
        listed = isinstance(experiments, list) and any(isinstance(e, dict) and e.get("key") == (base or {}).get("key")
                                                       for e in experiments)
        self.add(Check("A42", "a metric's experiments expansion lists the base experiment of a holdout that uses it",
                       "listed" if listed else "omitted", True,
                       "yes: plan names the holdout once under either reading",
                       reading="listed" if listed else "omitted"))

    # --- with --write ---------------------------------------------------------------------------------

    def write(self, member_id: Callable[[], str | None]) -> None:
        key = f"metrics-sync-doctor-{secrets.token_hex(4)}"
        other_member = member_id()
        body: dict[str, Any] = {"key": key, "name": "metrics-sync doctor (throw-away)", "kind": "custom",
                                "eventKey": key, "isNumeric": False, "tags": [DOCTOR_TAG]}
        if other_member:
            body["maintainerId"] = other_member
        created = self.call("POST", self.list_path, LIST, json_body=body)
        if created.status == 403:
            self.report.access_problem = (f"the access token may not create metrics in project {self.project} "
                                          f"(403 {_code(created)}), so the write checks were not made: a permissions "
                                          "problem, not a bug; --write needs a token with the metric-writer role")
            return
        ok = created.status == 201 and isinstance(created.body, dict)
        self.add(Check("A11", "a POST of a custom conversion metric is answered 201 with the metric",
                       f"{created.status} {_code(created)}".strip(), ok,
                       "yes" if ok else "no: apply cannot create metrics (check the token's role)", needed=True))
        if not ok:
            return
        try:
            self._observe(key, created.body, other_member)
        finally:
            self._clean_up(key)
        self._delete_unarchived()

    def _delete_unarchived(self) -> None:
        """Whether a delete needs an archive first sits behind a LaunchDarkly flag (A6; account-dependent): a second
        throw-away metric, deleted without archiving it (archived and deleted when that is refused)."""
        key = f"metrics-sync-doctor-{secrets.token_hex(4)}"
        body = {"key": key, "name": "metrics-sync doctor (throw-away)", "kind": "custom", "eventKey": key,
                "isNumeric": False, "tags": [DOCTOR_TAG]}
        if self.call("POST", self.list_path, LIST, json_body=body).status != 201:
            return
        item = self.item(key)
        early = self.call("DELETE", item, ITEM)
        refused = early.status in (400, 409)
        self.add(Check("A6", "a metric must be archived before it can be deleted (behind a LaunchDarkly flag)",
                       f"{early.status} {_code(early)}".strip(), early.status == 204 or refused,
                       "yes: metrics-sync never deletes metrics (it archives them)",
                       reading="required" if refused else "not_required" if early.status == 204 else None))
        if early.status == 204:
            self.report.cleanup += f"; {key} was deleted without an archive first"
            return
        self.call("PATCH", item, ITEM, json_body=[{"op": "replace", "path": "/archived", "value": True}])
        deleted = self.call("DELETE", item, ITEM)
        self.report.cleanup += f"; {key} was archived, then deleted" if deleted.status == 204 else \
            f"; {key} was archived; LaunchDarkly refused to delete it ({deleted.status}), tagged {DOCTOR_TAG}"

    def _observe(self, key: str, rep: dict[str, Any], other_member: str | None) -> None:
        defaults = {"analysisType": "mean", "unitAggregationType": "average", "successCriteria": "HigherThanBaseline",
                    "eventDefault": {"disabled": False, "value": 0}}
        seen = {name: rep.get(name) for name in defaults}
        differ = [f"{name}={seen[name]!r}" for name in defaults if seen[name] != defaults[name]]
        self.add(Check("A11", "LaunchDarkly fills in its defaults on create (mean, average, HigherThanBaseline, "
                       "eventDefault disabled false, value 0)", "as assumed" if not differ else ", ".join(differ),
                       not differ, "yes: metrics-sync sends every default explicitly"))
        if other_member:
            kept = rep.get("maintainerId") == other_member
            self.add(Check("A7", "a maintainerId sent in a POST is ignored (set only by a PATCH after create)",
                           "kept" if kept else "ignored", True,
                           "yes: after a create, apply sets the maintainer with a guarded PATCH when needed",
                           reading="kept" if kept else "ignored"))
        else:
            self.add(Check("A7", "a maintainerId sent in a POST is ignored (set only by a PATCH after create)",
                           "not observable (no second member readable with this token)", True,
                           "yes: after a create, apply sets the maintainer with a guarded PATCH when needed"))
        item = self.item(key)
        absent = "description" not in rep
        answer = self.call("PATCH", item, ITEM, json_body=[{"op": "replace", "path": "/description",
                                                            "value": "metrics-sync doctor"}])
        self.add(Check("A9", "`replace` of a field the metric does not have acts as `add`",
                       f"{answer.status} ({'the field was absent' if absent else 'the field was present'})",
                       answer.status == 200, "yes: metrics-sync sends `add` for absent fields",
                       reading="accepted" if answer.status == 200 else "refused"))
        self._versions(key, rep)
        name = rep.get("name")
        answer = self.call("PATCH", item, ITEM, json_body=[
            {"op": "test", "path": "/name", "value": f"not {name}"},
            {"op": "replace", "path": "/name", "value": "metrics-sync doctor (changed)"}])
        guarded = answer.status in (400, 409)
        self.add(Check("A8", "a PATCH whose `test` fails is refused (400 or 409) and changes nothing",
                       f"{answer.status} {_code(answer)}".strip(), guarded,
                       "yes: either status means the metric changed since the plan" if guarded
                       else "no: guarded updates would overwrite edits made in the UI", needed=True,
                       reading=str(answer.status) if guarded else None))
        answer = self.call("PATCH", item, ITEM, json_body={"comment": "metrics-sync doctor", "patch": [
            {"op": "replace", "path": "/description", "value": "metrics-sync doctor (with a comment)"}]})
        accepted = answer.status == 200
        self.add(Check("A10", 'PATCH accepts the {"comment", "patch"} wrapper (the audit-log comment)',
                       f"{answer.status} {_code(answer)}".strip(), accepted,
                       "yes: when refused, apply sends bare JSON Patch without the comment",
                       reading="accepted" if accepted else "rejected"))
        answer = self.call("PATCH", item, ITEM, json_body=[{"op": "test", "path": "/archived", "value": False},
                                                           {"op": "replace", "path": "/archived", "value": True}])
        flag = answer.body.get("archived") if isinstance(answer.body, dict) else "?"
        archived = answer.status == 200 and flag is True
        self.add(Check("A5", "a metric is archived by a guarded PATCH of /archived",
                       f"{answer.status}, archived: {flag}", archived,
                       "yes" if archived else "no: prune cannot archive", needed=True))
        if archived:
            listed = self.call("GET", self.list_path, LIST,
                               params={"limit": 50, "offset": 0, "filter": f"query equals '{key}'"})
            items = listed.body.get("items") if isinstance(listed.body, dict) else None
            if listed.status == 200 and isinstance(items, list):
                shown = any(isinstance(i, dict) and i.get("key") == key for i in items)
                self.add(Check("A4", "the metric list shows archived metrics", "listed" if shown else "hidden", True,
                               "yes: a create refused for a key the list did not show reads the key and restores it",
                               reading="listed" if shown else "hidden"))
            else:
                self.add(Check("A4", "the metric list shows archived metrics", f"{listed.status} {_code(listed)}",
                               False, "yes: a create refused for a key the list did not show reads the key"))

    def _versions(self, key: str, rep: dict[str, Any]) -> None:
        """Whether an update gives the metric a new `_versionId` (A47): the throw-away metric's event key is changed,
        and when the version changed, the one before is read back with `versionId`."""
        before = self.call("GET", self.item(key), ITEM)
        old = before.body.get("_versionId") if isinstance(before.body, dict) else None
        answer = self.call("PATCH", self.item(key), ITEM, json_body=[
            {"op": "replace", "path": "/eventKey", "value": f"{rep.get('eventKey')}-changed"}])
        new = answer.body.get("_versionId") if isinstance(answer.body, dict) else None
        assumption = "an update that changes a metric gives it a new _versionId; the old one stays readable"
        copes = "yes: the running-experiment alert holds whether or not it does"
        if answer.status != 200 or not isinstance(old, str) or not isinstance(new, str):
            self.add(Check("A47", assumption, f"not observable ({answer.status} {_code(answer)}, _versionId "
                           f"{'present' if old else 'absent'})".strip(), True, copes))
            return
        if new == old:
            self.add(Check("A47", assumption, "the _versionId stayed the same", True, copes, reading="same"))
            return
        read = self.call("GET", self.item(key), ITEM, params={"versionId": old})
        kept = isinstance(read.body, dict) and read.body.get("eventKey") == rep.get("eventKey")
        self.add(Check("A47", assumption, f"a new _versionId; the old one read with versionId: {read.status}"
                       f"{', as it was' if kept else ''}", True, copes, reading="new"))

    def _clean_up(self, key: str) -> None:
        item = self.item(key)
        current = self.call("GET", item, ITEM)
        if isinstance(current.body, dict) and not current.body.get("archived"):
            self.call("PATCH", item, ITEM, json_body=[{"op": "replace", "path": "/archived", "value": True}])
        deleted = self.call("DELETE", item, ITEM)
        if deleted.status == 204:
            self.report.cleanup = f"{key} was archived, then deleted"
        else:
            self.report.cleanup = (f"{key} was archived; LaunchDarkly refused to delete it ({deleted.status} "
                                   f"{_code(deleted)}), so it stays archived, tagged {DOCTOR_TAG}").strip()
        self.add(Check("A6", "an archived, unused metric can be deleted", f"{deleted.status} {_code(deleted)}".strip(),
                       deleted.status == 204, "yes: metrics-sync never deletes metrics (it archives them)"))


ACCESS_PROBLEMS = {
    401: "LaunchDarkly at {host} refused the access token ({answer}): check LD_ACCESS_TOKEN, and --base-url for the "
         "EU or federal instance",
    403: "the access token may not read the metrics of project {project} ({answer}): a permissions problem, not a "
         "bug; give the token a role that can (LaunchDarkly's Reader role is enough without --write)",
    404: "no project {project} at {host} ({answer}): check the project key (LaunchDarkly: Account settings → "
         "Projects), and --base-url for the EU or federal instance",
}


def _items(answer: Answer) -> list[Any] | None:
    """A list answer's `items`, or None when the answer is not one."""
    items = answer.body.get("items") if answer.status == 200 and isinstance(answer.body, dict) else None
    return items if isinstance(items, list) else None


def _code(answer: Answer) -> str:
    return str(answer.body.get("code", "")) if isinstance(answer.body, dict) else ""


def _another_member(client: Client) -> Callable[[], str | None]:
    """A member other than the token's own, to see whether a POST keeps a maintainer (None when the token
    cannot read members or there is only one)."""
    def find() -> str | None:
        me = client.probe("GET", f"{MEMBERS}/me", MEMBERS + "/me")
        mine = me.body.get("_id") if isinstance(me.body, dict) else None
        answer = client.probe("GET", MEMBERS, MEMBERS, params={"limit": 20})
        items = answer.body.get("items") if isinstance(answer.body, dict) else None
        for member in items if isinstance(items, list) else []:
            if isinstance(member, dict) and isinstance(member.get("_id"), str) and member["_id"] != mine:
                return str(member["_id"])
        return None

    return find


def last_seen_check(items: list[Any]) -> Check:
    """A50: what `lastSeen` is, from the first page of the list. Two metrics counting the same event key with
    different `lastSeen` show it is kept per metric; equal values fit per event key (not proof: both may have
    seen the same last event). Without such a pair it cannot be told from a read."""
    assumption = "a metric's lastSeen is when LaunchDarkly last saw its event key (shared by metrics counting it)"
    copes = "yes: health judges each metric by its own lastSeen, which is right under both readings"
    by_event: dict[str, set[Any]] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("eventKey"), str) and not item.get("archived"):
            by_event.setdefault(item["eventKey"], set()).add(item.get("lastSeen"))
    differing = sorted(event for event, seen in by_event.items() if len(seen) > 1)
    if differing:
        return Check("A50", assumption, f"metrics counting `{differing[0]}` have different lastSeen values", True,
                     copes, reading="metric")
    pairs = [event for event in by_event if sum(1 for i in items if isinstance(i, dict)
                                                and i.get("eventKey") == event and not i.get("archived")) > 1]
    if pairs:
        return Check("A50", assumption, f"metrics counting `{sorted(pairs)[0]}` share their lastSeen", True, copes,
                     reading="event_key")
    return Check("A50", assumption, "not observable (no two metrics on the first page count the same event key)",
                 True, copes)


def examine(client: Client, project: str, *, write: bool) -> Report:
    """Every check against `project`. Its key is checked first, as every command checks a key before it goes
    into a URL path (`..` would make `/api/v2/metrics/..` ask for `/api/v2`)."""
    if not KEY.fullmatch(project):
        raise UsageError(f"`{project[:80]}` is not a LaunchDarkly project key", KEY_HINT)
    report = Report(base_url_host=client.host, project=project, write=write)
    doctor = _Doctor(client, project, report)
    try:
        if doctor.read_only() and write:
            doctor.write(_another_member(client))
    except ApiError as exc:  # no answer at all (network): one more failed check, never a crash
        report.checks.append(Check("A1", "LaunchDarkly answers", f"{exc.status or 'no answer'}: {exc.api_message}",
                                   False, "no: nothing can be checked", needed=True))
    return report
