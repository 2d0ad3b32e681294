"""Find definition files and load YAML safely, keeping the line and column of every value.

This is the only module that imports `yaml`. It never executes YAML tags (safe loading only) and it
builds Python data from the composed node tree itself, because PyYAML's own constructor:
  * silently keeps the last of duplicate mapping keys (we must reject them),
  * forgets where each value came from (we report problems as file:line:col),
  * expands aliases without limit ("billion laughs").
Parse failures are returned as `Problem` values, never raised, so one bad file never hides the others.

Plain block-style text (nearly every definitions file) is first offered to block_yaml.py, which builds the
same document in one pass over the lines, asking PyYAML's own resolver and constructor what each plain scalar
is; whatever it declines is read here as before.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from metrics_sync.core.model import Problem
from metrics_sync.definitions.block_yaml import Decline, read_block_yaml

# libyaml's C parser is several times faster and keeps marks (line/column) on nodes.
_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024
# A document may repeat anchored content through aliases, but not explode: beyond this many
# expanded nodes (on top of the nodes actually written) we stop and report an alias bomb.
ALIAS_EXPANSION_BUDGET = 100_000
MAX_DEPTH = 64

YAML_SUFFIXES = (".yaml", ".yml")

Path_ = tuple[str | int, ...]


@dataclass
class YamlDocument:
    """A loaded YAML file: its data and where each part of it is written."""

    file: str
    data: Any
    # path -> (line, column), 1-based, of the value node / of the mapping key node
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    # path -> source text of plain scalars that YAML resolved to a non-string (e.g. `on`, `2024-01-01`)
    resolved_scalars: dict[Path_, str] = field(default_factory=dict)
    # path -> (source text, what YAML 1.1 reads, what YAML 1.2 reads) of plain scalars that YAML 1.1 (this
    # loader) and YAML 1.2 (editors' language servers) read differently, e.g. `1e3` (text here, a number there)
    yaml12_differences: dict[Path_, tuple[str, Any, Any]] = field(default_factory=dict)

    def position(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        """The best known position for `path`: the node itself, else its nearest ancestor."""
        table = self.key_positions if key else self.positions
        probe = tuple(path)
        if probe in table:
            return table[probe]
        while probe:
            probe = probe[:-1]
            if probe in self.positions:
                return self.positions[probe]
        return (1, 1)


class _AliasBomb(Exception):
    pass


_COLLECTION_TAGS: dict[type[yaml.Node], str] = {yaml.SequenceNode: "tag:yaml.org,2002:seq",
                                                yaml.MappingNode: "tag:yaml.org,2002:map"}
_SCALAR, _SEQUENCE = yaml.ScalarNode, yaml.SequenceNode
_STR, _MERGE = "tag:yaml.org,2002:str", "tag:yaml.org,2002:merge"


class _Builder:
    """Turns a composed node tree into Python data, recording positions and problems."""

    def __init__(self, file: str, distinct_nodes: int, aliases: bool = True) -> None:
        self.doc = YamlDocument(file=file, data=None)
        self.problems: list[Problem] = []
        self.budget = distinct_nodes + ALIAS_EXPANSION_BUDGET
        self.constructor = yaml.constructor.SafeConstructor()
        self._active: set[int] = set()
        self.aliases = aliases  # whether the text may hold aliases (`*name`)

    def problem(self, node: yaml.Node, message: str, path: Path_, hint: str | None = None) -> None:
        self.problems.append(
            Problem(
                self.doc.file,
                node.start_mark.line + 1,
                node.start_mark.column + 1,
                message,
                path=format_path(path) or None,
                hint=hint,
            )
        )

    def build(self, node: yaml.Node, path: Path_, depth: int = 0) -> Any:
        # The hot loop of every load: plain type checks and one dict write per node.
        self.budget -= 1
        if self.budget < 0:
            raise _AliasBomb()
        if depth > MAX_DEPTH:
            self.problem(node, f"nesting deeper than {MAX_DEPTH} levels", path)
            return None
        mark = node.start_mark
        self.doc.positions[path] = (mark.line + 1, mark.column + 1)
        kind = type(node)
        if kind is _SCALAR:
            return self._scalar(node, path)  # type: ignore[arg-type]
        if node.tag != _COLLECTION_TAGS[kind]:  # e.g. !!python/object/apply: only plain YAML data is accepted
            shown = node.tag.replace("tag:yaml.org,2002:", "!!")
            self.problem(node, f"unsupported YAML tag {shown}", path, hint="remove the tag")
            return None
        if not self.aliases:  # without aliases a node cannot contain itself
            if kind is _SEQUENCE:
                return [self.build(child, (*path, i), depth + 1) for i, child in enumerate(node.value)]
            return self._mapping(node, path, depth)  # type: ignore[arg-type]
        node_id = id(node)
        if node_id in self._active:
            self.problem(node, "recursive YAML alias (a node that contains itself)", path)
            return None
        self._active.add(node_id)
        try:
            if kind is _SEQUENCE:
                return [self.build(child, (*path, i), depth + 1) for i, child in enumerate(node.value)]
            return self._mapping(node, path, depth)  # type: ignore[arg-type]
        finally:
            self._active.discard(node_id)

    def _scalar(self, node: yaml.ScalarNode, path: Path_) -> Any:
        plain = not node.style  # unquoted ('' from libyaml, None from PyYAML)
        if node.tag == "tag:yaml.org,2002:str":
            if plain and _MAYBE_TYPED.match(node.value):
                self._compare_with_yaml12(node.value, node.value, path)
            # Short texts repeat across metrics (`custom`, `average`, tag names): one copy each, not one per
            # metric, in the memory of a big plan.
            return sys.intern(node.value) if len(node.value) <= 32 else node.value
        try:
            value = self.constructor.construct_object(node)
        except yaml.constructor.ConstructorError as exc:
            self.problem(node, f"cannot read value: {exc.problem}", path)
            return None
        except ValueError:  # an integer of more digits than Python converts (4,300)
            self.problem(node, f"`{node.value[:20]}…` is a number too long to read", path,
                         hint="LaunchDarkly's numbers are doubles; write a number such as 0")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.problem(node, f"`{node.value}` is not a finite number", path,
                         hint="LaunchDarkly takes finite numbers only; write a number such as 0")
            return None
        if plain:
            self.doc.resolved_scalars[path] = node.value
            if isinstance(value, (int, float)):  # bool included: `yes` is true here, text in YAML 1.2
                self._compare_with_yaml12(node.value, value, path)
        return value

    def _compare_with_yaml12(self, source: str, value: Any, path: Path_) -> None:
        _compare_with_yaml12(self.doc, source, value, path)

    def _mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        pairs = node.value
        if any(key_node.tag == _MERGE for key_node, _ in pairs):
            own: list[tuple[yaml.Node, yaml.Node]] = []
            for key_node, value_node in pairs:
                if key_node.tag == _MERGE:
                    # `<<: *anchor` (or a list of anchors): merged first, so the mapping's own keys win.
                    sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                    for source in sources:
                        result.update(self._merge_source(source, path, depth))
                else:
                    own.append((key_node, value_node))
            pairs = own
        first_seen: dict[str, int] = {}
        key_positions = self.doc.key_positions
        for key_node, value_node in pairs:
            named = sys.intern(str(key_node.value)) if type(key_node) is _SCALAR and key_node.tag == _STR else \
                self._key(key_node, path)
            if named is None:
                continue
            key = named
            child = (*path, key)
            mark = key_node.start_mark
            line = mark.line + 1
            if key in first_seen:
                self.problem(
                    key_node,
                    f"duplicate key `{key}` (first defined on line {first_seen[key]})",
                    child,
                    hint="YAML would silently keep only the last one; remove or rename one of them",
                )
                continue
            first_seen[key] = line
            key_positions[child] = (line, mark.column + 1)
            result[key] = self.build(value_node, child, depth + 1)
        return result

    def _merge_source(self, source: yaml.Node, path: Path_, depth: int) -> dict[str, Any]:
        if not isinstance(source, yaml.MappingNode):
            self.problem(source, "`<<` merge needs a mapping (or a list of mappings)", path)
            return {}
        self.budget -= 1
        if self.budget < 0:
            raise _AliasBomb()
        if id(source) in self._active or depth > MAX_DEPTH:
            self.problem(source, "recursive YAML merge", path)
            return {}
        self._active.add(id(source))
        try:
            return self._mapping(source, path, depth + 1)
        finally:
            self._active.discard(id(source))

    def _key(self, key_node: yaml.Node, path: Path_) -> str | None:
        if not isinstance(key_node, yaml.ScalarNode):
            self.problem(key_node, "mapping keys must be plain names, not lists or mappings", path)
            return None
        if key_node.tag == "tag:yaml.org,2002:str":
            return str(key_node.value)
        value = self._scalar(key_node, path)
        self.problem(
            key_node,
            f"key `{key_node.value}` was read as {describe_type(value)}, not a name",
            path,
            hint=f'YAML 1.1 gives unquoted `{key_node.value}` a type; quote it: "{key_node.value}"',
        )
        return None


def _compare_with_yaml12(doc: YamlDocument, source: str, value: Any, path: Path_) -> None:
    other = yaml12_reading(source)
    if type(other) is not type(value) or other != value:
        doc.yaml12_differences[path] = (source, value, other)


# The fast path (block_yaml.py) for plain block-style text: what PyYAML's resolver and constructor make of a
# plain scalar, asked once per distinct text. A text whose first character starts no implicit type is text.
_RESOLVER = yaml.resolver.Resolver()
# (A resolver for every first character, keyed None, would make every text a candidate: none is registered.)
_TYPED_STARTS = frozenset(_RESOLVER.yaml_implicit_resolvers) if None not in _RESOLVER.yaml_implicit_resolvers \
    else frozenset(chr(c) for c in range(0x10000))
_FAST_TAGS = frozenset({"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                        "tag:yaml.org,2002:null"})
_PLAIN_READINGS: dict[str, tuple[Any] | None] = {}
_PLAIN_READINGS_MAX = 10_000


def _plain_reading(text: str) -> tuple[Any] | None:
    """(value,) of a plain scalar YAML reads as a boolean, number or null; None for any other type (a date,
    `.inf`, `=`): the fast path declines those and PyYAML reads the file."""
    if text in _PLAIN_READINGS:
        return _PLAIN_READINGS[text]
    tag = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    reading: tuple[Any] | None = None
    if tag in _FAST_TAGS:
        try:
            value = yaml.constructor.SafeConstructor().construct_object(yaml.ScalarNode(tag, text))
        except ValueError:  # an integer too long to convert: the builder below reports it
            value = math.inf
        if not (isinstance(value, float) and not math.isfinite(value)):
            reading = (value,)
    elif tag == _STR:
        reading = (text,)
    if len(_PLAIN_READINGS) >= _PLAIN_READINGS_MAX:
        _PLAIN_READINGS.clear()
    _PLAIN_READINGS[text] = reading
    return reading


def _is_text_key(text: str) -> bool:
    if text[0] not in _TYPED_STARTS:
        return True
    reading = _plain_reading(text)
    return reading is not None and type(reading[0]) is str


def read_fast(text: str, name: str) -> YamlDocument | None:
    """The document of plain block-style text read by block_yaml.py, exactly as the builder below would
    make it from PyYAML's nodes (values, positions, resolved scalars, YAML 1.2 differences); None when that
    reader does not take the text."""
    doc = YamlDocument(file=name, data=None)
    resolved, typed_starts, maybe_typed = doc.resolved_scalars, _TYPED_STARTS, _MAYBE_TYPED

    def plain(source: str, path: Path_) -> Any:
        if source[0] not in typed_starts:
            if maybe_typed.match(source):
                _compare_with_yaml12(doc, source, source, path)
            return sys.intern(source) if len(source) <= 32 else source
        reading = _plain_reading(source)
        if reading is None:
            raise Decline
        value = reading[0]
        if type(value) is str:
            if maybe_typed.match(source):
                _compare_with_yaml12(doc, source, source, path)
            return sys.intern(source) if len(source) <= 32 else source
        resolved[path] = source
        if isinstance(value, (int, float)):  # bool included, as in the builder
            _compare_with_yaml12(doc, source, value, path)
        return value

    read = read_block_yaml(text, plain, _is_text_key)
    if read is None:
        return None
    doc.data, doc.positions, doc.key_positions = read
    return doc


# A plain scalar that YAML 1.2's core schema might read as something other than text starts like this.
_MAYBE_TYPED = re.compile(r"[-+.0-9~nNtTfF]")
_YAML12_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_YAML12_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def yaml12_reading(text: str) -> Any:
    """What YAML 1.2's core schema (editors' language servers) makes of a plain scalar."""
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE", "false", "False", "FALSE"):
        return text.lower() == "true"
    if _YAML12_INT.fullmatch(text):
        if text.startswith(("0o", "0x")):
            return int(text[2:], 8 if text[1] == "o" else 16)
        return int(text)
    if _YAML12_FLOAT.fullmatch(text):
        return float(text)
    if text.lower().lstrip("+-") in (".inf", ".nan"):
        return float(text.lower().replace(".", ""))
    return text


def _count_distinct(root: yaml.Node) -> int:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack.append(k)
                stack.append(v)
    return len(seen)


def describe_type(value: Any) -> str:
    """Human words for the type YAML gave a value, e.g. 'a boolean (true)'."""
    if value is None:
        return "null (empty)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, datetime.datetime):
        return f"a timestamp ({value.isoformat()})"
    if isinstance(value, datetime.date):
        return f"a date ({value.isoformat()})"
    if isinstance(value, str):
        # Never the whole of a long value: a file that is one long scalar (a key file, a .env) is not echoed.
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bytes):
        return "binary data"
    return type(value).__name__


def format_path(path: Iterable[str | int]) -> str:
    """("metrics", 2, "unit") -> "metrics[2].unit"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _line_col_of_offset(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    col = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return line, col


class NotRegularFile(Exception):
    """A path that names a FIFO, a socket or a device: reading it could block forever or never end."""


class FileTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`. Opened without blocking (a FIFO's open waits for a
    writer otherwise) and checked on the open file itself (fstat: no swap between a check and the read), so a
    FIFO, socket or device among the definitions is refused at once, never read. Raises OSError,
    NotRegularFile or FileTooLarge."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile
        if st.st_size > max_bytes:
            raise FileTooLarge(st.st_size)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)  # a file that grows while read is still bounded
        if len(data) > max_bytes:
            raise FileTooLarge(len(data))
        return data
    finally:
        os.close(fd)


def load_yaml_file(path: Path, *, display: str | None = None,
                   max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> tuple[YamlDocument | None, list[Problem]]:
    """Read and parse one YAML file. Returns (document or None, problems)."""
    name = display or str(path)
    try:
        raw = read_regular_file(path, max_bytes)
    except FileTooLarge as exc:
        return None, [Problem(name, None, None, f"file is {exc.size:,} bytes, over the {max_bytes:,}-byte limit",
                              hint="split it into several files, or raise maxFileBytes in the config")]
    except NotRegularFile:
        return None, [Problem(name, None, None, "not a regular file (a FIFO, socket or device); not read",
                              hint="definitions are regular YAML files; remove it or rename it")]
    except OSError as exc:
        return None, [Problem(name, None, None, f"cannot read file: {exc.strerror or exc}")]
    return parse_yaml_bytes(raw, name, max_bytes=max_bytes)


def parse_yaml_bytes(raw: bytes, name: str, *,
                     max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> tuple[YamlDocument | None, list[Problem]]:
    if len(raw) > max_bytes:
        return None, [Problem(name, None, None, f"file is {len(raw):,} bytes, over the {max_bytes:,}-byte limit")]
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None, [Problem(name, 1, 1, "file is UTF-16 encoded, not UTF-8",
                              hint="save it as UTF-8 (without a byte-order mark)")]
    if raw.startswith(b"\xef\xbb\xbf"):
        return None, [Problem(name, 1, 1, "file starts with a UTF-8 byte-order mark (BOM)",
                              hint="save it as UTF-8 without a byte-order mark")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col_of_offset(raw, exc.start)
        return None, [Problem(name, line, col, f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
                              hint="save the file as UTF-8")]
    return parse_yaml_text(text, name)


def parse_yaml_text(text: str, name: str, *, fast: bool = True) -> tuple[YamlDocument | None, list[Problem]]:
    """Parse one file's text. `fast=False` skips the fast path (block_yaml.py): tests compare the two."""
    if fast:
        doc = read_fast(text, name)
        if doc is not None:
            return doc, []
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = "YAML syntax error: " + (exc.problem or exc.context or "cannot parse")
        if exc.context and exc.problem:
            message += f" ({exc.context})"
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        source = _source_line(text, mark.line) if mark is not None else ""
        hint = _syntax_hint(exc.problem or "", source, mark.column if mark is not None else 0)
        return None, [Problem(name, line, col, message, hint=hint)]
    except yaml.YAMLError as exc:
        return None, [Problem(name, None, None, f"YAML error: {exc}")]
    except RecursionError:
        return None, [Problem(name, None, None, "YAML nesting is too deep to read")]
    finally:
        loader.dispose()
    if root is None:
        return None, [Problem(name, 1, 1, "file is empty; expected a mapping with a `metrics:` list")]
    # The alias budget needs the number of distinct nodes; without an alias (`*`) every node is built once,
    # and the text's length bounds their number without counting them.
    aliases = "*" in text
    builder = _Builder(name, _count_distinct(root) if aliases else len(text), aliases)
    try:
        builder.doc.data = builder.build(root, ())
    except _AliasBomb:
        return None, [Problem(name, root.start_mark.line + 1, root.start_mark.column + 1,
                              f"YAML aliases expand to more than {ALIAS_EXPANSION_BUDGET:,} extra values",
                              hint="this looks like an alias bomb; write the values out instead")]
    except RecursionError:
        return None, [Problem(name, None, None, "YAML nesting is too deep to read")]
    return builder.doc, builder.problems


def _syntax_hint(problem: str, line: str, column: int) -> str | None:
    """What usually causes a YAML syntax error, in the words of the file's author."""
    if "\t" in line[: column + 1]:
        return "YAML does not allow tabs for indentation; use spaces"
    if "mapping values are not allowed" in problem:
        key, _, value = line.strip().removeprefix("- ").partition(": ")
        if ": " in value or value.endswith(":"):
            return f'the value holds ": "; quote it: {key}: "{value}"'
        return "this line is indented further than the keys it belongs with; line it up with them"
    if "expected '-' indicator" in problem or "expected <block end>" in problem:
        return ("a key is indented less than the other keys of its list item, or a list item lacks its `- `; "
                "line the keys of one metric up under each other")
    if "expected ',' or ']'" in problem:
        return "a [list] is not closed: add the `]`"
    if "expected ',' or '}'" in problem:
        return "a {mapping} is not closed: add the `}`"
    if "end of stream" in problem or "unexpected end" in problem:
        return "a quote is not closed"
    if "could not find expected ':'" in problem:
        return "a key needs `: ` after it (a colon and a space)"
    if "cannot start any token" in problem:
        return "a value starting with this character must be quoted"
    return None


def _source_line(text: str, index: int) -> str:
    lines = text.splitlines()
    return lines[index] if 0 <= index < len(lines) else ""


def find_definition_files(
    paths: Iterable[str], base: Path | None = None, *, paths_source: str | None = None
) -> tuple[list[tuple[Path, str]], list[Problem]]:
    """Expand files and folders (searched recursively for *.yaml / *.yml) into a sorted file list.

    Relative paths are taken from `base` (the user's working directory). Returns
    ([(path, display name)], problems); display names are the user's own spelling, so messages point
    where the user looks. Symlink loops and unreadable folders are problems, not crashes. A folder
    holding no YAML at all is a problem: it is almost always a wrong path. `paths_source` is where the
    config names the paths (file:line:col), when they come from there: a wrong one says so.
    """
    named = f" (named in `paths` at {paths_source})" if paths_source else ""
    found: dict[str, tuple[Path, str]] = {}
    problems: list[Problem] = []
    for arg in paths:
        p = Path(arg) if base is None else base / arg
        if not p.exists() and not p.is_symlink():
            problems.append(Problem(arg, None, None, f"no such file or folder{named}"))
            continue
        if p.is_file():
            if p.name in CONFIG_FILE_NAMES:
                problems.append(Problem(arg, None, None, "this is metrics-sync's config file, not definitions",
                                        hint="pass the definition files or their folder"))
                continue
            if p.name == SCHEMA_COPY_NAME:
                continue  # the schema export writes beside the definitions: a hook that passes it is not wrong
            found.setdefault(str(p.resolve()), (p, arg))
            continue
        if p.is_symlink() and not p.exists():
            problems.append(Problem(arg, None, None, "broken symbolic link"))
            continue
        if not p.is_dir():
            problems.append(Problem(arg, None, None, "not a regular file or folder"))
            continue
        before = len(found)
        for file, display in _walk(p, arg, problems):
            found.setdefault(str(file.resolve()), (file, display))
        if len(found) == before:
            problems.append(Problem(arg, None, None, f"folder holds no *.yaml or *.yml files{named}"))
    files = sorted(found.values(), key=lambda item: item[1])
    return files, problems


def _walk(root: Path, display_root: str, problems: list[Problem]) -> Iterator[tuple[Path, str]]:
    """Definition files under `root`. A symbolic link is followed only when it stays inside `root`: a link
    out of the definitions folder (to a secret, to /etc) is reported and not read."""
    visited: set[tuple[int, int]] = set()
    real_root = os.path.realpath(root)

    def shown(path: str | Path) -> str:
        relative = os.path.relpath(path, root)
        return display_root if relative == "." else os.path.normpath(os.path.join(display_root, relative))

    def inside(path: str) -> bool:
        real = os.path.realpath(path)
        return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)

    def on_error(exc: OSError) -> None:
        problems.append(Problem(shown(exc.filename or root), None, None,
                                f"cannot read folder: {exc.strerror or exc}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError as exc:
            on_error(exc)
            dirnames[:] = []
            continue
        ident = (st.st_dev, st.st_ino)
        if ident in visited:  # a symlink loop back into a folder we already walked
            problems.append(Problem(shown(dirpath), None, None, "symbolic link loop; folder skipped"))
            dirnames[:] = []
            continue
        visited.add(ident)
        kept = []
        for d in sorted(dirnames):
            if not is_definition_name(d, folder=True):
                continue
            if not inside(os.path.join(dirpath, d)):
                problems.append(Problem(shown(os.path.join(dirpath, d)), None, None, OUTSIDE, hint=OUTSIDE_HINT))
                continue
            kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            if not is_definition_name(name):
                continue
            full = Path(dirpath) / name
            if full.is_symlink() and not full.exists():
                problems.append(Problem(shown(full), None, None, "broken symbolic link"))
                continue
            if not inside(str(full)):
                problems.append(Problem(shown(full), None, None, OUTSIDE, hint=OUTSIDE_HINT))
                continue
            yield full, shown(full)


OUTSIDE = "symbolic link to a place outside the definitions folder; not followed"
# An error, not a warning: definitions left unread would look removed, and --prune would archive them.
OUTSIDE_HINT = "if it holds definitions, pass its target as a PATH; otherwise remove the link"


def definition_file_name(stem: str) -> str:
    """A file name for definitions grouped under `stem` (a tag, a project) that `is_definition_name` accepts:
    only letters, numbers, '.', '_' and '-', never starting with a dot (a tag `.internal` or `..` would
    otherwise name a hidden file that validate and plan skip)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", stem).lstrip(".-")[:100] or "untagged"
    return f"{safe}.yaml"


CONFIG_FILE_NAMES = ("metrics-sync.yaml", "metrics-sync.yml")  # the config file is never a definitions file
# The copy of the schema `export` writes beside the definitions (for the editor modeline): never a definitions
# file, even when named as a PATH (a pre-commit hook or a glob passes every file of the folder).
SCHEMA_COPY_NAME = "metrics.schema.json"


def is_definition_name(name: str, *, folder: bool = False) -> bool:
    """The one naming rule the walker reads and export writes by: no hidden names (starting with a dot),
    files end in .yaml or .yml, and the config file is not one of them."""
    if not name or name.startswith("."):
        return False
    return folder or (name.endswith(YAML_SUFFIXES) and name not in CONFIG_FILE_NAMES)
