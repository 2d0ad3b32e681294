"""Event keys in the code: `metrics-sync refs`, `validate --code`, `plan --code` and the scanner under them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from metrics_sync.coderefs import scanner as scanner_module
from metrics_sync.coderefs.scanner import Scanner, Settings
from tests.conftest import FIXTURES, ROOT, TOKEN, Shop, run_cli
from tests.planning.test_running_experiments import EXPERIMENTS

APP = FIXTURES / "code-refs"
HAS_GIT = shutil.which("git") is not None


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A copy of the fixture application (outside any git repository: its files are walked)."""
    shutil.copytree(APP, tmp_path / "shop")
    return tmp_path / "shop"


def events(ext: str, code: str, **settings: Any) -> list[str | None]:
    """The event keys one file's code sends (None for a key only known at run time)."""
    scanner = Scanner(Settings(**settings))
    lexer = scanner.lexer(ext)
    assert lexer is not None
    return [ref.event for ref in scanner.scan_text(code.encode(), "f" + ext, lexer)]


# --- the fixture application, end to end -------------------------------------------------------------------

def test_the_fixture_application_report_is_exact(app: Path) -> None:
    result = run_cli("refs", cwd=app)
    assert result.code == 0, result.err
    assert result.out == (APP / "refs.expected").read_text()
    assert result.err == ""


def test_json_lists_every_place_and_what_was_skipped(app: Path) -> None:
    payload = json.loads(run_cli("refs", "--format", "json", cwd=app).out)
    assert payload["files"] == {"listed": 14, "scanned": 12, "skipped": {"generated": 2}}
    by_key = {m["key"]: m for m in payload["metrics"]}
    assert [(p["file"], p["line"]) for p in by_key["order-placed"]["sentAt"]] == [
        ("app/dotnet/Payments.cs", 9), ("app/ios/Checkout.swift", 5), ("app/php/checkout.php", 3),
        ("app/ruby/orders.rb", 6), ("app/web/Checkout.tsx", 13), ("app/worker/main.go", 10)]
    assert by_key["loyalty"] == {"project": "shop", "key": "loyalty", "eventKey": "loyalty-joined",
                                 "definedAt": "metrics/shop.yaml:47:15", "sent": False, "sentAt": []}
    assert "home-views" not in by_key  # a pageview metric has no event key
    assert payload["unmeasured"] == [{"eventKey": "signup-completed",
                                      "sentAt": [{"file": "app/worker/main.go", "line": 13, "column": 20}]}]
    assert [d["call"] for d in payload["dynamic"]] == [
        'client.track("refund-$reason")', 'client.track("order-#{id}", context) # client.track("commented-out-ruby")',
        'client.track(f"payment-{elapsed_ms}", context)', "ldClient?.track(`checkout-step-${step}`);"]


def test_the_example_application_matches_the_readme() -> None:
    result = run_cli("refs", "examples/metrics", "--code", "examples/app", cwd=ROOT)
    assert result.code == 0, result.err
    readme = (ROOT / "README.md").read_text()
    assert result.out in readme
    assert "newsletter-signup: examples/app/worker/newsletter.go:10:27" in result.out


# --- each SDK's call shapes ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("ext", "code", "expected"), [
    (".js", "client.track('a', ctx); client.track(\"b\"); ld.track(`c`, null, 2)", ["a", "b", "c"]),
    (".tsx", "const k = 'a'; useLDClient()?.track(k);", ["a"]),
    (".js", "analytics.track('segment'); mixpanel.track('mp'); window.ldClient.track('x')", ["x"]),
    (".js", "client.track(`step-${n}`); client.track('a' + b); client.track(name)", [None, None, None]),
    (".js", "// client.track('a')\n/* client.track('b') */ s = \"client.track('c')\"", []),
    (".py", "ldclient.get().track('a', ctx)\nclient.track(event_name=\"b\", context=c)", ["a", "b"]),
    (".py", '"""client.track("doc")"""\n# client.track("c")\nx = \'client.track("s")\'', []),
    (".py", 'K = "a"\nclass E:\n    B = "b"\nclient.track(K, c)\nclient.track(E.B, c)', ["a", "b"]),
    (".py", 'client.track(rf"a-{b}", c)\nclient.track(r"raw", c)\nclient.track(u"\\u00e9t\\xe9", c)',
     [None, "raw", "été"]),
    (".go", 'c.TrackEvent("a", ctx)\nc.TrackData("b", ctx, d)\nc.TrackMetric("c", ctx, 1.0, d)', ["a", "b", "c"]),
    (".go", "const (\n\tE = \"a\"\n)\nc.TrackEvent(E, ctx)\nx := `c.TrackEvent(\"raw\")`", ["a"]),
    (".java", 'client.track("a", ctx); client.trackData("b", ctx, v); client.trackMetric("c", ctx, v, 1);',
     ["a", "b", "c"]),
    (".kt", 'const val E = "a"\nclient.track(E)\nclient.trackMetric("b", LDValue.ofNull(), 1.0)\nclient.track("x$y")',
     ["a", "b", None]),
    (".cs", 'client.Track("a", ctx);\nclient.Track(@"b", ctx);\n// client.Track("c", ctx);', ["a", "b"]),
    (".rb", "client.track('a', ctx)\nclient.track \"b\", ctx\nclient.track(\"c-#{x}\", ctx)", ["a", "b", None]),
    (".rb", "=begin\nclient.track('a', ctx)\n=end\n# client.track('b')", []),
    (".swift", 'LDClient.get()!.track(key: "a")\nLDClient.get()?.track(key: "b", data: nil, metricValue: 2)',
     ["a", "b"]),
    (".m", '#define kE @"a"\n[[LDClient get] trackWithKey:kE data:nil];\n[[LDClient get] trackWithKey:@"b" data:nil];',
     ["a", "b"]),
    (".php", "<?php\n$client->track('a', $c);\n# $client->track('b', $c);\n$client->track(\"c\", $c);", ["a", "c"]),
    (".php", "<?php\ndefine('E', 'a');\nconst F = 'b';\n$c->track(E, $x);\n$c->track(self::F, $x);", ["a", "b"]),
])
def test_each_sdk_call_shape(ext: str, code: str, expected: list[str | None]) -> None:
    assert events(ext, code) == expected


def test_a_name_given_two_values_in_the_file_is_dynamic() -> None:
    assert events(".py", 'E = "a"\nE = "b"\nclient.track(E, c)') == [None]


def test_aliases_and_patterns_are_the_teams_own_shapes() -> None:
    assert events(".ts", "trackConversion('a'); Telemetry.send(\"b\"); // trackConversion('c')",
                  aliases=("trackConversion", "Telemetry.send")) == ["a", "b"]
    assert events(".ex", ':ldclient.track("a", ctx)\n# :ldclient.track("b", ctx) is in a comment Elixir-wise',
                  patterns=(r':ldclient\.track\(\s*"(?P<key>[^"]+)"',)) == ["a", "b"]
    # A team's pattern on a known language skips comments and strings.
    assert events(".js", 'send("a"); // send("b")\nx = \'send("c")\'', patterns=(r'send\("([^"]+)"\)',)) == ["a"]


def test_positions_point_at_the_key() -> None:
    scanner = Scanner(Settings())
    lexer = scanner.lexer(".js")
    assert lexer is not None
    refs = scanner.scan_text(b"a;\n  client.track(\n    'k', ctx)", "f.js", lexer)
    assert [(r.line, r.column) for r in refs] == [(3, 5)]


# --- what is read -------------------------------------------------------------------------------------------

def test_binary_large_linked_vendored_and_excluded_files_are_skipped_and_counted(tmp_path: Path) -> None:
    code = tmp_path / "code"
    (code / "vendor" / "lib").mkdir(parents=True)
    (code / "vendor" / "lib" / "x.js").write_text("client.track('vendored')")
    (code / "big.js").write_text("client.track('big');" + " " * 2000)
    (code / "bin.js").write_bytes(b"client.track('binary')\0\1\2")
    (code / "gen.go").write_text("// Code generated by x. DO NOT EDIT.\nc.TrackEvent(\"gen\", x)\n")
    (code / "app.spec.js").write_text("client.track('in-a-test')")
    (code / "ok.js").write_text("client.track('ok')")
    outside = tmp_path / "secret.js"
    outside.write_text("client.track('outside')")
    (code / "link.js").symlink_to(outside)
    scan = Scanner(Settings(max_file_bytes=1000, exclude=("*.spec.js",))).scan(["code"], tmp_path, {})
    assert [r.event for r in scan.refs] == ["ok"]
    assert scan.skipped == {"over the size limit": 1, "binary": 1, "generated": 1, "excluded": 1,
                            "links and special files": 1}
    assert scan.listed == 6  # the vendor folder is not walked into


@pytest.mark.skipif(not HAS_GIT, reason="git is not installed")
def test_inside_a_repository_gitignore_is_respected_and_new_files_count(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / ".gitignore").write_text("generated-out/\n")
    (repo / "src" / "tracked.js").write_text("client.track('tracked')")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "add", "."], cwd=repo, check=True, env=env)
    (repo / "src" / "new.js").write_text("client.track('not-yet-committed')")
    (repo / "generated-out").mkdir()
    (repo / "generated-out" / "x.js").write_text("client.track('ignored')")
    scan = Scanner(Settings()).scan(["repo"], tmp_path, env)
    assert sorted(r.event for r in scan.refs if r.event) == ["not-yet-committed", "tracked"]
    assert scan.notes == []
    ignored = Scanner(Settings()).scan(["repo/generated-out"], tmp_path, env)
    assert ignored.refs == [] and ignored.notes == [
        f"git lists no files under {repo / 'generated-out'}: the repository ignores them (.gitignore)"]


def test_git_never_sees_the_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, str]] = []

    def fake_run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        seen.append(kwargs["env"])
        assert "core.fsmonitor=false" in argv
        return subprocess.CompletedProcess(argv, 0, b"a.js\0", b"")

    monkeypatch.setattr(scanner_module.subprocess, "run", fake_run)
    (tmp_path / "a.js").write_text("client.track('a')")
    scan = Scanner(Settings()).scan(["."], tmp_path, {"LD_ACCESS_TOKEN": TOKEN, "PATH": "/usr/bin"})
    assert [r.event for r in scan.refs] == ["a"]
    assert seen == [{"PATH": "/usr/bin"}]


def test_what_the_code_holds_is_escaped(tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "m.yaml").write_text("project: shop\nmetrics:\n  - key: a\n    name: A\n    kind: custom\n"
                                                 "    eventKey: a\n    isNumeric: false\n")
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "x.js").write_text("client.track('evil\\u001b[2J\x1b]0;title\x07', c)\n"
                                            "client.track(`\x1b[31m${x}`)")
    result = run_cli("refs", "--code", "code", cwd=tmp_path)
    assert "\x1b" not in result.out and "\x07" not in result.out
    assert "evil\\x1b[2J\\x1b]0;title\\x07:" in result.out
    assert "\\x1b[31m" in result.out
    assert "\x1b" not in run_cli("refs", "--code", "code", "--format", "json", cwd=tmp_path).out


# --- validate and plan --------------------------------------------------------------------------------------

def test_validate_with_code_warns_and_strict_refs_makes_it_an_error(app: Path) -> None:
    warned = run_cli("validate", cwd=app)  # the config's codeRefs.paths
    assert warned.code == 0
    assert warned.out.splitlines() == [
        "metrics/shop.yaml:47:15: warning: no code under app sends the event `loyalty-joined` that metric `loyalty` "
        "measures, so it will have no data; 4 track call(s) pass a key known only at run time (`metrics-sync refs` "
        "lists them); hint: send it with the SDK's track call; if a wrapper sends it, add the wrapper to "
        "codeRefs.aliases",
        "OK: 10 metrics in 1 file valid with 1 warning."]
    strict = run_cli("validate", "--strict-refs", cwd=app)
    assert strict.code == 1
    assert strict.out.splitlines()[-1] == "Found 1 error (10 metrics in 1 file read)."
    github = run_cli("validate", "--format", "github", "--code", "app/web", cwd=app)
    assert github.out.count("::warning file=metrics/shop.yaml,line=") == 7


def test_code_is_needed_where_it_is_asked_for(tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "m.yaml").write_text("project: shop\nmetrics: []\n")
    assert run_cli("refs", cwd=tmp_path).err == ("error: no application code to scan (give --code DIR, or "
                                                 "codeRefs.paths in metrics-sync.yaml)\n")
    assert run_cli("validate", "--strict-refs", cwd=tmp_path).code == 1
    missing = run_cli("refs", "--code", "nowhere", cwd=tmp_path)
    assert missing.code == 1 and missing.err == "error: --code nowhere: no such folder\n"


@pytest.mark.parametrize(("section", "message"), [
    ("codeRefs:\n  patterns: ['track(']\n",
     "metrics-sync.yaml:2:14: the pattern is not a regular expression (missing ), unterminated subpattern at "
     "position 5)"),
    ("codeRefs:\n  patterns:\n    - 'a'\n    - 'track\\(\"[^\"]+\"'\n",
     "metrics-sync.yaml:3:7: the pattern must capture the event key"),
    ("codeRefs:\n  aliases: [trackConversion, 'send(']\n",
     "metrics-sync.yaml:2:30: `send(` is not a function or method name"),
    ("codeRefs:\n  path: [src]\n", "metrics-sync.yaml:2:3: unknown codeRefs setting `path` (known: aliases, exclude, "
     "maxFileBytes, paths, patterns) (did you mean `paths`?)"),
    ("codeRefs:\n  maxFileBytes: -1\n", "metrics-sync.yaml:2:17: `codeRefs.maxFileBytes` must be a positive"),
])
def test_config_mistakes_are_located(tmp_path: Path, section: str, message: str) -> None:
    (tmp_path / "metrics-sync.yaml").write_text(section)
    result = run_cli("refs", "--code", ".", cwd=tmp_path)
    assert result.code == 1
    assert result.err.startswith(f"error: {message}"), result.err
    assert len(result.err.splitlines()) == 1


@pytest.fixture
def shop(tmp_path: Path) -> Shop:
    return Shop(tmp_path / "repo")


def test_the_plan_comment_lists_metrics_whose_last_call_a_pull_request_removes(shop: Shop) -> None:
    shutil.copy(ROOT / "examples" / "app" / "server" / "orders.py", shop.root / "app" / "server")
    shop.run("apply", "--auto-approve")
    before = shop.run("plan", "--format", "markdown", "--code", "app")
    assert before.code == 0 and "No code sends" not in before.out
    swift = shop.root / "app" / "ios" / "CartView.swift"
    swift.write_text(swift.read_text().replace('LDClient.get()?.track(key: "add-to-cart")', ""))
    tsx = shop.root / "app" / "web" / "src" / "Checkout.tsx"
    tsx.write_text(tsx.read_text().replace("onAdd={() => ldClient?.track(EVENTS.addToCart)}", ""))
    after = shop.run("plan", "--format", "markdown", "--code", "app")
    assert after.code == 0
    assert ("> [!WARNING]\n> **No code sends the event of 1 metric**: it will have no data.\n\n"
            "| Metric | Event | Defined at | Used by (running) |\n|---|---|---|---|\n"
            "| `add-to-cart-count` in `shop` | `add-to-cart` | `metrics/checkout.yaml:27:15` | — |") in after.out
    (warning,) = [line for line in after.err.splitlines() if "warning: no code under app" in line]
    assert warning in (ROOT / "README.md").read_text()  # the README shows the real line
    text = shop.run("plan", "--code", "app")
    assert text.code == 0 and "add-to-cart" in text.err


def test_a_metric_running_experiments_use_whose_last_call_goes_is_a_caution(shop: Shop) -> None:
    shutil.copy(ROOT / "examples" / "app" / "server" / "orders.py", shop.root / "app" / "server")
    shop.run("apply", "--auto-approve")
    shop.store.seed(EXPERIMENTS)
    orders = shop.root / "app" / "server" / "orders.py"
    orders.write_text(orders.read_text().replace('client.track("order-placed", context, metric_value=total)', ""))
    after = shop.run("plan", "--format", "markdown", "--code", "app")
    assert after.code == 0, after.err
    assert ("> [!CAUTION]\n> **No code sends the event of 2 metrics**: they will have no data; 2 are used by "
            "running experiments or guarded rollouts.") in after.out
    # Experiments are named as in the WARNING table of changes to running experiments' results.
    assert ("| `order-value` in `shop` | `order-placed` | `metrics/checkout.yaml:37:15` | experiment "
            "`checkout-redesign` (production, running) |") in after.out
    assert ("| `order-placed` in `shop` | `order-placed` | `metrics/checkout.yaml:17:15` | experiment "
            "`checkout-redesign` (production, running, through metric group `checkout-funnel`) |") in after.out
    assert ("warning: metric `order-value` in `shop`, whose event no code sends, is used by experiment "
            "`checkout-redesign` (production, running): it gets no data from now on") in after.err


def _order_placed_no_longer_sent(shop: Shop) -> None:
    """Experiments use order-value and the group of order-placed; the pull request removes the track call of
    their event."""
    shutil.copy(ROOT / "examples" / "app" / "server" / "orders.py", shop.root / "app" / "server")
    assert shop.run("apply", "--auto-approve").code == 0
    shop.store.seed(EXPERIMENTS)
    orders = shop.root / "app" / "server" / "orders.py"
    orders.write_text(orders.read_text().replace('client.track("order-placed", context, metric_value=total)', ""))


def test_the_caution_is_in_the_plan_itself_so_every_format_shows_it(shop: Shop, tmp_path: Path) -> None:
    _order_placed_no_longer_sent(shop)
    saved = tmp_path / "reviewed.json"
    live_markdown = shop.run("plan", "--format", "markdown", "--code", "app", "--out", str(saved))
    live_json = shop.run("plan", "--format", "json", "--code", "app")
    live_text = shop.run("plan", "--code", "app")
    assert live_markdown.code == live_json.code == live_text.code == 0
    project = json.loads(live_json.out)["projects"][0]
    checkout = {"kind": "experiment", "key": "checkout-redesign", "name": "Checkout redesign",
                "environment": "production", "running": True}
    assert project["unsentEvents"] == [
        {"key": "order-placed", "event": "order-placed", "source": "metrics/checkout.yaml:17:15",
         "usedBy": [{**checkout, "via": "checkout-funnel"}]},
        {"key": "order-value", "event": "order-placed", "source": "metrics/checkout.yaml:37:15",
         "usedBy": [{**checkout, "via": None}]}]
    finding = [f for f in project["findings"] if f["kind"] == "event-not-sent"][1]
    assert finding == {
        "kind": "event-not-sent", "severity": "alert", "subject": "metric `order-value` in project `shop`",
        "message": "no code sends its event `order-placed`, so it will have no data; it is used by experiment "
                   "`checkout-redesign` (production, running)",
        "hint": "send it with the SDK's track call; if a wrapper sends it, add the wrapper to codeRefs.aliases",
        "source": "metrics/checkout.yaml:37:15"}
    # Text shows it on stdout, with the plan (and still warns on stderr, as it did).
    assert ("  WARNING: metrics/checkout.yaml:37:15: metric `order-value` in project `shop`: no code sends its "
            "event `order-placed`, so it will have no data; it is used by experiment `checkout-redesign` "
            "(production, running); send it with") in live_text.out
    assert "is used by experiment `checkout-redesign` (production, running): it gets no data" in live_text.err
    assert "| `order-value` in `shop` | `order-placed` | `metrics/checkout.yaml:37:15` |" in live_markdown.out
    # The saved plan holds it: `show` renders the same as plan did, in every format.
    assert shop.run("show", str(saved), "--format", "markdown").out == live_markdown.out
    assert shop.run("show", str(saved), "--format", "json").out == live_json.out
    assert shop.run("show", str(saved)).out == live_text.out
    # It is a finding, not a change: the reviewed plan applies.
    assert shop.run("apply", "--plan", str(saved), "--auto-approve").code == 0


def test_a_plan_file_written_before_unsent_events_were_saved_still_reads(shop: Shop, tmp_path: Path) -> None:
    _order_placed_no_longer_sent(shop)
    saved = tmp_path / "reviewed.json"
    assert shop.run("plan", "--code", "app", "--out", str(saved)).code == 0
    data = json.loads(saved.read_text())
    for project in data["projects"]:
        del project["unsentEvents"]
        project["findings"] = [f for f in project["findings"] if f["kind"] != "event-not-sent"]
    saved.write_text(json.dumps(data))
    shown = shop.run("show", str(saved), "--format", "markdown")
    assert shown.code == 0 and "No code sends" not in shown.out
    assert json.loads(shop.run("show", str(saved), "--format", "json").out)["projects"][0]["unsentEvents"] == []


def test_the_number_of_calls_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scanner_module, "MAX_REFS", 10)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "m.yaml").write_text("project: shop\nmetrics: []\n")
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "many.js").write_text("client.track('a');\n" * 11)
    result = run_cli("refs", "--code", "code", cwd=tmp_path)
    assert result.code == 1
    assert result.err == ("error: over 10 track calls under code (the last in many.js) (point --code at the "
                          "application's own source, or add the generated files to codeRefs.exclude)\n")


def test_the_readme_config_example_works(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```yaml\ncodeRefs:") + len("```yaml\n")
    (tmp_path / "metrics-sync.yaml").write_text("project: shop\n" + readme[start:readme.index("```", start)])
    for folder in ("web/src", "server", "metrics"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "metrics" / "m.yaml").write_text("project: shop\nmetrics: []\n")
    (tmp_path / "web" / "src" / "a.ts").write_text('Telemetry.send("alias");\ntrackConversion("b");\n')
    (tmp_path / "web" / "src" / "a.test.ts").write_text('trackConversion("excluded");\n')
    (tmp_path / "server" / "wishlist.ex").write_text(':ldclient.track("pattern", ctx)\n')
    result = run_cli("refs", "--format", "json", cwd=tmp_path)
    assert result.code == 0, result.err
    payload = json.loads(result.out)
    assert [u["eventKey"] for u in payload["unmeasured"]] == ["alias", "b", "pattern"]
    assert payload["files"]["skipped"] == {"excluded": 1}


def test_the_summary_quotes_the_folders_it_scanned(tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "m.yaml").write_text("project: shop\nmetrics: []\n")
    for folder in ("my app", "web.\x1b[2J"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.js").write_text("client.track('a');\n")
    result = run_cli("refs", "--code", "my app", "--code", "web.\x1b[2J", cwd=tmp_path)
    assert result.code == 0, result.err
    assert "Scanned 2 of 2 files under `my app`, `web.\\x1b[2J`.\n" in result.out
