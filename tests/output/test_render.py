"""Text, Markdown and JSON renderings of plans and apply results."""

from __future__ import annotations

import json

from metrics_sync.core.findings import Finding
from metrics_sync.core.model import (
    ApplyResult,
    Blocked,
    Change,
    ChangeResult,
    FieldChange,
    Plan,
    ProjectPlan,
    UnsentEvent,
    Use,
)
from metrics_sync.output.plan import markdown as plan_markdown
from metrics_sync.output.plan import text as plan_text
from metrics_sync.output.results import json_text as result_json
from metrics_sync.output.results import text as result_text
from metrics_sync.planning import planfile


def _update(key: str, adopt: bool = False, warnings: tuple[str, ...] = ()) -> Change:
    return Change("update", key, "custom conversion count", {"name": "Old"}, {"name": "New"},
                  [FieldChange("name", "Old", "New"), FieldChange("tags", ["a"], ["a", "b"], ("+ b",)),
                   FieldChange("description", "Words", "")], [], remote_version=3, adopt=adopt,
                  findings=tuple(Finding("changes-results", "warning", w) for w in warnings))


def sample_plan(updates: int = 1) -> Plan:
    changes = [_update(f"metric-{i:03d}") for i in range(updates)]
    changes.append(_update("legacy", adopt=True, warnings=("changing `isNumeric` of `legacy` ...",)))
    changes.append(Change("archive", "old", "pageview conversion binary", {}, {},
                          [FieldChange("archived", False, True)], [], remote_version=1))
    project = ProjectPlan("shop", "sha256:x", changes, unchanged=14, unmanaged=3, would_archive=["stale-one"],
                          blocked=[Blocked("in-use", "used by 2 experiments")], findings=[])
    return Plan([project], prune=True, ownership_tag="managed-by-metrics-sync", base_url_host="app.launchdarkly.com",
                tool_version="0.1.0")


def test_text_plan_in_terraform_style() -> None:
    assert plan_text(sample_plan()) == """\
Project shop
  ~ update metric-000 (custom conversion count)
      name:        "Old" → "New"
      tags:        + b
      description: "Words" → ""
  ~ adopt legacy (custom conversion count)
      (exists in LaunchDarkly without the ownership tag: metrics-sync will manage it)
      name:        "Old" → "New"
      tags:        + b
      description: "Words" → ""
      warning: changing `isNumeric` of `legacy` ...
  - archive old (pageview conversion binary)
      archived: false → true
  Would archive with --prune: stale-one
  Blocked from archiving: in-use (used by 2 experiments)
  Not managed by metrics-sync (left alone): 3 metrics

Plan: 0 to create, 2 to update, 1 to archive, 14 unchanged; 1 left the definitions and would be archived with \
--prune; 1 cannot be archived while in use (see above).
"""


def test_markdown_has_a_summary_table_and_diff_details() -> None:
    text = plan_markdown(sample_plan())
    assert "| `shop` | 0 | 2 | 1 | 0 | 14 | 1 | 1 | 3 |" in text
    # The message's quoted names are code spans (not backslash-escaped backticks); the prose around them escaped.
    assert "> [!WARNING]\n> changing `isNumeric` of `legacy` ..." in text
    assert "! adopt legacy (custom conversion count)\n!     name:        \"Old\" → \"New\"" in text
    assert "- would archive with --prune: stale-one\n! blocked from archiving: in-use (used by 2 experiments)" in text
    assert "truncated" not in text


def test_markdown_stays_under_the_limit_with_an_honest_note() -> None:
    big = sample_plan(updates=2000)
    text = plan_markdown(big)
    assert len(text) < 60_000
    shown = text.count("! update metric-")
    assert 0 < shown < 2000
    assert f"**Output truncated:** {shown} of 2002 changes are shown" in text
    assert "**Plan: 0 to create, 2001 to update, 1 to archive, 14 unchanged; 1 left the definitions" in text


def test_plan_file_round_trips() -> None:
    plan = sample_plan(updates=3)
    assert planfile.from_dict(json.loads(planfile.to_json(plan))) == plan


def test_apply_result_text_and_json() -> None:
    result = ApplyResult([
        ChangeResult("shop", "a", "create", "created", None, ("maintainerId",)),
        ChangeResult("shop", "b", "update", "failed", "PATCH /x failed: 409"),
        ChangeResult("shop", "c", "update", "skipped", "not started: apply was interrupted"),
    ], interrupted=True)
    assert result_text(result) == """\
  + created a
    warning: LaunchDarkly did not keep maintainerId (it ignores fields it does not accept)
  ! failed b: PATCH /x failed: 409
  . skipped c: not started: apply was interrupted
Apply interrupted: 1 created, 0 updated, 0 archived, 1 failed, 1 not started.
"""
    payload = json.loads(result_json(result))
    assert payload["summary"] == {"created": 1, "updated": 0, "restored": 0, "archived": 0, "deleted": 0, "failed": 1,
                                  "skipped": 1}
    assert payload["results"][0]["notKept"] == ["maintainerId"]


def test_the_two_tables_of_a_pr_comment_name_experiments_alike_in_real_code_spans() -> None:
    """Markdown reads no escapes inside code: a key with `_` shows as written (not `order\\_value`), a `|` cannot
    split the table's cells, and a backtick cannot end the span."""
    use = Use("experiment", "spring_sale|2", "", "production", True)
    change = Change("update", "order_value", "custom numeric", {}, {}, [FieldChange("eventKey", "a", "b")], [],
                    remote_version=1, used_by=(use,),
                    findings=(Finding("changes-running-results", "alert", "changes results"),))
    project = ProjectPlan("shop", "sha256:x", [change], unchanged=0, unmanaged=0, would_archive=[], blocked=[],
                          findings=[], unsent=[UnsentEvent("add_to_cart", "add`to", "m.yaml:1:1", (use,))])
    text = plan_markdown(Plan([project], prune=False, ownership_tag="t", base_url_host="h", tool_version="0"))
    named = "experiment `spring_sale\\|2` (production, running)"
    assert f"| update metric `order_value` in `shop` | `eventKey` | {named} |\n" in text
    assert f"| `add_to_cart` in `shop` | ``add`to`` | `m.yaml:1:1` | {named} |\n" in text
