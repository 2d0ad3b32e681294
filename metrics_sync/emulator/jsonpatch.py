"""RFC 6902 JSON Patch, as LaunchDarkly's PATCH endpoints apply it (stdlib only).

All operations are applied to a deep copy; the patch is atomic: any failing operation (including a
failed `test`) rejects the whole patch and leaves the document unchanged. One departure from the RFC,
as LaunchDarkly behaves: `replace` of an absent object member adds it (the Terraform provider replaces
`/unit`, `/selector`, `/percentileValue` … on every update whether or not they are set).
"""

from __future__ import annotations

import copy
from typing import Any


class PatchError(Exception):
    """The patch is malformed or cannot be applied (400)."""


class PatchTestFailed(PatchError):
    """A `test` operation did not match (the document changed meanwhile)."""


_MISSING = object()


def parse_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"invalid JSON pointer {pointer!r}: must start with '/'")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if allow_end and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    limit = len(container) + (1 if allow_end else 0)
    if index >= limit:
        raise PatchError(f"array index {index} out of range")
    return index


def _parent(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path /{'/'.join(tokens)} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, allow_end=False)]
        else:
            raise PatchError(f"path /{'/'.join(tokens)} does not exist")
    return node


def get(doc: Any, pointer: str) -> Any:
    """The value at `pointer`, or raise PatchError when absent."""
    tokens = parse_pointer(pointer)
    if not tokens:
        return doc
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {pointer} does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, allow_end=False)]
    raise PatchError(f"path {pointer} does not exist")


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, allow_end=True), value)
    else:
        raise PatchError(f"cannot add to /{'/'.join(tokens)}")
    return doc


def _remove(doc: Any, tokens: list[str]) -> tuple[Any, Any]:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path /{'/'.join(tokens)} does not exist")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, allow_end=False))
    raise PatchError(f"path /{'/'.join(tokens)} does not exist")


def _equal(a: Any, b: Any) -> bool:
    # JSON equality: 1 == 1.0, but true != 1 (Python's bool is an int).
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _member_absent(doc: Any, tokens: list[str]) -> bool:
    """True when `tokens` names a missing member of an existing object."""
    if not tokens:
        return False
    parent = _parent(doc, tokens)
    return isinstance(parent, dict) and tokens[-1] not in parent


def apply_patch(doc: Any, operations: Any) -> Any:
    """Apply `operations` (a JSON Patch array) to a copy of `doc` and return the copy."""
    if not isinstance(operations, list):
        raise PatchError("a JSON Patch must be an array of operations")
    result = copy.deepcopy(doc)
    for number, op in enumerate(operations):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str) or not isinstance(op.get("path"), str):
            raise PatchError(f"operation {number} needs string `op` and `path`")
        kind, path = op["op"], op["path"]
        tokens = parse_pointer(path)
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {number} ({kind} {path}) needs a `value`")
        if kind == "add":
            result = _add(result, tokens, copy.deepcopy(op["value"]))
        elif kind == "remove":
            result, _ = _remove(result, tokens)
        elif kind == "replace":
            if _member_absent(result, tokens):
                result = _add(result, tokens, copy.deepcopy(op["value"]))
                continue
            get(result, path)  # an array index must exist
            result, _ = _remove(result, tokens) if tokens else (result, None)
            result = _add(result, tokens, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise PatchError(f"operation {number} ({kind}) needs a string `from`")
            if kind == "move" and (path + "/").startswith(source + "/") and path != source:
                raise PatchError(f"cannot move {source} into its own child {path}")
            value = copy.deepcopy(get(result, source))
            if kind == "move":
                result, _ = _remove(result, parse_pointer(source))
            result = _add(result, tokens, value)
        elif kind == "test":
            try:
                actual = get(result, path)
            except PatchError:
                actual = _MISSING
            if actual is _MISSING or not _equal(actual, op["value"]):
                raise PatchTestFailed(f"test operation failed: the value at {path} is not {op['value']!r}")
        else:
            raise PatchError(f"unknown patch operation {kind!r}")
    return result
