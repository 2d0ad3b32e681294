"""LaunchDarkly's event filter (`EventFilter`, a metric's `filters` and a denominator's): a tree of nodes
`{type, attribute, op, values, contextKind, negate}`, where a `group` node's `values` are its member nodes.

The row of the field table (core/resources.py) reads these: the canonical form a tree is compared in, the lines
a changed tree is shown as, and its wire check. Pure.

Order: whether LaunchDarkly keeps the order of a group's members and of a node's values is undocumented
(docs/launchdarkly-contract.md, A34). Every operator takes its values as a set ("'in' becomes 'not in'"), and a
group's members combine by its `op`, so order carries no meaning: the canonical form sorts both, and a tree
compares equal however LaunchDarkly orders it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

NODE_TYPES = ("contextAttribute", "eventProperty", "group")
MAX_DECIMALS = 14  # "Numeric values must not exceed 14 decimal places" (EventFilter.values)
_SCALARS = (str, int, float, bool)
# Groups a tree read from LaunchDarkly may nest: its wire check walks it whole, within wire.py's MAX_DEPTH.
MAX_GROUPS = 12


def _order(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def canonical(node: Any) -> Any:
    """One node in the form it is compared in: the fields LaunchDarkly's `EventFilter` has, `negate` false when
    absent, members and values sorted. Anything that is not a node is kept as it is (validate reports it)."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {k: node[k] for k in ("type", "attribute", "op", "contextKind")
                           if node.get(k) not in (None, "")}
    out["negate"] = bool(node.get("negate"))
    values = node.get("values")
    if isinstance(values, list):
        members = [canonical(v) if node.get("type") == "group" else _number(v) for v in values]
        out["values"] = sorted(members, key=_order)
    elif values is not None:
        out["values"] = values
    return out


def normalize(value: Any, _so_far: Mapping[str, Any] | None = None) -> Any:
    """The field's canonical value: a tree, or None when absent (an empty mapping is no filter)."""
    return canonical(value) if value else None


def describe(node: Mapping[str, Any]) -> str:
    """One condition as people read it, e.g. `user.country in ["JP"]` or `event.plan not in ["free"]`."""
    op = str(node.get("op", "?"))
    if node.get("negate"):
        op = f"not {op}"
    if node.get("type") == "group":
        return f"group {op}"
    subject = node.get("contextKind") if node.get("type") == "contextAttribute" else "event"
    return f"{subject}.{node.get('attribute')} {op} {json.dumps(node.get('values', []), ensure_ascii=False)}"


def lines(node: Any, trail: str = "") -> Iterator[str]:
    """Every condition of a tree with the groups above it, e.g. `group and › user.country in ["JP"]`."""
    if not isinstance(node, dict):
        return
    here = f"{trail} › {describe(node)}" if trail else describe(node)
    if node.get("type") == "group" and isinstance(node.get("values"), list):
        members = [m for m in node["values"] if isinstance(m, dict)]
        if not members:
            yield here
        for member in members:
            yield from lines(member, here)
    else:
        yield here


def explain(old: Any, new: Any) -> tuple[str, ...]:
    """A changed tree as the conditions it gains and loses (plan's detail lines)."""
    before, after = set(lines(old)), set(lines(new))
    return (*(f"+ {line}" for line in sorted(after - before)), *(f"- {line}" for line in sorted(before - after)))


def problems(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str, str]]:
    """What is wrong with a tree beyond its JSON Schema (`path` inside the tree, message, hint): numbers with
    more decimal places than LaunchDarkly takes."""
    if not isinstance(node, dict) or not isinstance(node.get("values"), list):
        return
    for index, value in enumerate(node["values"]):
        if node.get("type") == "group":
            yield from problems(value, (*path, "values", index))
        elif isinstance(value, float) and decimals(value) > MAX_DECIMALS:
            yield ((*path, "values", index), f"`{value!r}` has more than {MAX_DECIMALS} decimal places",
                   f"LaunchDarkly takes numbers with at most {MAX_DECIMALS} decimal places; round it")


def decimals(value: float) -> int:
    exponent = Decimal(repr(value)).as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def wire(value: Any, depth: int = 0) -> bool | str:
    """Whether what LaunchDarkly sends as a filter is a tree of nodes (checked whole: its depth is known)."""
    if depth > MAX_GROUPS:
        return f"a filter is nested deeper than {MAX_GROUPS} groups"
    if not isinstance(value, dict):
        return False
    for name in ("type", "attribute", "op", "contextKind"):
        if value.get(name) is not None and not isinstance(value[name], str):
            return f"a filter's `{name}` is not text"
    if value.get("negate") is not None and not isinstance(value["negate"], bool):
        return "a filter's `negate` is not true or false"
    values = value.get("values")
    if values is None:
        return True
    if not isinstance(values, list):
        return "a filter's `values` is not a list"
    for member in values:
        verdict = wire(member, depth + 1) if value.get("type") == "group" else isinstance(member, _SCALARS)
        if verdict is not True:
            return verdict if isinstance(verdict, str) else "a filter's values are not text, numbers or flags"
    return True
