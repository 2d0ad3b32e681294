"""The published schema: valid draft 2020-12, documented for editors, and the examples conform."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from metrics_sync.definitions.schema import load_schema, schema_path
from metrics_sync.definitions.yaml_reader import load_yaml_file
from tests.conftest import FIXTURES, ROOT, run_cli

EXAMPLE_FILES = sorted((ROOT / "examples" / "metrics").glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../../schemas/metrics.schema.json"


def test_schema_is_valid_draft_2020_12() -> None:
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_source_checkout_loads_the_published_schema() -> None:
    assert schema_path() == ROOT / "schemas" / "metrics.schema.json"


def _properties(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            if isinstance(sub, dict) and "not" not in sub and set(sub) - {"const", "x-message", "x-hint", "properties"}:
                yield f"{where}.{name}", sub
        for key, value in node.items():
            if key in ("if", "then", "else", "allOf"):
                continue  # rule branches restate fields only to constrain them
            yield from _properties(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _properties(item, f"{where}[{i}]")


def test_every_field_has_title_description_and_example_for_editors() -> None:
    fields = list(_properties(load_schema()))
    assert len(fields) > 25
    for where, sub in fields:
        assert sub.get("title"), f"{where} has no title"
        assert sub.get("description"), f"{where} has no description"
        assert sub.get("examples"), f"{where} has no examples"


def test_every_example_value_in_the_schema_is_valid_for_its_field() -> None:
    for _where, sub in _properties(load_schema()):
        rules = {k: v for k, v in sub.items() if k not in ("examples",)}
        resolver_schema = {"$defs": load_schema()["$defs"], **rules}
        for example in sub["examples"]:
            jsonschema.Draft202012Validator(resolver_schema).validate(example)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_examples_validate_against_the_published_schema(path: Path) -> None:
    doc, problems = load_yaml_file(path)
    assert not problems and doc is not None
    schema = json.loads((ROOT / "schemas" / "metrics.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc.data)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_examples_carry_the_editor_modeline(path: Path) -> None:
    assert path.read_text().splitlines()[0] == MODELINE


def test_examples_cover_every_kind_and_custom_type() -> None:
    metrics = []
    for path in EXAMPLE_FILES:
        doc, _ = load_yaml_file(path)
        assert doc is not None
        metrics.extend(doc.data["metrics"])
    kinds = {(m["kind"], m.get("isNumeric", False), m.get("unitAggregationType", "average"),
              m.get("analysisType", "mean")) for m in metrics}
    assert ("custom", False, "average", "mean") in kinds  # conversion binary
    assert ("custom", False, "sum", "mean") in kinds  # conversion count
    assert any(k[0] == "custom" and k[1] is True and k[3] == "mean" for k in kinds)  # numeric
    assert any(k[0] == "custom" and k[3] == "percentile" for k in kinds)  # percentile
    assert {k[0] for k in kinds} == {"custom", "pageview", "click"}


def test_examples_validate_with_the_cli() -> None:
    result = run_cli("validate", cwd=ROOT / "examples")
    assert result.code == 0, result.out
    assert result.out == "OK: 8 metrics and 2 metric groups in 2 files valid.\n"


# --- the compiled fast path and jsonschema agree -----------------------------------------------------------

def _fixture_documents() -> list[Any]:
    docs = []
    for path in sorted((FIXTURES / "invalid").rglob("*.yaml")) + EXAMPLE_FILES:
        doc, _ = load_yaml_file(path)
        if doc is not None:
            docs.append((path.name, doc))
    return docs


def test_the_compiled_validator_and_jsonschema_give_the_same_verdict() -> None:
    from metrics_sync.definitions import schema

    docs = _fixture_documents()
    assert len(docs) > 40
    slow = schema._validator()
    for name, doc in docs:
        assert schema.is_valid(doc.data) is (not any(True for _ in slow.iter_errors(doc.data))), name


def test_validation_without_the_compiled_validator_prints_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    from metrics_sync.definitions import schema

    names = ["many-mistakes.yaml", "group-missing-fields.yaml", "trailing-newline-keys.yaml"]
    with_fast = run_cli("validate", *names, cwd=FIXTURES / "invalid")
    monkeypatch.setattr(schema, "_fast_validator", lambda: None)
    assert schema.is_valid({}) is None
    without = run_cli("validate", *names, cwd=FIXTURES / "invalid")
    assert (with_fast.code, with_fast.out) == (without.code, without.out) and with_fast.code == 1
    assert run_cli("validate", "metrics", cwd=ROOT / "examples").code == 0
