"""What LaunchDarkly sends is outside input: parse it strictly and check its shape before anything uses it.

* JSON: no NaN or Infinity (not JSON), each key once per object, nesting at most `MAX_DEPTH` deep (a deeply
  nested answer would otherwise exhaust recursion in any code that walks it). Read by msgspec's compiled
  decoder, which refuses NaN, Infinity, numbers a double cannot hold, byte-order marks and bad UTF-8 itself
  but keeps the last of a key given twice: a count of the colons (below) tells whether any pair was dropped.
  Whatever the compiled reader refuses or cannot vouch for is read again by the strict reader (`strict_decode`,
  the standard library's parser refusing duplicates pair by pair), whose verdict and message stand;
* a representation of a resource: a mapping whose `key` follows LaunchDarkly's key pattern (so a key can never
  be `.` or `..`, which would change the meaning of a URL path) and whose fields have the types the resource's
  tables give them (core/resources.py). An item of the wrong shape is an error naming it, never a skipped
  item: skipping one would plan a create for an item that exists.
Pure functions; the client turns a problem into an `ApiError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgspec

from metrics_sync.core.fields import KEY, Resource

MAX_DEPTH = 32


class BadJson(ValueError):
    pass


def _no_constants(name: str) -> Any:
    raise BadJson(f"it holds {name}, which is not JSON")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different: with a key given twice, the last would silently win (a second
    `tags` could turn a managed metric unmanaged), so the answer is refused. (About 0.1 ms more per page of 50.)"""
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise BadJson(f"it gives the key `{name[:60]}` twice in one object")
            seen.add(name)
    return data


_FAST = msgspec.json.Decoder()
_ENCODE = msgspec.json.Encoder().encode
_SORTED = msgspec.json.Encoder(order="sorted").encode


def sorted_json(value: Any) -> bytes:
    """`value` as compact JSON (UTF-8), every object's keys sorted: the same text for the same value whatever its
    keys' order (what plan hashes of each definition, planning/desired.py)."""
    return _SORTED(value)
# Both readers stop at the interpreter's recursion limit, counted from where they run: the compiled one is
# called this many calls deeper than the strict one (which `decode` reaches through its own calls), so that it
# never takes a body nested more deeply than the strict reader would, whatever the caller's stack.
_HEADROOM = 8


def _fast_decode(content: bytes, levels: int = _HEADROOM) -> Any:
    return _fast_decode(content, levels - 1) if levels else _FAST.decode(content)


def decode(content: bytes, *, walk: bool = True) -> Any:
    """Parse an answer's body: standard JSON only, each key once per object, nested at most MAX_DEPTH deep. With
    `walk=False` the depth is left to the caller (a page of the list checks each item it keeps: walking whole
    pages cost more than parsing them); the parser's own recursion guard still stops an answer nested thousands
    deep.

    Each key once: outside strings, a colon only ever follows an object's key, so the body has one colon per
    pair plus those inside its strings (written as `:` or escaped as `\\u003a`); the value decoded, encoded
    again, has one per pair kept plus the same string colons. The counts are equal exactly when no pair was
    dropped, i.e. no key was given twice. (A counted `\\u003a` that is not an escape, after `\\`, only
    sends the body to the strict reader.)"""
    try:
        data = _fast_decode(content)
    except (msgspec.DecodeError, RecursionError):
        return strict_decode(content, walk=walk)
    colons = content.count(b":")
    if content.find(b"\\") >= 0:
        colons += content.count(b"\\u003a") + content.count(b"\\u003A")
    if colons != _ENCODE(data).count(b":"):
        return strict_decode(content, walk=walk)
    if walk and depth(data) > MAX_DEPTH:
        raise BadJson(f"it is nested deeper than {MAX_DEPTH} levels")
    return data


def strict_decode(content: bytes, *, walk: bool = True) -> Any:
    """`decode` by the standard library's parser, refusing a duplicate key as each object is built: slower, but
    its verdict on any body is the reference (the compiled reader defers to it, and tests compare the two)."""
    try:
        data = json.loads(content, parse_constant=_no_constants, object_pairs_hook=_unique)
    except RecursionError:
        raise BadJson(f"it is nested deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError:
        raise BadJson("it is not UTF-8 text") from None
    except BadJson:
        raise
    except ValueError:
        raise BadJson("it is not valid JSON") from None
    if walk and depth(data) > MAX_DEPTH:
        raise BadJson(f"it is nested deeper than {MAX_DEPTH} levels")
    return data


def depth(value: Any) -> int:
    """How deeply `value` nests lists and mappings (iterative: any depth is measured safely; scalars are never
    pushed, so the walk costs one step per list or mapping)."""
    if not isinstance(value, (dict, list)):
        return 0
    deepest, stack = 1, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if level > deepest:
            deepest = level
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def kept_depth(item: Mapping[str, Any], shaped: frozenset[str] = frozenset()) -> int:
    """How deeply the fields of `item` nest, leaving out those whose shape is already checked."""
    deepest = 0
    for name, value in item.items():
        if isinstance(value, (dict, list)) and name not in shaped:
            deepest = max(deepest, depth(value))
    return deepest


def problem(resource: Resource, item: Any) -> str | None:
    """Why `item` is not a representation of `resource` metrics-sync can use (None when it is): its key follows
    LaunchDarkly's key pattern, and each field the resource's tables type (`Field.wire`, `ServerField.wire`) has
    that type. One pass over the fields an item has: this check runs on every item of every page."""
    if not isinstance(item, dict):
        return "an item of the list is not an object"
    key = item.get("key")
    if not isinstance(key, str) or not KEY.fullmatch(key):
        return "its key does not follow LaunchDarkly's key pattern"
    rules = resource.wire_rules
    for name, value in item.items():
        rule = rules.get(name)
        if rule is not None and value is not None and type(value) is not rule.plain:
            verdict = rule.check(value)
            if verdict is not True:
                return verdict if isinstance(verdict, str) else f"`{name}` {rule.says}"
    return None


class Checked(Mapping[str, Any]):
    """An item's stand-in made by the caller from an item it checked (`problem`), holding only checked values:
    what a pager's `keep` function may return in place of a dict (plan's marker of an item in sync: its key and
    version). The pager takes it as it is; a dict a `keep` returns is checked there."""

    __slots__ = ()


def named(item: Any) -> str:
    """` `key`` when the item has a usable key, else nothing (a malformed key is not repeated)."""
    key = item.get("key") if isinstance(item, dict) else None
    return f" `{key}`" if isinstance(key, str) and KEY.fullmatch(key) else ""
