"""The `codeRefs:` settings of metrics-sync.yaml: what `refs` (and `validate`/`plan --code`) scan, and how.

Kept apart from the scanner so that reading the config costs no more imports than it did.

The team's `patterns` come from the config, which a pull request can change and which `validate` and `plan`
run before anyone reviews it: they are compiled with RE2 (google-re2), whose matching takes time linear in the
text, so no pattern can make a scan backtrack for hours (`(?P<key>(a+)+)$` on `aaa…!` takes microseconds).
RE2 has no backreferences and no lookaround; a pattern that uses them is refused, located at its config line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import re2

DEFAULT_MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class Settings:
    """What to scan and how: the `codeRefs:` section of metrics-sync.yaml (config.py reads it)."""

    paths: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()  # globs on paths relative to the scanned folder
    aliases: tuple[str, ...] = ()  # the team's functions that take the event key first, e.g. `trackConversion`
    patterns: tuple[str, ...] = ()  # regular expressions with a group `key` (or one group): the event key
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    paths_source: str | None = None  # where the config sets `codeRefs.paths` (file:line:col), for messages


MAX_PATTERN_MEMORY = 8 << 20  # RE2's budget for one compiled pattern: a bigger automaton is refused


@dataclass(frozen=True)
class Pattern:
    """A team's pattern compiled with RE2 (on bytes, `^`/`$` at line ends), and the number of the group that
    captures the event key."""

    regex: Any  # re2's compiled pattern (google-re2 ships no type information)
    group: int


def compile_pattern(pattern: str) -> Pattern:
    """A team's pattern: it must name the key with a group `key`, or have exactly one group."""
    try:
        re.compile(pattern)  # only compiled, never run: for Python's clearer message on a syntax error
    except re.error as exc:
        raise ValueError(f"is not a regular expression ({exc})") from None
    options = re2.Options()
    options.log_errors = False  # RE2 would print its own message on stderr; ours says where the pattern is
    options.max_mem = MAX_PATTERN_MEMORY
    try:
        compiled = re2.compile(b"(?m)" + pattern.encode("utf-8"), options)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"uses what the linear-time engine (RE2) does not have, such as backreferences or "
                         f"lookaround ({reason.replace('(?m)', '', 1)})") from None
    named = compiled.groupindex.get(b"key")
    if named is None and compiled.groups != 1:
        raise ValueError("must capture the event key: a group named `key`, e.g. (?P<key>[\\w.-]+), or exactly one "
                         "group")
    return Pattern(compiled, named if named is not None else 1)
