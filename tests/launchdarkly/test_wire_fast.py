"""The compiled reader (wire.decode) against the strict one (wire.strict_decode): on any body, the same verdict —
the same value, or the same refusal with the same message. Bodies are drawn whole (JSON values written with keys
given twice, escaped colons, any text), as damaged variants of those, and as hostile cases written out."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from metrics_sync.launchdarkly import wire
from metrics_sync.launchdarkly.wire import MAX_DEPTH, BadJson, decode, strict_decode

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = st.text(alphabet='ab:"\\\u00e9\u2603', max_size=4)
TEXT = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from([":", '"', "\\", "\ud800", "\x00"]),
               max_size=8)
NUMBERS = st.one_of(st.integers(), st.integers(min_value=-(10**40), max_value=10**40),
                    st.floats(allow_nan=False, allow_infinity=False))
VALUES = st.recursive(st.none() | st.booleans() | NUMBERS | TEXT,
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                      max_leaves=25)


def tagged(value: Any) -> Any:
    """A value with its types spelled out: 1 and 1.0, 0.0 and -0.0, and key order all count."""
    if isinstance(value, dict):
        return ("object", [(k, tagged(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("array", [tagged(v) for v in value])
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    return (type(value).__name__, value)


def verdict(read: Any, content: bytes, walk: bool) -> Any:
    try:
        return "value", tagged(read(content, walk=walk))
    except BadJson as exc:
        return "refused", str(exc)


def same_verdict(content: bytes, walk: bool = True) -> None:
    assert verdict(decode, content, walk) == verdict(strict_decode, content, walk)


@st.composite
def written(draw: st.DrawFn, value: Any = None) -> bytes:
    """A JSON text of a drawn value, written in varied ways: keys sometimes given twice, colons and other
    characters sometimes escaped, text as ASCII escapes or UTF-8."""
    value = draw(VALUES) if value is None else value
    ascii_only = draw(st.booleans())

    def text(s: str) -> str:
        out = json.dumps(s, ensure_ascii=ascii_only)
        return out.replace(":", "\\u003a") if draw(st.booleans()) else out

    def write(v: Any) -> str:
        if isinstance(v, dict):
            pairs = [f"{text(k)}:{write(x)}" for k, x in v.items()]
            if pairs and draw(st.integers(0, 9)) == 0:  # a key given twice
                pairs.insert(draw(st.integers(0, len(pairs))), pairs[draw(st.integers(0, len(pairs) - 1))])
            return "{" + draw(st.sampled_from([",", ", ", " ,\n"])).join(pairs) + "}"
        if isinstance(v, list):
            return "[" + ",".join(write(x) for x in v) + "]"
        if isinstance(v, str):
            return text(v)
        return json.dumps(v)

    return write(value).encode("utf-8", "surrogatepass")


@SETTINGS
@given(written(), st.booleans())
@example(b'{"a":1,"a":2}', True)
@example(b'{"a\\u003a":1,"a:":2}', True)
@example(b'{"a\\\\u003a":1}', True)  # a backslash, then the text u003a: not an escape
@example(b'{"x":{"k":1,"k":{"deep":":"}}}', False)
@example(b'{"a":NaN}', True)
@example(b"[1e400, -1e400]", True)
@example(b'"\\ud800"', True)
@example(b"\xef\xbb\xbf[1]", True)
@example('{"a": "\u00e9"}'.encode("utf-16"), True)
@example(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), True)
@example(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), False)
@example(b"[" * 50_000 + b"]" * 50_000, False)
@example(b'{"a":1}\x0c', True)
@example(b'"a\x01"', True)
@example(b"123456789012345678901234567890", True)
def test_the_compiled_reader_gives_the_strict_readers_verdict(content: bytes, walk: bool) -> None:
    same_verdict(content, walk)


@SETTINGS
@given(written(), st.integers(0, 1000), st.binary(max_size=3), st.integers(0, 3))
def test_a_damaged_body_gets_the_same_verdict(content: bytes, at: int, insert: bytes, cut: int) -> None:
    at = at % (len(content) + 1)
    same_verdict(content[:at] + insert + content[at + cut:])


def page(n: int) -> bytes:
    items = [{"key": f"m{i}", "name": f"Metric {i}", "kind": "custom", "eventKey": "e:v", "tags": ["a", "b"],
              "_links": {"self": {"href": f"/api/v2/metrics/p/m{i}"}}, "eventDefault": {"disabled": False}}
             for i in range(n)]
    return json.dumps({"items": items, "totalCount": n, "_links": {"next": {"href": "/x?offset=50"}}}).encode()


def test_an_ordinary_page_is_read_by_the_compiled_reader_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def unused(content: bytes, *, walk: bool = True) -> Any:
        raise AssertionError("the strict reader was asked")

    body = page(50)
    expected = strict_decode(body)
    monkeypatch.setattr(wire, "strict_decode", unused)
    assert decode(body) == expected


def test_a_key_given_twice_deep_in_a_page_is_refused_by_name() -> None:
    body = page(3).replace(b'"href": "/api/v2/metrics/p/m1"', b'"href": "/a", "href": "/b"')
    with pytest.raises(BadJson, match="it gives the key `href` twice in one object"):
        decode(body)


def test_near_the_recursion_limit_the_verdict_is_the_strict_readers() -> None:
    """Both readers stop at the interpreter's recursion limit, which depends on the caller's stack: the compiled
    reader never takes a body nested more deeply than the strict reader, called where `decode` calls it, would."""
    def strict_as_decode_calls_it(content: bytes, *, walk: bool) -> Any:
        return strict_decode(content, walk=walk)

    def outcome(read: Any, content: bytes) -> str:
        try:
            read(content, walk=False)  # a value this deep is not compared: walking it would need the recursion
            return "taken"
        except BadJson as exc:
            return str(exc)

    limit = sys.getrecursionlimit()
    outcomes = set()
    for nesting in range(limit - 120, limit + 5):
        body = b'{"items": [], "x": ' + b"[" * nesting + b"]" * nesting + b"}"
        outcomes.add(outcome(decode, body))
        assert outcome(decode, body) == outcome(strict_as_decode_calls_it, body), nesting
    assert outcomes == {"taken", f"it is nested deeper than {MAX_DEPTH} levels"}  # the band spans the limit


@SETTINGS
@given(st.lists(st.from_regex(r"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
                min_size=1, max_size=8))
@example(["1.7976931348623157e308", "1.7976931348623159e308", "2.2250738585072011e-308", "4.9e-324", "2e-324",
          "0.30000000000000004", "9007199254740993", "9007199254740993.0", "-0.0", "1e23", "8.98846567431158e307"])
def test_numbers_written_any_way_read_as_the_strict_reader_reads_them(numbers: list[str]) -> None:
    same_verdict(("[" + ",".join(numbers) + "]").encode())
