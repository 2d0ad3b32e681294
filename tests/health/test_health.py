"""`metrics-sync health` on the example catalogue: exactly the expected findings, the same in every format."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import jsonschema
import pytest

from metrics_sync.emulator.readings import Readings
from metrics_sync.output.escape import markdown_text
from tests.conftest import ROOT
from tests.health.conftest import EXPECTED, Catalogue, found

SCHEMA = json.loads((ROOT / "schemas" / "health.schema.json").read_text())


class Findings(HTMLParser):
    """The text of each `li.finding` of the page, as a browser shows it (entities decoded)."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[str, str]] = []  # (data-code, text)
        self._depth = 0
        self._code = ""
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "li" and "finding" in classes:
            self._depth, self._code, self._text = 1, str(dict(attrs).get("data-code")), []
        elif self._depth:
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1
            if not self._depth:
                self.items.append((self._code, "".join(self._text)))

    def handle_data(self, data: str) -> None:
        if self._depth:
            self._text.append(data)


def test_the_catalogue_has_exactly_the_expected_findings_in_every_format(catalogue: Catalogue) -> None:
    report = catalogue.health()
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(report)
    assert found(report) == EXPECTED
    assert {code for code, _ in EXPECTED} == set(report["summary"]["findings"])  # every code at least once
    counts = report["summary"]["findings"]
    assert all(count == sum(1 for c, _ in EXPECTED if c == code) for code, count in counts.items())
    text = catalogue.run("health", "--code", "app")
    markdown = catalogue.run("health", "--code", "app", "--format", "markdown")
    page = catalogue.run("health", "--code", "app", "--format", "html")
    assert text.code == markdown.code == page.code == 0
    parser = Findings()
    parser.feed(page.out)
    # Each finding's code, subject and message, identical in text, JSON, Markdown and HTML, in the same order.
    listed = [f"[{f['code']}] {f['subject']}: {f['message']}" for f in report["findings"]]
    in_text = [line.strip() for line in text.out.splitlines() if line.strip().startswith("[")]
    assert [line[:len(want)] for line, want in zip(in_text, listed, strict=True)] == listed
    in_markdown = [line for line in markdown.out.splitlines() if line.startswith("- **")]
    assert [line[:len(want)] for line, want in zip(in_markdown, [
        f"- **{f['code']}** {markdown_text(f['subject'])}: {markdown_text(f['message'])}" for f in report["findings"]],
        strict=True)] == [f"- **{f['code']}** {markdown_text(f['subject'])}: {markdown_text(f['message'])}"
                          for f in report["findings"]]
    in_page = {(code, text[:len(f"{code} {s}: {m}")]) for code, text in parser.items
               for s, m in [(f["subject"], f["message"]) for f in report["findings"] if f["code"] == code]}
    for f in report["findings"]:
        assert (f["code"], f"{f['code']} {f['subject']}: {f['message']}") in in_page
    # Worst first: the table's first row is the running experiment's metric, and the summary counts.
    table = text.out.splitlines()
    assert table[1].startswith("running-without-events  payment-failed")
    assert table[-1] == (f"11 metrics, 3 metric groups: 1 running without events, 1 never seen, 1 not seen recently, "
                         f"2 not sent by code, 1 unmeasured event, 1 archive candidate, 1 undefined; "
                         f"{report['calls']} calls to LaunchDarkly")


def test_rows_join_definitions_code_and_launchdarkly(catalogue: Catalogue) -> None:
    report = catalogue.health()
    rows = {m["key"]: m for m in report["metrics"]}
    assert rows["add-to-cart-count"]["definedAt"] == "metrics/checkout.yaml:23:5"
    assert rows["add-to-cart-count"]["callSites"] == ["app/ios/CartView.swift:6:36", "app/web/src/Checkout.tsx:14:58"]
    assert rows["add-to-cart-count"]["lastUsedInExperiment"]["key"] == "spring-sale"
    assert rows["payment-failed"]["lastUsedInGuardedRollout"]["key"] == "new-payment-form"
    assert rows["signup-completed"]["definedAt"] is None and rows["signup-completed"]["inLaunchDarkly"]
    users = {(u["kind"], u["key"], u["running"], u["via"]) for u in rows["signup-completed"]["users"]}
    assert users == {("experiment", "signup-flow", True, "growth-guardrails"),
                     ("holdout", "growth-holdout", True, None),
                     ("release policy", "guarded-growth", True, "growth-guardrails")}
    # A funnel step is used by the experiment that uses its funnel.
    assert ("experiment", "checkout-redesign", True, "checkout-funnel") in {
        (u["kind"], u["key"], u["running"], u["via"]) for u in rows["place-order-clicked"]["users"]}
    # Metrics sharing an event key share lastSeen (the emulator's default reading, A50).
    assert rows["order-placed"]["lastSeen"] == rows["order-value"]["lastSeen"] is not None
    funnel = next(g for g in report["groups"] if g["key"] == "checkout-funnel")
    assert funnel["kind"] == "funnel"
    assert funnel["metrics"] == ["place-order-clicked", "order-placed", "confirmation-page-viewed"]
    # Without the code, nothing about track calls is said.
    without = catalogue.run("health", "--format", "json")
    data = json.loads(without.out)
    assert not data["codeScanned"] and all(m["callSites"] is None for m in data["metrics"])
    assert {c for c, _ in found(data)} == {"running-without-events", "never-seen", "not-seen-recently",
                                           "archive-candidate", "undefined"}


def test_a_rows_type_is_the_metric_type_launchdarklys_ui_names(catalogue: Catalogue) -> None:
    types = {m["key"]: m["type"] for m in catalogue.health()["metrics"]}
    assert types["order-placed"] == "custom conversion binary"
    assert types["add-to-cart-count"] == "custom conversion count"
    assert types["order-value"] == "custom numeric"
    assert types["checkout-latency-p95"] == "custom numeric, P95"
    assert types["confirmation-page-viewed"] == "pageview conversion binary"
    assert types["place-order-clicked"] == "click conversion binary"
    assert types["signup-completed"] == "custom conversion binary"  # only in LaunchDarkly: its representation's type
    page = catalogue.run("health", "--format", "html").out
    card = page[page.index('<span class="key">order-value</span>'):]
    assert card[:card.index("</article>")].count("<dt>type</dt><dd>custom numeric</dd>") == 1


def test_strict_fails_on_a_running_metric_without_events_or_a_metric_never_seen(catalogue: Catalogue) -> None:
    assert catalogue.run("health").code == 0
    strict = catalogue.run("health", "--strict")
    assert strict.code == 1
    assert "[running-without-events] metric `payment-failed`" in strict.out


def test_the_run_states_its_calls_and_they_are_what_launchdarkly_counted(catalogue: Catalogue) -> None:
    before = catalogue.app.stats.total
    report = catalogue.health()
    assert report["calls"] == catalogue.app.stats.total - before
    # One list page each of metrics and groups, one read per metric and per used group, the holders: no more.
    assert report["calls"] <= 2 + len(report["metrics"]) + len(report["groups"]) + 8


@pytest.mark.parametrize("reading", ["event_key", "metric"])
def test_time_passing_and_events_arriving_change_the_findings_under_each_reading(tmp_path: Any, reading: str) -> None:
    catalogue = Catalogue(tmp_path / "shop", Readings(last_seen=reading))
    rows = {m["key"]: m for m in catalogue.health()["metrics"]}
    if reading == "metric":  # the seed's events came before apply created the metrics: not theirs
        assert rows["order-value"]["lastSeen"] is None
        assert ("running-without-events", "order-value") in found(catalogue.health())
    else:
        assert rows["order-value"]["lastSeen"] == rows["order-placed"]["lastSeen"] is not None
    catalogue.control("events", {"project": "shop", "eventKey": "order-placed"})
    fresh = catalogue.health()
    assert ("running-without-events", "order-value") not in found(fresh)
    rows = {m["key"]: m for m in fresh["metrics"]}
    assert rows["order-value"]["lastSeen"] == rows["order-placed"]["lastSeen"]  # both count the event that came
    # Two days pass on both clocks: the running experiment's metric is now silent.
    catalogue.control("clock", {"advance": 2 * 86_400})
    catalogue.clock.now += 2 * 86_400
    later = found(catalogue.health())
    assert ("running-without-events", "order-value") in later
    assert ("running-without-events", "place-order-clicked") in later  # a step of the running funnel


def test_stale_days_and_bad_values(catalogue: Catalogue) -> None:
    assert ("not-seen-recently", "add-to-cart-count") not in found(catalogue.health("--stale-days", "60"))
    assert ("not-seen-recently", "product-page-views") not in found(catalogue.health("--stale-days", "1"))
    bad = catalogue.run("health", "--stale-days", "0")
    assert bad.code == 1 and bad.err == "error: --stale-days must be between 1 and 3650\n"


def test_out_writes_the_page_atomically_and_says_so(catalogue: Catalogue) -> None:
    result = catalogue.run("health", "--code", "app", "--format", "html", "--out", "catalogue.html")
    assert result.code == 0 and result.out == ""
    assert re.fullmatch(r"Health written to catalogue\.html \(8 findings, \d+ calls to LaunchDarkly\)\.\n", result.err)
    assert (catalogue.root / "catalogue.html").read_text().startswith("<!DOCTYPE html>")
    (catalogue.root / "link").symlink_to(catalogue.root / "catalogue.html")
    refused = catalogue.run("health", "--out", "link")
    assert refused.code == 1 and "symbolic link" in refused.err


def test_an_unknown_project_is_one_line(catalogue: Catalogue) -> None:
    (catalogue.root / "nope.yaml").write_text("project: nope\nmetrics:\n  - key: a-metric\n    name: A\n"
                                              "    kind: custom\n    eventKey: a\n    isNumeric: false\n")
    result = catalogue.run("health", "nope.yaml")
    assert result.code == 1
    assert result.err.startswith("error: nope.yaml:1:"), result.err
    assert "there is no project `nope` in LaunchDarkly at 127.0.0.1:8765" in result.err
    assert result.err.count("\n") == 1, result.err
