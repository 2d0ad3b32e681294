"""Plans that know what a change touches: the experiments and guarded rollouts using each changed metric or
group are named, a change to the results of a running one is a warning in text, JSON and the PR comment, and
`protectRunningExperiments` refuses it. The emulator's seeded experiments play LaunchDarkly's."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from metrics_sync.core.model import Use
from metrics_sync.emulator.readings import Readings
from metrics_sync.planning.usage import statuses_needed, uses_of
from tests.conftest import Shop

EXPERIMENTS = {
    "experiments": {"shop": [
        {"key": "checkout-redesign", "name": "Checkout redesign", "environmentKey": "production", "status": "running",
         "metrics": ["order-value"], "metricGroups": ["checkout-funnel"]},
        {"key": "spring-test", "name": "Spring test", "environmentKey": "staging", "status": "stopped",
         "metrics": ["order-value", "add-to-cart-count"]}]},
    "guardedRollouts": {"shop": [{"flagKey": "new-payment-form", "environmentKey": "production",
                                  "metrics": ["payment-failed"]}]},
}


@pytest.fixture
def shop(tmp_path: Path) -> Shop:
    shop = Shop(tmp_path / "repo")
    assert shop.run("apply", "--auto-approve").code == 0
    shop.store.seed(EXPERIMENTS)
    return shop


ORDER_VALUE_EVENT = ("    eventKey: order-placed\n    isNumeric: true",
                     "    eventKey: order-completed\n    isNumeric: true")


def test_a_results_change_of_a_metric_a_running_experiment_uses_is_a_warning(shop: Shop) -> None:
    shop.edit_yaml("checkout.yaml", *ORDER_VALUE_EVENT)
    plan = shop.run("plan", "--detailed-exitcode")
    assert plan.code == 2  # a warning, not a refusal: the plan can be applied
    assert plan.out == (
        "Project shop\n"
        "  ~ update order-value (custom numeric)\n"
        "      eventKey: \"order-placed\" → \"order-completed\"\n"
        "      used by experiment `checkout-redesign` (production, running)\n"
        "      used by experiment `spring-test` (staging, not running)\n"
        "      WARNING: changing `eventKey` of metric `order-value` changes the results of experiment "
        "`checkout-redesign` (production, running): at once if LaunchDarkly measures a running iteration with the "
        "latest metric version, else from the next one; results before and after the change will not be "
        "comparable\n"
        "\n"
        "Plan: 0 to create, 1 to update, 0 to archive, 9 unchanged; 1 change changes the results of running "
        "experiments (see above).\n")


def test_json_names_the_users_and_the_alert(shop: Shop) -> None:
    shop.edit_yaml("checkout.yaml", *ORDER_VALUE_EVENT)
    data = json.loads(shop.run("plan", "--format", "json").out)
    assert data["summary"]["alerts"] == 1
    change = data["projects"][0]["changes"][0]
    assert change["usedBy"] == [
        {"kind": "experiment", "key": "checkout-redesign", "name": "Checkout redesign", "environment": "production",
         "running": True, "via": None},
        {"kind": "experiment", "key": "spring-test", "name": "Spring test", "environment": "staging",
         "running": False, "via": None}]
    assert change["alerts"][0].startswith("changing `eventKey` of metric `order-value` changes the results of")


def test_the_pr_comment_puts_the_warning_first(shop: Shop) -> None:
    shop.edit_yaml("checkout.yaml", *ORDER_VALUE_EVENT)
    markdown = shop.run("plan", "--format", "markdown").out
    table = ("> [!WARNING]\n> **1 change changes the results of running experiments.** Results before and after "
             "the change will not be comparable.\n\n"
             "| Change | Fields | Used by (running) |\n"
             "|---|---|---|\n"
             "| update metric `order-value` in `shop` | `eventKey` | experiment `checkout-redesign` (production, "
             "running) |\n")
    assert table in markdown
    assert markdown.index(table) < markdown.index("<details>")
    assert "!     WARNING: changing `eventKey` of metric `order-value`" in markdown


@pytest.mark.parametrize("listed", ["omitted", "listed"])
def test_an_experiment_using_a_group_is_named_for_the_groups_metrics(tmp_path: Path, listed: str) -> None:
    # Whether LaunchDarkly lists such an experiment on the metric itself is unconfirmed (A28): either way it is
    # named once, and the change is a warning.
    shop = Shop(tmp_path / "repo", Readings(experiments_through_groups=listed))
    shop.run("apply", "--auto-approve")
    shop.store.seed(EXPERIMENTS)
    shop.edit_yaml("checkout.yaml", "    eventKey: order-placed\n    isNumeric: false",
                   "    eventKey: order-done\n    isNumeric: false")
    plan = shop.run("plan").out
    assert plan.count("used by experiment `checkout-redesign`") == 1
    if listed == "omitted":
        assert ("      used by experiment `checkout-redesign` (production, running, through metric group "
                "`checkout-funnel`)\n") in plan
    assert "WARNING: changing `eventKey` of metric `order-placed` changes the results of experiment " \
           "`checkout-redesign`" in plan


def test_a_change_that_does_not_change_results_names_the_users_without_a_warning(shop: Shop) -> None:
    shop.edit_yaml("checkout.yaml", "Total order value per user, in US dollars.", "Order value per user (USD).")
    shop.edit_yaml("checkout.yaml", "nameInGroup: Placed the order", "nameInGroup: Ordered")
    plan = shop.run("plan").out
    assert "      used by experiment `checkout-redesign` (production, running)\n" in plan
    assert "WARNING" not in plan and "running experiments" not in plan.splitlines()[-1]


def test_a_group_metrics_change_of_a_running_experiment_is_a_warning(shop: Shop) -> None:
    shop.edit_yaml("checkout.yaml", "      - key: order-placed\n        nameInGroup: Placed the order\n", "")
    plan = shop.run("plan").out
    assert "WARNING: changing `metrics` of metric group `checkout-funnel` changes the results of experiment " \
           "`checkout-redesign` (production, running)" in plan


def test_a_guarded_rollout_is_named(shop: Shop) -> None:
    shop.edit_yaml("checkout.yaml", "    eventKey: payment-failed\n", "    eventKey: payment-error\n")
    plan = shop.run("plan").out
    assert "      used by guarded rollout `new-payment-form` (production, running)\n" in plan
    assert "WARNING: changing `eventKey` of metric `payment-failed` changes the results of guarded rollout " \
           "`new-payment-form` (production, running)" in plan


@pytest.mark.parametrize("how", ["config", "flag"])
def test_protect_running_experiments_refuses_such_changes(shop: Shop, how: str) -> None:
    shop.edit_yaml("checkout.yaml", *ORDER_VALUE_EVENT)
    if how == "config":
        config = shop.root / "metrics-sync.yaml"
        config.write_text(config.read_text() + "protectRunningExperiments: true\n")
    flag = ("--protect-running",) if how == "flag" else ()
    plan = shop.run("plan", *flag)
    assert plan.code == 1
    assert ("  error: metrics/checkout.yaml:33:5: changing `eventKey` of metric `order-value` changes the results of "
            "experiment `checkout-redesign` (production, running): at once if LaunchDarkly measures a running "
            "iteration with the latest metric version, else from the next one; results before and after the change "
            "will not be comparable; refused because protectRunningExperiments is on (stop the experiment first, or "
            "give the changed definition a new key)\n") in plan.out
    applied = shop.run("apply", "--auto-approve", *flag)
    assert applied.code == 1 and shop.store.get("shop", "order-value")["eventKey"] == "order-placed"
    # Once the experiment stops, the change goes through.
    shop.store.experiments["shop"]["checkout-redesign"]["status"] = "stopped"
    shop.store._usage.clear()
    assert shop.run("apply", "--auto-approve", *flag).code == 0


def test_a_saved_plan_is_refused_when_a_change_is_refused_now(shop: Shop) -> None:
    """Planned while the experiment was stopped; it runs when the saved plan is applied with --protect-running."""
    shop.edit_yaml("checkout.yaml", *ORDER_VALUE_EVENT)
    shop.store.experiments["shop"]["checkout-redesign"]["status"] = "stopped"
    shop.store._usage.clear()
    assert shop.run("plan", "--protect-running", "--out", "p.json").code == 0
    shop.store.experiments["shop"]["checkout-redesign"]["status"] = "running"
    shop.store._usage.clear()
    applied = shop.run("apply", "--plan", "p.json", "--protect-running")
    assert applied.code == 1
    assert "refused because protectRunningExperiments is on" in applied.err
    assert applied.err.rstrip().endswith("error: the saved plan cannot be applied now: 1 change(s) are refused (above) "
                                         "(nothing was changed; run plan again)")
    assert shop.store.get("shop", "order-value")["eventKey"] == "order-placed"


class Paths(httpx.BaseTransport):
    """Passes requests on and keeps their paths; with `strip_active`, LaunchDarkly leaves `activeExperimentCount`
    out of single metric reads: then only each experiment's own status says whether it runs."""

    def __init__(self, inner: httpx.BaseTransport, *, strip_active: bool = False) -> None:
        self.inner, self.strip_active = inner, strip_active
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        response = self.inner.handle_request(request)
        if self.strip_active and request.method == "GET" and request.url.path.startswith("/api/v2/metrics/shop/"):
            response.read()
            data = response.json()
            data.pop("activeExperimentCount", None)
            return httpx.Response(200, json=data)
        return response


def test_experiment_statuses_are_read_only_when_the_counts_do_not_say(shop: Shop) -> None:
    app = shop.transport
    # add-to-cart-count: one experiment, none active: the count says it all.
    shop.edit_yaml("checkout.yaml", "Average number of add-to-cart actions per user.", "Add-to-cart actions per user.")
    with_counts = Paths(app)
    shop.transport = with_counts
    assert "      used by experiment `spring-test` (staging, not running)\n" in shop.run("plan").out
    assert not [p for p in with_counts.paths if "/experiments/" in p]
    # order-value too: two experiments, one active: which one only their own status says.
    shop.edit_yaml("checkout.yaml", *ORDER_VALUE_EVENT)
    plan = shop.run("plan").out
    assert "      used by experiment `checkout-redesign` (production, running)\n" in plan
    assert sorted(p for p in with_counts.paths if "/experiments/" in p) == [
        "/api/v2/projects/shop/environments/production/experiments/checkout-redesign",
        "/api/v2/projects/shop/environments/staging/experiments/spring-test"]
    # Without the active counts, each experiment is read once per plan.
    without_counts = Paths(app, strip_active=True)
    shop.transport = without_counts
    assert "      used by experiment `spring-test` (staging, not running)\n" in shop.run("plan").out
    assert sorted(p for p in without_counts.paths if "/experiments/" in p) == [
        "/api/v2/projects/shop/environments/production/experiments/checkout-redesign",
        "/api/v2/projects/shop/environments/staging/experiments/spring-test"]


def test_users_that_cannot_be_read_are_a_warning_and_protect_refuses(shop: Shop) -> None:
    class NoItemReads(httpx.BaseTransport):
        def __init__(self, inner: httpx.BaseTransport) -> None:
            self.inner = inner

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "GET" and request.url.path == "/api/v2/metrics/shop/order-value":
                return httpx.Response(403, json={"code": "forbidden", "message": "Forbidden", "id": "x"})
            return self.inner.handle_request(request)

    shop.edit_yaml("checkout.yaml", *ORDER_VALUE_EVENT)
    shop.transport = NoItemReads(shop.transport)
    plan = shop.run("plan")
    assert ("WARNING: changing `eventKey` of metric `order-value` may change the results of running experiments: "
            "which experiments use it could not be read (403: Forbidden)") in plan.out
    assert shop.run("plan", "--protect-running").code == 1


# --- the rules, without the CLI -------------------------------------------------------------------------------

def test_statuses_are_needed_only_when_the_active_count_is_ambiguous() -> None:
    experiments = [{"key": "a", "environmentKey": "production"}, {"key": "b", "environmentKey": "staging"}]
    assert statuses_needed({"experiments": experiments, "activeExperimentCount": 0}) == []
    assert statuses_needed({"experiments": experiments, "activeExperimentCount": 2}) == []
    assert statuses_needed({"experiments": experiments, "activeExperimentCount": 1}) == [("production", "a"),
                                                                                         ("staging", "b")]
    assert statuses_needed({"experiments": experiments}) == [("production", "a"), ("staging", "b")]
    archived = [{**experiments[0], "archivedDate": 1}, experiments[1]]
    assert statuses_needed({"experiments": archived, "activeExperimentCount": 1}) == []


def test_unknown_statuses_and_unnamed_rollouts_are_kept_as_unknown() -> None:
    rep = {"experiments": [{"key": "a", "name": "A", "environmentKey": "production"}],
           "activeGuardedRolloutCount": 2}
    uses = uses_of("shop", rep, {})
    assert uses == [Use("experiment", "a", "A", "production", None),
                    Use("guarded rollout", "2 active (LaunchDarkly did not name them)", "", "", True)]
    assert uses[0].describe() == "experiment `a` (production, running or not: unknown)"
    assert uses_of("shop", rep, {("shop", "production", "a"): "stopped"})[0].running is False
