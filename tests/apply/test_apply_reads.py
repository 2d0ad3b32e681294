"""What apply reads besides its writes (counted by the emulator): when nobody reviews the plan it makes and no
refusal depends on it, apply does not read what uses each update one by one (plan did; the writes stay guarded by
`test`s of the values planned against); with --protect-running, or when it asks for confirmation, it does, so an
experiment started since the plan is still refused. A metric edited since the plan is still caught by the guard."""

from __future__ import annotations

import json

from metrics_sync.apply.executor import apply_plan
from metrics_sync.core.model import Definitions
from metrics_sync.definitions.load import load_definitions
from metrics_sync.planning.make import make_plan
from tests.apply.test_apply import TAG
from tests.conftest import Shop, make_client
from tests.planning.test_running_experiments import EXPERIMENTS, ORDER_VALUE_EVENT

ITEM_READ = "GET /api/v2/metrics/{projectKey}/{metricKey}"
PATCH = "PATCH /api/v2/metrics/{projectKey}/{metricKey}"
# An update that changes no results: `order-value` is used by a running experiment all the same.
DESCRIPTION = ("description: Total order value per user, in US dollars.",
               "description: Total order value per user (USD).")


def _applied_shop(shop: Shop) -> Shop:
    assert shop.run("apply", "--auto-approve").code == 0
    shop.store.seed(EXPERIMENTS)
    return shop


def _counted(shop: Shop, *args: str, tty: bool = False, stdin: str = "") -> tuple[dict[str, int], str, int]:
    """(the requests one command made, by route; its output; its exit code)."""
    before = dict(shop.app.stats.requests)
    result = shop.run(*args, tty=tty, stdin=stdin)
    made = {r: n - before.get(r, 0) for r, n in shop.app.stats.requests.items() if n - before.get(r, 0)}
    return made, result.out + result.err, result.code


def test_apply_auto_approve_reads_no_users_one_by_one_and_plan_still_does(shop: Shop) -> None:
    _applied_shop(shop)
    shop.edit_yaml("checkout.yaml", *ORDER_VALUE_EVENT)
    planned, out, code = _counted(shop, "plan")
    assert code == 0 and planned.get(ITEM_READ) == 1 and "used by experiment `checkout-redesign`" in out
    made, out, code = _counted(shop, "apply", "--auto-approve")
    assert code == 0, out
    assert ITEM_READ not in made and made[PATCH] == 1
    assert not [r for r in made if "experiments" in r or "holdouts" in r or "release-policies" in r], made
    # The plan it shows says what it did not read, and where to see it.
    assert "what uses `order-value` (changes that alter results) was not read one by one" in out
    assert "plan names them; apply reads them when it asks for confirmation or with --protect-running" in out
    assert shop.store.get("shop", "order-value")["eventKey"] == "order-completed"


def test_a_change_that_alters_no_results_gets_no_note(shop: Shop) -> None:
    _applied_shop(shop)
    shop.edit_yaml("checkout.yaml", *DESCRIPTION)
    made, out, code = _counted(shop, "apply", "--auto-approve")
    assert code == 0 and ITEM_READ not in made and made[PATCH] == 1
    assert "not read one by one" not in out


def test_a_saved_plan_is_applied_without_reading_users_again(shop: Shop) -> None:
    _applied_shop(shop)
    shop.edit_yaml("checkout.yaml", *ORDER_VALUE_EVENT)
    planned, _, code = _counted(shop, "plan", "--out", "plan.json")
    assert code == 0 and planned.get(ITEM_READ) == 1
    assert json.loads((shop.root / "plan.json").read_text())["projects"][0]["changes"][0]["usedBy"]
    made, out, code = _counted(shop, "apply", "--plan", "plan.json")
    assert code == 0, out
    assert ITEM_READ not in made and made[PATCH] == 1


def test_protect_running_reads_them_and_still_refuses_an_experiment_started_since_the_plan(shop: Shop) -> None:
    """Nothing says starting an experiment changes the metric's `_version` (docs/launchdarkly-contract.md A51):
    the emulator's does not, so only a fresh read can see it, and --protect-running makes one."""
    _applied_shop(shop)
    shop.edit_yaml("checkout.yaml", *ORDER_VALUE_EVENT)
    shop.store.experiments["shop"]["checkout-redesign"]["status"] = "stopped"
    shop.store._usage.clear()
    assert shop.run("plan", "--protect-running", "--out", "p.json").code == 0
    version = shop.store.get("shop", "order-value")["_version"]
    shop.store.experiments["shop"]["checkout-redesign"]["status"] = "running"
    shop.store._usage.clear()
    assert shop.store.get("shop", "order-value")["_version"] == version  # started: the metric is not touched
    made, out, code = _counted(shop, "apply", "--plan", "p.json", "--protect-running")
    assert code == 1 and "refused because protectRunningExperiments is on" in out
    assert made.get(ITEM_READ) == 1 and PATCH not in made
    made, out, code = _counted(shop, "apply", "--auto-approve", "--protect-running")
    assert code == 1 and made.get(ITEM_READ) == 1 and PATCH not in made
    assert shop.store.get("shop", "order-value")["eventKey"] == "order-placed"


def test_apply_that_asks_for_confirmation_shows_who_uses_the_change(shop: Shop) -> None:
    _applied_shop(shop)
    shop.edit_yaml("checkout.yaml", *ORDER_VALUE_EVENT)
    made, out, code = _counted(shop, "apply", "--no-color", tty=True, stdin="n\n")
    assert code == 1 and made.get(ITEM_READ) == 1 and PATCH not in made
    assert "used by experiment `checkout-redesign` (production, running)" in out
    assert "WARNING: changing `eventKey` of metric `order-value` changes the results of" in out


def _definitions(shop: Shop) -> Definitions:
    definitions, _ = load_definitions([str(shop.root / "metrics")])
    return definitions


def test_a_metric_edited_between_plan_and_write_is_caught_by_the_guard(shop: Shop) -> None:
    """Planned without reading users; edited in LaunchDarkly before the write: the guarded patch is refused, the
    one read after it reports the metric changed, and nothing is overwritten."""
    _applied_shop(shop)
    shop.edit_yaml("checkout.yaml", *ORDER_VALUE_EVENT)
    with make_client(shop.app) as client:
        plan = make_plan(client, _definitions(shop), ownership_tag=TAG, update_uses=False)
        assert [c.key for p in plan.projects for c in p.changes] == ["order-value"]
        shop.ui_edit("order-value", [{"op": "replace", "path": "/eventKey", "value": "order-paid"}])
        before = dict(shop.app.stats.requests)
        result = apply_plan(plan, client)
    made = {r: n - before.get(r, 0) for r, n in shop.app.stats.requests.items() if n - before.get(r, 0)}
    [outcome] = result.results
    assert outcome.outcome == "failed"
    assert "was changed in LaunchDarkly since the plan (eventKey)" in str(outcome.message)
    assert made == {PATCH: 1, ITEM_READ: 1}
    assert shop.store.get("shop", "order-value")["eventKey"] == "order-paid"


def test_protect_is_never_without_the_reads_it_rests_on(shop: Shop) -> None:
    _applied_shop(shop)
    shop.edit_yaml("checkout.yaml", *ORDER_VALUE_EVENT)
    with make_client(shop.app) as client:
        plan = make_plan(client, _definitions(shop), ownership_tag=TAG, protect=True, update_uses=False)
    assert plan.refused and "refused because protectRunningExperiments is on" in plan.refused[0].message
