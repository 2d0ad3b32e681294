"""What a new team trips over in its first hour and its first CI runs, each through the CLI."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, TOKEN, FakeClock, Shop, run_cli

ENV = {"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": "http://127.0.0.1:8765"}


@pytest.fixture
def shop(tmp_path: Path) -> Shop:
    return Shop(tmp_path / "repo")


# --- first run -------------------------------------------------------------------------------------------

def test_the_config_file_is_never_definitions_and_is_found_from_a_subfolder(shop: Shop) -> None:
    (shop.root / ".git").mkdir()  # the repository root
    at_root = run_cli("validate", ".", cwd=shop.root)
    assert at_root.out == "OK: 8 metrics and 2 metric groups in 2 files valid.\n"
    below = shop.root / "metrics"
    from_subfolder = run_cli("validate", "checkout.yaml", cwd=below)  # no `project:`: it comes from the config
    (below / "checkout.yaml").write_text((below / "checkout.yaml").read_text().replace("project: shop\n", ""))
    assert run_cli("validate", "checkout.yaml", cwd=below).out == "OK: 5 metrics and 2 metric groups in 1 file valid.\n"
    assert from_subfolder.code == 0
    explicit = run_cli("validate", "metrics-sync.yaml", cwd=shop.root)
    assert explicit.out.startswith("metrics-sync.yaml: this is metrics-sync's config file, not definitions")


def test_the_config_search_stops_at_the_repository_root(tmp_path: Path) -> None:
    (tmp_path / "metrics-sync.yaml").write_text("project: outside\n")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "m.yaml").write_text("metrics:\n  - key: a\n    name: A\n    kind: custom\n    eventKey: a\n")
    result = run_cli("validate", "m.yaml", cwd=repo)
    assert result.code == 1 and "no project for these metrics" in result.out


def test_emulator_help_shows_defaults_and_plain_metavars() -> None:
    helped = run_cli("emulator", "--help").out
    assert "--port PORT           port (0 picks a free one) (default: 8765)" in helped
    assert "--latency-ms MS       delay every answer by MS milliseconds (default: 0.0)" in helped
    assert "LATENCY_MS" not in helped and "(default: None)" not in helped


# --- errors that say what to do ---------------------------------------------------------------------------

def test_nothing_listening_fails_fast_and_names_the_address(shop: Shop) -> None:
    result = run_cli("plan", cwd=shop.root, env={**ENV, "LD_BASE_URL": "http://127.0.0.1:9"}, real_time=True)
    assert result.code == 1
    assert result.err == ("error: GET /api/v2/metrics/shop failed: no response: nothing answers at "
                          "http://127.0.0.1:9 ([Errno 111] Connection refused) (is the emulator running? "
                          "(metrics-sync emulator --port PORT))\n")


def test_an_unknown_host_is_named() -> None:
    def no_dns(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)

    result = run_cli("plan", "metrics", cwd=ROOT / "examples", env={**ENV, "LD_BASE_URL": "https://ld.exmaple.com"},
                     transport=httpx.MockTransport(no_dns))
    assert result.err == ("error: GET /api/v2/metrics/shop failed: no response: cannot find the host "
                          "ld.exmaple.com ([Errno -2] Name or service not known) (check --base-url / LD_BASE_URL "
                          "for a typo, and the network's DNS (or HTTPS_PROXY))\n")


def test_a_base_url_with_the_api_path_is_recognised(shop: Shop) -> None:
    result = shop.run("plan", env={"LD_BASE_URL": "http://127.0.0.1:8765/api/v2"})
    assert result.err == ("error: the base URL http://127.0.0.1:8765/api/v2 carries a path (/api/v2); metrics-sync "
                          "adds /api/v2/... itself (use http://127.0.0.1:8765)\n")


def test_a_kind_change_points_at_the_definition(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.edit_yaml("storefront.yaml", "    kind: click\n    selector: \"#place-order\"\n", "    kind: pageview\n")
    refused = shop.run("plan")
    # At the line that says the kind.
    assert "  error: metrics/storefront.yaml:33:11: metric `place-order-clicked` in project `shop`: kind cannot " \
           "change from click to pageview" in refused.out


def test_a_read_only_token_stops_at_the_first_refused_write(tmp_path: Path) -> None:
    shop = Shop(tmp_path / "repo")
    shop.app.reader_token = "reader-token"
    result = shop.run("apply", "--auto-approve", "--parallelism", "1", env={"LD_ACCESS_TOKEN": "reader-token"})
    assert result.code == 1
    failed = [line for line in result.out.splitlines() if line.startswith("  ! failed")]
    skipped = [line for line in result.out.splitlines() if line.startswith("  . skipped")]
    assert len(failed) == 1 and len(skipped) == 9
    assert "not started: stopped after a permission error" in skipped[0]
    assert ("Stopped: LaunchDarkly refused the access token's permission for a write, so no further change was "
            "started. Give the token a role that may change metrics (see "
            "https://github.com/metrics-sync/metrics-sync#access-tokens-and-roles), then run apply again."
            ) in result.out
    assert "https://github.com/metrics-sync/metrics-sync#access-tokens-and-roles" in failed[0]


# --- plans people read ---------------------------------------------------------------------------------

def test_a_type_change_is_shown(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    before = "    eventKey: payment-failed\n"
    shop.edit_yaml("checkout.yaml", before, before + "    unitAggregationType: sum\n")
    assert "  ~ update payment-failed (custom conversion binary → custom conversion count)\n" in shop.run("plan").out


def test_would_archive_is_counted_and_a_blocked_prune_fails(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.store.projects["shop"]["order-value"]["activeExperimentCount"] = 1
    path = shop.root / "metrics" / "checkout.yaml"
    path.write_text(path.read_text().replace("key: order-value", "key: order-value-usd"))
    plan = shop.run("plan")
    assert plan.out.splitlines()[-1] == ("Plan: 1 to create, 0 to update, 0 to archive, 9 unchanged; 1 cannot be "
                                         "archived while in use (see above).")
    pruned = shop.run("apply", "--prune", "--auto-approve")
    assert pruned.code == 1
    assert pruned.err.endswith("error: --prune could not archive 1 metric(s) still in use: order-value (used by 1 "
                               "running experiment). Stop the experiments, guarded rollouts or holdouts that use them "
                               "(or take the metrics out of them and out of release policies) and run apply --prune "
                               "again, or keep the metrics in the definitions.\n")


def test_a_look_alike_rename_is_explained(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    path = shop.root / "metrics" / "checkout.yaml"
    path.write_text(path.read_text().replace("key: payment-failed", "key: payment-failures"))
    out = shop.run("plan").out
    assert ("warning: `payment-failures` looks like a new name for `payment-failed`: LaunchDarkly cannot rename a "
            "metric's key, so this plan creates `payment-failures` and leaves `payment-failed` as it is (archived "
            "only with --prune); experiments that use `payment-failed` keep using it") in out


def test_markdown_points_below_and_json_and_github_formats_agree(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.edit_yaml("storefront.yaml", "    kind: click\n    selector: \"#place-order\"\n", "    kind: pageview\n")
    markdown = shop.run("plan", "--format", "markdown").out
    assert "**Plan refused: 1 change cannot be made as defined (see below).**" in markdown
    (shop.root / "metrics" / "bad.yaml").write_text("project: shop\nmetrics:\n  - key: x\n")
    github = run_cli("validate", "--format", "github", cwd=shop.root)
    assert github.out.splitlines()[-1] == "metrics-sync: 2 errors in 1 file (3 read)"


def test_the_prompt_speaks_english(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.edit_yaml("checkout.yaml", "name: Order value", "name: Order value (USD)")
    assert "Apply this change? [y/N] " in shop.run("apply", tty=True, stdin="n\n").err


# --- long runs in CI --------------------------------------------------------------------------------------

class _Slow(httpx.BaseTransport):
    """Each write takes 1 s of the fake clock, so progress lines are due."""

    def __init__(self, shop: Shop, clock: FakeClock) -> None:
        self.inner, self.clock = shop.transport, clock

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            time.sleep(0.05)  # real time too, so that apply sees the changes complete one by one
            self.clock.now += 1.0
        return self.inner.handle_request(request)


def test_apply_streams_outcomes_and_prints_progress_without_a_terminal(shop: Shop) -> None:
    clock = FakeClock()
    result = run_cli("apply", "--auto-approve", "--parallelism", "1", cwd=shop.root, env=ENV,
                     transport=_Slow(shop, clock), clock=clock)
    assert result.code == 0
    progress = [line for line in result.err.splitlines() if line.startswith("… ")]
    assert progress == ["… 5/10 done, 5 s"]
    lines = result.out.splitlines()
    assert sum(line.startswith("  + created ") for line in lines) == 10
    assert lines[-1] == "Apply complete: 10 created, 0 updated, 0 archived, 0 failed."


# --- terraform habits ------------------------------------------------------------------------------------

def test_target_limits_plan_apply_and_prune(shop: Shop) -> None:
    planned = shop.run("plan", "--target", "order-*", "--target", "shop/payment-failed")
    assert planned.out.splitlines()[-1] == "Plan: 3 to create, 0 to update, 0 to archive, 0 unchanged."
    assert shop.run("apply", "--auto-approve", "--target", "order-*").code == 0
    assert sorted(m["key"] for m in shop.store.snapshot_metrics("shop")) == ["order-placed", "order-value"]
    shop.run("apply", "--auto-approve")
    path = shop.root / "metrics" / "checkout.yaml"
    path.write_text(path.read_text().split("  # Custom conversion count")[0])  # only order-placed is left
    pruned = shop.run("plan", "--prune", "--target", "add-to-cart-*")
    assert "  - archive add-to-cart-count" in pruned.out and pruned.out.count("  - archive") == 1
    nothing = shop.run("plan", "--target", "nope-*")
    assert nothing.err == ("error: --target nope-* matches no metric or metric group in the definitions or in "
                           "LaunchDarkly (give a key, project/key, or a glob such as 'checkout-*')\n")


def test_prune_with_part_of_the_definitions_is_refused(shop: Shop) -> None:
    refused = shop.run("plan", "metrics/checkout.yaml", "--prune")
    assert refused.code == 1
    assert refused.err == ("error: --prune with these PATHs would archive the metrics of the definition files left "
                           "out (metrics/storefront.yaml) (run it on all the definitions (no PATHs), or limit it "
                           "with --target)\n")
    assert shop.app.stats.total == 0


def test_show_renders_a_saved_plan(shop: Shop) -> None:
    shop.run("plan", "--out", "plan.json")
    shown = run_cli("show", "plan.json", cwd=shop.root)
    assert shown.code == 0 and shown.out == shop.run("plan").out
    as_json = json.loads(run_cli("show", "plan.json", "--format", "json", cwd=shop.root).out)
    assert as_json["summary"]["create"] == 10
    assert run_cli("show", "plan.json", "--format", "markdown", cwd=shop.root).out.startswith(
        "<!-- metrics-sync plan -->")


def test_a_mistyped_command_gets_a_suggestion() -> None:
    result = run_cli("plna")
    assert result.err.endswith("(did you mean `metrics-sync plan`?)\n")


def test_a_mistyped_option_gets_a_suggestion() -> None:
    result = run_cli("plan", "--formt", "json")
    assert result.code == 1
    assert result.err == "error: metrics-sync plan: unrecognized arguments: --formt (did you mean `--format`?)\n"
    assert run_cli("apply", "--auto-aprove=yes").err.endswith("(did you mean `--auto-approve`?)\n")
    assert run_cli("--no-colr", "validate").err.endswith("(did you mean `--no-color`?)\n")
    far = run_cli("plan", "--zzz")
    assert far.err == ("error: metrics-sync plan: unrecognized arguments: --zzz (run `metrics-sync plan --help` for "
                       "usage)\n")


@pytest.mark.parametrize("command", ["validate", "plan", "show", "apply", "refs"])
def test_every_format_option_says_what_its_formats_are(command: str) -> None:
    help_text = run_cli(command, "--help").out
    match = re.search(r"--format \{([^}]*)\}\s+(.*?)(?:\n  -|\Z)", help_text, re.DOTALL)
    assert match, help_text
    described = " ".join(match.group(2).split())
    for choice in match.group(1).split(","):
        assert (choice if choice != "github" else "GitHub") in described, (choice, described)


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_target_says_it_selects_metric_groups_too(command: str) -> None:
    help_text = " ".join(run_cli(command, "--help").out.split())
    target = help_text[help_text.index("--target KEY only"):][:200]
    assert "metrics and metric groups" in target and "archives (deletes)" in target


# --- export ---------------------------------------------------------------------------------------------

def test_export_to_stdout_points_at_a_stable_schema_and_adopt_says_what_to_expect(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    printed = shop.run("export", "--project", "shop", "--out", "-")
    assert printed.out.startswith("# yaml-language-server: $schema=metrics.schema.json\n")
    assert "site-packages" not in printed.out
    assert "The modeline points at metrics.schema.json beside the file" in printed.err
    adopted = shop.run("export", "--project", "shop", "--out", "exported", "--adopt")
    assert adopted.out.splitlines()[-1] == ("Next: metrics-sync plan exported --detailed-exitcode  (expect: an "
                                            "`adopt` update per metric, which adds the ownership tag)")
    shutil.rmtree(shop.root / "exported")
