"""The fast YAML path (definitions/block_yaml.py) against PyYAML: on every text it takes, it yields exactly what
the PyYAML path yields (values with their types and key order, the line:column of every value and key, the
resolved scalars and the YAML 1.1/1.2 differences) and the PyYAML path finds no problem there; everything else
it declines. Differential: Hypothesis writes block-style documents from tricky pieces and then damages them;
the hostile-input fixtures, the examples and the benchmark's files are compared as they are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.generate import generate
from metrics_sync.definitions.yaml_reader import YamlDocument, parse_yaml_text, read_fast
from tests.conftest import FIXTURES, ROOT


def typed(value: Any) -> Any:
    """A value with its types and key order made part of equality (`True == 1` and `1 == 1.0` in Python)."""
    if isinstance(value, dict):
        return ("dict", [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    return (type(value).__name__, repr(value))


def view(doc: YamlDocument) -> Any:
    return (typed(doc.data), list(doc.positions.items()), list(doc.key_positions.items()),
            list(doc.resolved_scalars.items()), typed(list(doc.yaml12_differences.items())))


def check_same(text: str) -> bool:
    """Whether the fast path took `text`; when it did, it must agree with PyYAML in every respect."""
    fast = read_fast(text, "f.yaml")
    if fast is None:
        return False
    slow, problems = parse_yaml_text(text, "f.yaml", fast=False)
    assert problems == [], text
    assert slow is not None
    assert view(fast) == view(slow), text
    assert parse_yaml_text(text, "f.yaml") == (fast, [])
    return True


# --- documents from tricky pieces ---------------------------------------------------------------------------

KEYS = ["key", "name", "kind", "eventKey", "tags", "urls", "a-b", "_x", "x1", "y", "n", "k", "onion", "nullable",
        "yes", "on", "Off", "null", "NULL", "true"]
SCALARS = [
    "sum", "custom", "Metric 1", "a  b", "yes", "No", "on", "OFF", "y", "~", "null", "Null", "true", "False", "1",
    "0", "-5", "+5", "95", "1e3", "1.5e3", "0x1F", "0o17", "017", "0b101", "1_000", "1:30", ".5", "-.5", "1.",
    ".inf", "-.Inf", ".nan", "2024-01-01", "2024-01-01 10:00:00", "=", "<<", "a#b", "a #b", "a # b",
    "http://shop.example.com/p/1", "a: b", "a:", "a:b", "-", "- a", "-a", "?x", "? x", ":x", "%x", "@x", "`x`",
    "!x", "!!str x", "&x x", "*x", "|", ">", "a [b]", "[a]", "[a, b]", "[ a ,b ]", "[]", "[ ]", "[a,]", "[a, [b]]",
    '["web", kpi]', "[yes, 1, ~]", "[a b]", "{a: b}", "{}", "çé", "日本語", "оrder", "ｏrder", "a\tb", "😀",
    '"q"', '""', '"a # b"', '"a: b"', '"a\\"b"', '"a\\nb"', '"it\'s"', "'s'", "''", "'it''s'", "'a \\ b'",
    '"unterminated', "'unterminated", '"a" b', '"a" # c', "'a' #c", '"a"#c', "a \u2028 b", "a\u0085b", "a\ufeffb",
    "a\u00a0b", "trailing   ", "# only a comment",
]
# Pieces the fast path takes, tricky ones included, so that most documents exercise it.
TAKEN = ["sum", "Metric 1", "yes", "~", "false", "95", "-5", "1e3", "0x1F", "1:30", "y", "a#b", "a [b]", "çé",
         "http://shop.example.com/p/1", '"q # r"', "''", "[yes, 1, ~]", '["web", kpi]', "[ ]", "[ a ,b ]", "onion"]


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A block-style YAML document: a root mapping of scalars, mappings and lists, in random but mostly
    valid layouts (indent widths, indentless lists, comments, blank lines)."""
    width = draw(st.integers(1, 4))
    indentless = draw(st.booleans())
    lines: list[str] = []

    def scalar() -> str:
        return draw(st.sampled_from(TAKEN) if draw(st.integers(0, 9)) > 0 else st.sampled_from(SCALARS))

    def comment() -> str:
        return draw(st.sampled_from(["", "", "", " # note", "  #x", " #"]))

    def mapping(indent: int, depth: int, first_prefix: str | None = None) -> None:
        keys = st.lists(st.sampled_from(KEYS), min_size=1, max_size=4, unique=draw(st.integers(0, 3)) > 0)
        for n, key in enumerate(draw(keys)):
            pad = first_prefix if (n == 0 and first_prefix is not None) else " " * indent
            value(pad + key + ":", indent, depth)

    def value(head: str, indent: int, depth: int) -> None:
        choice = draw(st.integers(0, 9)) if depth < 3 else 0
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from(["", "# c", "  # deep comment", "   "])))
        if choice <= 5:
            lines.append(f"{head} {scalar()}{comment()}")
        elif choice <= 7:
            lines.append(head + comment())
            mapping(indent + width, depth + 1)
        else:
            lines.append(head + comment())
            at = indent if indentless else indent + width
            for _ in range(draw(st.integers(1, 3))):
                dash = "-" + " " * draw(st.integers(1, 2))
                if draw(st.booleans()):
                    mapping(at + len(dash), depth + 1, first_prefix=" " * at + dash)
                else:
                    lines.append(f"{' ' * at}{dash}{scalar()}{comment()}")

    if draw(st.booleans()):
        lines.append("# a leading comment")
    mapping(0, 0)
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


DAMAGE = [" ", "  ", "\n", "-", "- ", ":", ": ", "#", " #", '"', "'", "[", "]", ",", "\t", "&a ", "*a", "!", "a",
          "1", "\r", "\u2028", "\u0085", "é", "\ufeff", "---\n", "? ", "|", "{", "%", "\\"]


@st.composite
def damaged(draw: st.DrawFn) -> str:
    text = draw(documents())
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + draw(st.sampled_from(DAMAGE)) + text[at:]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 3)):]
    return text


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_generated_documents_read_as_pyyaml_reads_them(text: str) -> None:
    check_same(text)


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_documents_read_as_pyyaml_reads_them_or_are_declined(text: str) -> None:
    check_same(text)


# --- files -------------------------------------------------------------------------------------------------

def _utf8(path: Path) -> bool:
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# (A fixture that is not UTF-8 is refused before any YAML is read: no reader sees it.)
FILES = sorted(p for p in [*FIXTURES.rglob("*.yaml"), *FIXTURES.rglob("*.yml"), *(ROOT / "examples").rglob("*.yaml")]
               if _utf8(p))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_fixture_files_read_as_pyyaml_reads_them(path: Path) -> None:
    check_same(path.read_bytes().decode("utf-8"))


def test_the_fast_path_takes_the_files_definitions_are_usually_written_as(tmp_path: Path) -> None:
    """The benchmark's files (every metric kind, defaults, flow lists, nested lists of mappings) and most
    examples: if the fast path declined them, validate would silently be as slow as before."""
    generate(tmp_path, 600, 6, "bench")
    files = sorted((tmp_path / "metrics").glob("*.yaml"))
    assert len(files) == 6
    for file in files:
        assert check_same(file.read_text(encoding="utf-8")), file
    taken = [p for p in (ROOT / "examples").rglob("*.yaml") if check_same(p.read_text(encoding="utf-8"))]
    assert len(taken) >= 3


@pytest.mark.parametrize("text", [
    "project: shop\nmetrics:\n- key: a\n  tags: [web, \"kpi\", yes, 1]\n  n: 95 # c\n",
    "a:\n  b:\n    - x\n    -  y: 1\n       z: ~\n",
    "# c\n\nk: 'it'\nn: \"çé 日本\"\no: off\np: 1e3\nq: 0x1F\n",
    "k:    [ a ,b ]   # c\n",
    'k: ["çé日本", x, "ｏ"]\nl:\n- "日本" # c\n- x\n',
    "k" * 128 + ": 1\n",
])
def test_small_documents_are_taken_and_agree(text: str) -> None:
    assert check_same(text)


@pytest.mark.parametrize("text", [
    "", "# nothing\n", "- a\n", "  a: 1\n", "a:\n", "a: 1\na: 2\n", "yes: 1\n", "a: b\n  c\n", "a: |\n  x\n",
    "a: &x 1\nb: *x\n", "a: !!str 1\n", "a: \"x\\ty\"\n", "a: 'it''s'\n", "a: {b: 1}\n", "a: .inf\n",
    "a: 2024-01-01\n", "a:\tb\n", "a: b\r\n", "---\na: 1\n", "a: b: c\n", "<<: {a: 1}\n", "a: [b, [c]]\n",
    "a:\n  - - b\n", "a:\n  -\n    b: 1\n", "a: \ufeffb\n", "a: 😀\n", "k" * 129 + ": 1\n", "k" * 1100 + ": 1\n",
])
def test_what_the_fast_path_declines(text: str) -> None:
    assert read_fast(text, "f.yaml") is None
