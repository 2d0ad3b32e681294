"""A fast reader for the plain block-style YAML that definition files are nearly always written in.

PyYAML (even with libyaml's C parser) builds a node object per value and resolves every scalar in Python,
and yaml_reader then walks those nodes again to record positions: about two thirds of `validate` on big
repositories. This reader goes through the text line by line instead and builds the data and the positions
in one pass. It takes only a small, common subset of YAML and *declines* everything else (returns None), so
that yaml_reader reads such text with PyYAML as before:

  * mappings with plain keys (`name:`), block sequences (`- ...`, indented or not), one-line flow sequences
    of plain words or double-quoted texts (`[web, "kpi"]`);
  * one-line scalars: plain (`sum`, `95`, `true`), double-quoted without escapes, single-quoted without `''`;
  * comments, blank lines, printable characters of the Basic Multilingual Plane, `\\n` line ends.

Anything else (anchors, aliases, tags, block scalars, multi-line scalars, escapes, flow mappings, tabs,
`\\r`, document markers, empty values, duplicate keys, keys YAML reads as non-text, values that need a
problem reported, depth) is declined rather than guessed: the fast path never reports a problem, it only
ever yields what PyYAML yields. tests/definitions/test_block_yaml.py holds it to that, values and line:column
of every value and key, on generated documents and on the hostile-input fixtures.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

Path_ = tuple[str | int, ...]
Position = tuple[int, int]

# The characters this reader takes: printable ASCII, line feeds, and the Basic Multilingual Plane without
# the C1 controls, U+2028/U+2029 (line breaks for YAML), the byte-order mark and the surrogates.
_TAKEN_TEXT = re.compile("[\n\x20-\x7e\u00a0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]*")
# A plain key (`unitAggregationType:`), then a space or the end of the line. At most 128 characters: libyaml
# refuses a key longer than 1,024.
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_-]{0,127}):(?: +|$)")
# The same, and when the whole value is a double-quoted text without escapes (the commonest line), that text.
_KEY_QUOTED = re.compile(r'([A-Za-z_][A-Za-z0-9_-]{0,127}):(?: +|$)(?:"([^"\\]*)"(?: +#.*)?$)?')
# One item of a one-line flow sequence: a plain word or a double-quoted text without escapes or separators.
_FLOW_ITEM = re.compile(r'"[^"\\,\[\]{}]*"|[A-Za-z0-9_][A-Za-z0-9_./-]*')
# Characters that start something other than a plain scalar (or a plain scalar this reader leaves to PyYAML).
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
_MAX_DEPTH = 32
_DIGITS = frozenset("0123456789")

# (plain text, path) -> value. Raises Decline when the value is not one this reader yields (a date, `.inf`).
PlainScalar = Callable[[str, Path_], Any]


class Decline(Exception):
    """The text uses YAML this reader does not take: PyYAML reads it."""


def _text(value: str) -> str:
    # As yaml_reader's builder does: short texts repeat across metrics, so one copy each.
    return sys.intern(value) if len(value) <= 32 else value


def _is_entry(content: str) -> bool:
    """Whether a line's content is a block sequence entry (`-` then a space, or `-` alone)."""
    return content[:2] in _ENTRY


_ENTRY = ("- ", "-")
# After the last line: an indent below every block's, so each ends there without a bounds check.
_END = (-1, "", 0)


class _Reader:
    def __init__(self, lines: list[tuple[int, str, int]], plain: PlainScalar, is_text_key: Callable[[str], bool]):
        self.lines = lines  # (indent, content without indent or trailing spaces, 1-based line number), then _END
        self.i = 0
        self.plain = plain
        self.is_text_key = is_text_key
        self.positions: dict[Path_, Position] = {}
        self.key_positions: dict[Path_, Position] = {}
        self.keys: dict[str, str] = {}  # each key already read as text, interned

    def document(self) -> Any:
        if self.lines[0][0] != 0 or _is_entry(self.lines[0][1]):
            raise Decline  # an empty file, an indented or a list root: PyYAML says what is wrong
        data = self.mapping(0, (), 0)
        if self.i != len(self.lines) - 1:
            raise Decline
        return data

    def block(self, indent: int, path: Path_, depth: int) -> Any:
        if _is_entry(self.lines[self.i][1]):
            return self.sequence(indent, path, depth, indentless=False)
        return self.mapping(indent, path, depth)

    def mapping(self, indent: int, path: Path_, depth: int) -> dict[str, Any]:
        """The mapping whose first key is on line `self.i`, at `indent`; leaves `self.i` on the line after it."""
        if depth > _MAX_DEPTH:
            raise Decline
        # The loop of every line: locals, and the commonest line (`key: "text"`) read by one expression.
        lines, keys, positions, key_positions = self.lines, self.keys, self.positions, self.key_positions
        i = self.i
        _, content, number = lines[i]
        column = indent + 1
        positions[path] = (number, column)
        result: dict[str, Any] = {}
        while True:
            match = _KEY_QUOTED.match(content)
            if match is None:
                raise Decline
            written, quoted = match.groups()
            key = keys.get(written)
            if key is None:
                if not self.is_text_key(written):
                    raise Decline  # `yes:` / `null:`: yaml_reader reports those
                key = keys[written] = sys.intern(written)
            if key in result:
                raise Decline  # a duplicate: yaml_reader reports it
            child = (*path, key)
            key_positions[child] = (number, column)
            i += 1
            if quoted is not None:
                positions[child] = (number, indent + match.start(2))  # the opening quote, 1-based
                result[key] = sys.intern(quoted) if len(quoted) <= 32 else quoted
                at, content, number = lines[i]
                if at > indent:
                    raise Decline  # a multi-line scalar, or a mistake
            elif (rest := content[match.end():]) and rest[0] != "#":
                result[key] = self.inline(rest, indent + match.end(), number, child)
                at, content, number = lines[i]
                if at > indent:
                    raise Decline
            else:
                self.i = i
                at, content, _ = lines[i]
                if at > indent:
                    result[key] = self.block(at, child, depth + 1)
                elif at == indent and _is_entry(content):
                    result[key] = self.sequence(indent, child, depth + 1, indentless=True)
                else:
                    raise Decline  # an empty value (null)
                i = self.i
                at, content, number = lines[i]
            if at < indent:
                self.i = i
                return result
            if at > indent or _is_entry(content):
                raise Decline

    def sequence(self, indent: int, path: Path_, depth: int, *, indentless: bool) -> list[Any]:
        """The list whose first `-` is on line `self.i`, at `indent`; leaves `self.i` on the line after it."""
        if depth > _MAX_DEPTH:
            raise Decline
        lines = self.lines
        i = self.i
        _, content, number = lines[i]
        self.positions[path] = (number, indent + 1)
        items: list[Any] = []
        while True:
            child = (*path, len(items))
            rest = content[1:].lstrip(" ")
            if not rest or rest[0] == "#" or _is_entry(rest):
                raise Decline  # a nested block on the next lines, or a list in a list: PyYAML
            column = indent + len(content) - len(rest)
            if _KEY.match(rest):
                lines[i] = (column, rest, number)  # the item's mapping starts where its first key does
                self.i = i
                items.append(self.mapping(column, child, depth + 1))
                i = self.i
            else:
                items.append(self.inline(rest, column, number, child))
                i += 1
                if lines[i][0] > indent:
                    raise Decline
            at, content, number = lines[i]
            if at < indent:
                self.i = i
                return items
            if at > indent:
                raise Decline
            if not _is_entry(content):
                if indentless:
                    self.i = i
                    return items  # the next key of the mapping this list is a value of
                raise Decline

    def inline(self, rest: str, column: int, number: int, path: Path_) -> Any:
        """The value written on the rest of a line, starting at 0-based `column`."""
        self.positions[path] = (number, column + 1)
        first = rest[0]
        if first == '"' or first == "'":
            end = rest.find(first, 1)
            if end < 0 or (first == '"' and "\\" in rest[1:end]):
                raise Decline
            _nothing_after(rest, end + 1)  # also declines `'it''s'` (a doubled quote is one quote in YAML)
            return _text(rest[1:end])
        if first == "[":
            return self.flow(rest, column, number, path)
        if first in _INDICATORS and not (first == "-" and rest[1:2] in _DIGITS):
            raise Decline
        cut = rest.find(" #")
        value = rest if cut < 0 else rest[:cut].rstrip(" ")
        if ": " in value or value.endswith(":"):
            raise Decline
        return self.plain(value, path)

    def flow(self, rest: str, column: int, number: int, path: Path_) -> list[Any]:
        end = rest.find("]")
        if end < 0:
            raise Decline
        _nothing_after(rest, end + 1)
        inner = rest[1:end]
        items: list[Any] = []
        if not inner.strip(" "):
            return items
        offset = column + 1
        for index, part in enumerate(inner.split(",")):
            word = part.strip(" ")
            if not _FLOW_ITEM.fullmatch(word):
                raise Decline
            child = (*path, index)
            self.positions[child] = (number, offset + len(part) - len(part.lstrip(" ")) + 1)
            items.append(_text(word[1:-1]) if word[0] == '"' else self.plain(word, child))
            offset += len(part) + 1
        return items


def _nothing_after(rest: str, start: int) -> None:
    """Only a comment may follow a quoted scalar or a flow sequence on its line."""
    tail = rest[start:]
    if tail and not (tail[0] == " " and tail.lstrip(" ")[0] == "#"):
        raise Decline


Read = tuple[Any, dict[Path_, Position], dict[Path_, Position]]


def read_block_yaml(text: str, plain: PlainScalar, is_text_key: Callable[[str], bool]) -> Read | None:
    """(data, value positions, key positions) of `text`, or None when this reader does not take it.
    `plain` turns a plain scalar into its value (and may decline); `is_text_key` says whether YAML reads a
    plain key as text."""
    if not _TAKEN_TEXT.fullmatch(text):
        return None
    lines = []
    for number, line in enumerate(text.split("\n"), 1):
        content = line.lstrip(" ")
        if content and content[0] != "#":
            lines.append((len(line) - len(content), content.rstrip(" "), number))
    lines.append(_END)
    reader = _Reader(lines, plain, is_text_key)
    try:
        data = reader.document()
    except Decline:
        return None
    return data, reader.positions, reader.key_positions
