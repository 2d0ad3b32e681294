"""docs/extending.md's worked example, run: a field added as one row of the metric's table (here LaunchDarkly's
`winsorUpperPercentile`, issue "All of LaunchDarkly's metric") flows through every generic step without another
line of code: canonical form, create body, export document, diff and guarded patch, and the wire check."""

from __future__ import annotations

import dataclasses
from typing import Any

from metrics_sync.core.fields import NUMBER, Field
from metrics_sync.core.resources import METRIC
from metrics_sync.launchdarkly.wire import problem
from metrics_sync.planning.diffing import diff

# The row, as docs/extending.md writes it (numeric custom metrics only).
ROW = Field("winsorUpperPercentile", kinds=frozenset({"custom"}), when=lambda m: bool(m.get("isNumeric")),
            changes_results=True, wire=NUMBER)
# The row is now part of METRIC: the example starts from the table without it, then adds it back as one row.
WITHOUT_ROW = dataclasses.replace(METRIC, fields=tuple(f for f in METRIC.fields if f.name != ROW.name))
WITH_ROW = dataclasses.replace(WITHOUT_ROW, fields=(*WITHOUT_ROW.fields, ROW))
NUMERIC: dict[str, Any] = {"key": "latency", "name": "Latency", "kind": "custom", "eventKey": "rendered",
                           "isNumeric": True, "unit": "ms", "successCriteria": "LowerThanBaseline", "tags": []}


def test_the_row_is_part_of_the_canonical_form_only_where_it_applies() -> None:
    assert WITH_ROW.canonical({**NUMERIC, "winsorUpperPercentile": 99.0})["winsorUpperPercentile"] == 99
    binary = {**NUMERIC, "isNumeric": False, "winsorUpperPercentile": 99}
    assert "winsorUpperPercentile" not in WITH_ROW.canonical(binary)


def test_the_row_is_posted_and_exported() -> None:
    form = WITH_ROW.canonical({**NUMERIC, "winsorUpperPercentile": 99})
    assert WITH_ROW.post_body("latency", form)["winsorUpperPercentile"] == 99
    assert WITH_ROW.document(form)["winsorUpperPercentile"] == 99
    assert "winsorUpperPercentile" not in WITH_ROW.document(WITH_ROW.canonical(NUMERIC))  # nothing to say


def test_a_changed_value_is_a_guarded_patch() -> None:
    after = WITH_ROW.canonical({**NUMERIC, "winsorUpperPercentile": 95})
    fields, patch = diff(after, {**NUMERIC, "winsorUpperPercentile": 99, "_version": 3}, WITH_ROW)
    assert [(f.field, f.before, f.after) for f in fields] == [("winsorUpperPercentile", 99, 95)]
    assert patch == [{"op": "test", "path": "/winsorUpperPercentile", "value": 99},
                     {"op": "replace", "path": "/winsorUpperPercentile", "value": 95}]
    assert "winsorUpperPercentile" in WITH_ROW.results_fields  # so plan warns running experiments


def test_the_wire_check_comes_with_the_row() -> None:
    assert (problem(WITH_ROW, {**NUMERIC, "winsorUpperPercentile": "high"})
            == "`winsorUpperPercentile` is not a number we can use")
    assert problem(WITHOUT_ROW, {**NUMERIC, "winsorUpperPercentile": "high"}) is None  # without the row: not read


def test_the_real_row_is_the_worked_example() -> None:
    real = METRIC.field(ROW.name)
    assert (real.kinds, real.changes_results, real.wire) == (frozenset({"custom", "trace"}), True, NUMBER)
    assert WITH_ROW.canonical({**NUMERIC, ROW.name: 99.5})[ROW.name] == METRIC.canonical({**NUMERIC, ROW.name: 99.5})[
        ROW.name]
