"""Write definitions as YAML people like to read and review: block mappings, flow lists of scalars,
comments where they help, and strings quoted only when YAML would otherwise misread them.

A small purpose-built emitter rather than `yaml.dump`: it controls field order and comments, and it
quotes every string that any YAML reader (1.1 or 1.2) could take for something else (`no`, `1e3`,
`2024-01-01`, `#x`, `a: b`). `metrics_sync.export.exporter` reads every file back before writing it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

# Plain (unquoted) only when made of safe characters, starting with a letter, `/` or `_`, and not a word
# some YAML version gives a type to.
_SAFE = re.compile(r"^[A-Za-z_/][A-Za-z0-9 _./()+?!'%@&*=-]*$")
_TYPED_WORDS = {"y", "yes", "n", "no", "true", "false", "on", "off", "null", "nan", "inf", "infinity"}


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    text = str(value)
    if (_SAFE.match(text) and text.strip() == text and text.lower() not in _TYPED_WORDS
            and not text.endswith((":", " -"))):
        return text
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid YAML double-quoted scalar


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (Mapping, list, tuple))


def _flow(value: Any) -> str:
    """A compact flow form for small values (lists of scalars, empty collections)."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return scalar(value)


def mapping(data: Mapping[str, Any], indent: int = 0) -> list[str]:
    """Block-style lines for a mapping."""
    pad = " " * indent
    lines: list[str] = []
    for key, value in data.items():
        if _is_scalar(value) or not value or (isinstance(value, (list, tuple)) and all(map(_is_scalar, value))):
            lines.append(f"{pad}{scalar(key)}: {_flow(value)}")
        elif isinstance(value, Mapping):
            lines.append(f"{pad}{scalar(key)}:")
            lines.extend(mapping(value, indent + 2))
        else:
            lines.append(f"{pad}{scalar(key)}:")
            lines.extend(sequence(value, indent + 2))
    return lines


def sequence(items: Sequence[Any], indent: int = 0) -> list[str]:
    """Block-style lines for a sequence; mappings become `- key: value` blocks."""
    pad = " " * indent
    lines: list[str] = []
    for item in items:
        if isinstance(item, Mapping) and item:
            inner = mapping(item, indent + 2)
            lines.append(f"{pad}- {inner[0].lstrip()}")
            lines.extend(inner[1:])
        else:
            lines.append(f"{pad}- {_flow(item)}")
    return lines
