"""`metrics-sync doctor`: read-only by default, exit 1 when an assumption metrics-sync needs is broken, a
report without the token, and never a touch on metrics other than its own throw-away one."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from metrics_sync.emulator import EmulatorApp, Store
from metrics_sync.emulator.readings import Readings
from tests.conftest import TOKEN, run_cli

ENV = {"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": "http://127.0.0.1:8765"}
EXISTING = {"key": "order-placed", "name": "Order placed", "kind": "custom", "eventKey": "order-placed",
            "isNumeric": False}


def _emulator() -> tuple[Store, EmulatorApp]:
    store = Store(["shop"])
    store.seed({"projects": {"shop": [EXISTING]}})
    return store, EmulatorApp(store, token=TOKEN)


def test_read_only_doctor_makes_no_write(tmp_path: Path) -> None:
    _, app = _emulator()
    result = run_cli("doctor", "--project", "shop", cwd=tmp_path, env=ENV, transport=httpx.WSGITransport(app=app))
    assert result.code == 0, result.out
    assert result.out.startswith("Checking LaunchDarkly at 127.0.0.1:8765, project shop (read-only; --write adds "
                                 "the checks that create a metric)\n")
    assert "  ok A1   the access token authenticates and may read the project's metrics" in result.out
    assert sum(app.stats.writes.values()) == 0
    assert all(route.startswith("GET") for route in app.stats.requests)
    report = json.loads((tmp_path / "metrics-sync-doctor.json").read_text())
    assert report["write"] is False and report["ok"] is True and TOKEN not in json.dumps(report)
    assert result.err == "Report written to metrics-sync-doctor.json (it holds no access token).\n"


def test_write_doctor_touches_only_its_own_metric(tmp_path: Path) -> None:
    store, app = _emulator()
    before = store.get("shop", "order-placed")
    result = run_cli("doctor", "--project", "shop", "--write", "--report", "out/doctor.json", cwd=tmp_path,
                     env=ENV, transport=httpx.WSGITransport(app=app))
    assert result.code == 1
    assert result.err.endswith(f"error: cannot write {tmp_path}/out/doctor.json: the folder {tmp_path}/out does "
                               "not exist\n")
    (tmp_path / "out").mkdir()
    result = run_cli("doctor", "--project", "shop", "--write", "--report", "out/doctor.json", cwd=tmp_path,
                     env=ENV, transport=httpx.WSGITransport(app=app))
    assert result.code == 0, result.out
    assert store.get("shop", "order-placed") == before
    assert [m["key"] for m in store.snapshot_metrics("shop")] == ["order-placed"]
    assert "Clean-up: metrics-sync-doctor-" in result.out and "was archived, then deleted." in result.out
    created = [e for e in app.audit]  # the comment-wrapper check wrote to the throw-away metric only
    assert all(e["key"].startswith("metrics-sync-doctor-") for e in created)


def test_a_broken_assumption_exits_1_and_says_which(tmp_path: Path) -> None:
    """A LaunchDarkly that ignored failed `test` operations would let guarded updates overwrite edits."""
    store, app = _emulator()
    inner = httpx.WSGITransport(app=app)

    def ignoring_tests(request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            body = json.loads(request.content)
            ops = body["patch"] if isinstance(body, dict) else body
            if any(op["op"] == "test" and op["path"] == "/name" for op in ops):
                current = store.get("shop", request.url.path.rsplit("/", 1)[1])
                return httpx.Response(200, json=current)
        return inner.handle_request(request)

    result = run_cli("doctor", "--project", "shop", "--write", cwd=tmp_path, env=ENV,
                     transport=httpx.MockTransport(ignoring_tests))
    assert result.code == 1
    assert "FAIL A8   a PATCH whose `test` fails is refused (400 or 409) and changes nothing" in result.out
    assert "Broken: 1 assumption(s) metrics-sync needs: A8." in result.out
    assert json.loads((tmp_path / "metrics-sync-doctor.json").read_text())["ok"] is False


def test_a_project_that_does_not_exist_is_named_not_a_broken_assumption(tmp_path: Path) -> None:
    _, app = _emulator()
    result = run_cli("doctor", "--project", "nope", cwd=tmp_path, env=ENV, transport=httpx.WSGITransport(app=app))
    assert result.code == 1
    assert result.out == ("Checking LaunchDarkly at 127.0.0.1:8765, project nope (read-only; --write adds the checks "
                          "that create a metric)\n\n"
                          "Nothing was checked: no project nope at 127.0.0.1:8765 (404 not_found): check the project "
                          "key (LaunchDarkly: Account settings → Projects), and --base-url for the EU or federal "
                          "instance.\n")
    assert "FAIL" not in result.out and "  ok A2" not in result.out and "bug report" not in result.out
    report = json.loads((tmp_path / "metrics-sync-doctor.json").read_text())
    assert report["ok"] is False and report["checks"] == [] and report["accessProblem"].startswith("no project nope")


def test_a_refused_token_is_named(tmp_path: Path) -> None:
    _, app = _emulator()
    result = run_cli("doctor", "--project", "shop", cwd=tmp_path, env={**ENV, "LD_ACCESS_TOKEN": "api-wrong"},
                     transport=httpx.WSGITransport(app=app))
    assert result.code == 1
    assert result.out.endswith("Nothing was checked: LaunchDarkly at 127.0.0.1:8765 refused the access token (401 "
                               "unauthorized): check LD_ACCESS_TOKEN, and --base-url for the EU or federal "
                               "instance.\n")


def test_a_403_is_a_permissions_problem_not_a_bug(tmp_path: Path) -> None:
    """A token whose role may read but not write (the emulator's reader token) runs the read checks; --write
    stops at the refused create, as a permissions problem."""
    store = Store(["shop"])
    store.seed({"projects": {"shop": [EXISTING]}})
    app = EmulatorApp(store, token=TOKEN, reader_token="api-reader")
    reader = {**ENV, "LD_ACCESS_TOKEN": "api-reader"}
    read_only = run_cli("doctor", "--project", "shop", cwd=tmp_path, env=reader, transport=httpx.WSGITransport(app=app))
    assert read_only.code == 0, read_only.out
    result = run_cli("doctor", "--project", "shop", "--write", cwd=tmp_path, env=reader,
                     transport=httpx.WSGITransport(app=app))
    assert result.code == 1
    assert "  ok A1   the access token authenticates and may read the project's metrics" in result.out
    assert result.out.endswith("Not all checked: the access token may not create metrics in project shop (403 "
                               "forbidden), so the write checks were not made: a permissions problem, not a bug; "
                               "--write needs a token with the metric-writer role.\n")
    assert "FAIL" not in result.out and "bug report" not in result.out
    assert [m["key"] for m in store.snapshot_metrics("shop")] == ["order-placed"]  # nothing created


@pytest.mark.parametrize("listed", ["omitted", "listed"])
def test_read_only_doctor_probes_holdouts_and_release_policies(tmp_path: Path, listed: str) -> None:
    store = Store(["shop"], readings=Readings(holdout_in_experiments=listed))
    store.seed({"projects": {"shop": [EXISTING]},
                "holdouts": {"shop": [{"key": "h", "environmentKey": "production", "metrics": ["order-placed"]}]},
                "releasePolicies": {"shop": [{"key": "p", "metrics": ["order-placed"]}]}})
    app = EmulatorApp(store, token=TOKEN)
    result = run_cli("doctor", "--project", "shop", cwd=tmp_path, env=ENV, transport=httpx.WSGITransport(app=app))
    assert result.code == 0, result.out
    assert all(route.startswith("GET") for route in app.stats.requests)
    report = json.loads((tmp_path / "metrics-sync-doctor.json").read_text())
    checks = {(c["id"], c["assumption"][:30]): c for c in report["checks"]}
    by_id = {c["id"]: c for c in report["checks"]}
    assert by_id["A40"]["holds"] and by_id["A40"]["observed"] == "200, 2 environments"
    assert by_id["A43"]["holds"] and by_id["A43"]["observed"] == "200, 1 policies"
    assert by_id["A42"]["reading"] == listed
    holdouts = [c for (i, _), c in checks.items() if i == "A41"]
    assert [c["holds"] for c in holdouts] == [True, True]
    assert holdouts[0]["reading"] == "total_count"


def test_doctor_says_when_holdouts_cannot_be_read(tmp_path: Path) -> None:
    _, app = _emulator()

    class NoHoldouts(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/holdouts"):
                return httpx.Response(200, json={"items": "x"})
            return httpx.WSGITransport(app=app).handle_request(request)

    result = run_cli("doctor", "--project", "shop", cwd=tmp_path, env=ENV, transport=NoHoldouts())
    assert result.code == 0, result.out  # not needed: plan blocks prune without them
    report = json.loads((tmp_path / "metrics-sync-doctor.json").read_text())
    a41 = [c for c in report["checks"] if c["id"] == "A41"]
    assert a41 and a41[0]["holds"] is False


@pytest.mark.parametrize("versions", ["new", "same"])
def test_write_doctor_observes_whether_an_update_makes_a_new_version(tmp_path: Path, versions: str) -> None:
    store = Store(["shop"], readings=Readings(metric_versions=versions))
    store.seed({"projects": {"shop": [EXISTING]}})
    app = EmulatorApp(store, token=TOKEN)
    result = run_cli("doctor", "--project", "shop", "--write", cwd=tmp_path, env=ENV,
                     transport=httpx.WSGITransport(app=app))
    assert result.code == 0, result.out
    [check] = [c for c in json.loads((tmp_path / "metrics-sync-doctor.json").read_text())["checks"]
               if c["id"] == "A47"]
    assert check["reading"] == versions
    assert check["observed"] == ("a new _versionId; the old one read with versionId: 200, as it was"
                                 if versions == "new" else "the _versionId stayed the same")


@pytest.mark.parametrize("project", ["..", ".", "shop/../x", "a b"])
def test_a_project_that_is_not_a_key_is_refused_before_any_request(tmp_path: Path, project: str) -> None:
    # `--project ..` made doctor ask for GET /api/v2?limit=50: the key goes into a URL path, so it is checked first.
    seen: list[str] = []
    transport = httpx.MockTransport(lambda request: seen.append(str(request.url)) or httpx.Response(404))
    result = run_cli("doctor", "--project", project, cwd=tmp_path, env=ENV, transport=transport)
    assert result.code == 1 and seen == []
    assert result.err == (f"error: `{project}` is not a LaunchDarkly project key (a project key has letters, numbers, "
                          "'.', '_' and '-', and starts with a letter or number; give --project KEY)\n")


@pytest.mark.parametrize("answer", [
    {"baseExperiment": {"key": "b", "currentIteration": ["not", "a", "mapping"]}},
    {"baseExperiment": {"key": "b", "currentIteration": {"metrics": 7}}},
    {"baseExperiment": {"key": "b", "currentIteration": {"metrics": [{"key": "../x"}]}}},
])
def test_doctor_survives_a_holdout_detail_of_the_wrong_shape(tmp_path: Path, answer: dict[str, object]) -> None:
    store = Store(["shop"])
    store.seed({"projects": {"shop": [EXISTING]},
                "holdouts": {"shop": [{"key": "h", "environmentKey": "production", "metrics": ["order-placed"]}]}})
    inner = httpx.WSGITransport(app=EmulatorApp(store, token=TOKEN))
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if "/holdouts/" in request.url.path:
            return httpx.Response(200, json=answer)
        return inner.handle_request(request)

    result = run_cli("doctor", "--project", "shop", cwd=tmp_path, env=ENV, transport=httpx.MockTransport(handle))
    assert "internal error" not in result.err and "Traceback" not in result.err, result.err
    assert not any(".." in path for path in seen)


def test_doctor_puts_no_key_of_the_wrong_pattern_into_a_path(tmp_path: Path) -> None:
    _, app = _emulator()
    inner = httpx.WSGITransport(app=app)
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path.endswith("/environments"):
            return httpx.Response(200, json={"items": [{"key": ".."}], "totalCount": 1})
        return inner.handle_request(request)

    result = run_cli("doctor", "--project", "shop", cwd=tmp_path, env=ENV, transport=httpx.MockTransport(handle))
    assert "internal error" not in result.err, result.err
    assert not any("/environments/" in path for path in seen), seen
