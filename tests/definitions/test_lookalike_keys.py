"""Keys, event keys and names that may be mistaken for other text (Unicode TR39 style): a Cyrillic `о` in
`оrder-placed` looks like the Latin `o` the code sends. validate warns at the line; plan's change carries a
finding of kind `confusable-key`."""

from __future__ import annotations

import json
import time
from pathlib import Path

from metrics_sync.core.confusables import lookalike
from tests.conftest import Shop, run_cli

CYRILLIC_O = "\u043e"


def test_validate_warns_at_the_line_and_names_each_character(tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "m.yaml").write_text(
        "project: shop\nmetrics:\n  - key: order\n    name: \u03a1ay \u0440\u0430y\n    kind: custom\n"
        f"    eventKey: {CYRILLIC_O}rder-placed\n    isNumeric: false\n    successCriteria: HigherThanBaseline\n"
        "    unitAggregationType: sum\n  - key: fine\n    name: Заказ оформлен\n    kind: custom\n"
        "    eventKey: order-placed\n    isNumeric: false\n    successCriteria: HigherThanBaseline\n")
    result = run_cli("validate", cwd=tmp_path)
    assert result.code == 0, result.err
    lines = (result.out + result.err).splitlines()
    event = next(line for line in lines if "eventKey" in line)
    assert event.startswith("metrics/m.yaml:6:15: warning: `eventKey` '\\u043erder-placed' may be mistaken for other "
                            "text: it mixes Cyrillic and Latin letters"), event
    assert 'U+043E CYRILLIC SMALL LETTER O (looks like "o")' in event
    name = next(line for line in lines if "`name`" in line)
    assert name.startswith("metrics/m.yaml:4:11: warning:"), name
    assert 'U+03A1 GREEK CAPITAL LETTER RHO (looks like "P")' in name
    assert not any("m.yaml:11" in line for line in lines)  # a name all in Cyrillic is a name, not a look-alike


def test_plan_flags_a_change_that_sets_a_lookalike_event_key(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.edit_yaml("checkout.yaml", "eventKey: order-placed", f"eventKey: {CYRILLIC_O}rder-placed")
    data = json.loads(shop.run("plan", "--format", "json").out)
    findings = [f for p in data["projects"] for c in p["changes"] for f in c["findings"]]
    flagged = [f for f in findings if f["kind"] == "confusable-key"]
    assert flagged and flagged[0]["severity"] == "warning"
    assert "U+043E CYRILLIC SMALL LETTER O" in flagged[0]["hint"]
    assert flagged[0]["source"].startswith("metrics/checkout.yaml:")
    text = shop.run("plan").out
    assert "may be mistaken for other text: it mixes Cyrillic and Latin letters" in text


def test_lookalikes_of_every_kind_and_none_for_real_words() -> None:
    assert lookalike("\uff4frder") is not None  # fullwidth o
    assert lookalike("\u0441\u043e\u0435") is not None  # Cyrillic "сое": every letter looks Latin
    assert lookalike("\u0441\u043e\u0435", identifier=False) is None  # as a name, a word of its own script
    assert lookalike("\u03bf") is not None and lookalike("\u03bf κόσμος", identifier=False) is None
    for fine in ("order-placed", "café", "naïve", "注文-order", "カート追加", "장바구니 cart", "Заказ оформлен"):
        assert lookalike(fine, identifier=False) is None, fine


def test_the_check_is_cheap_on_100000_keys() -> None:
    keys = [f"metric-{i}.event_{i}" for i in range(100_000)] + [f"заказ-{i}" for i in range(1000)]
    started = time.perf_counter()
    assert [k for k in keys if lookalike(k) is not None] == []
    assert time.perf_counter() - started < 1.0
