"""The `codeRefs:` settings of metrics-sync.yaml: what `refs` (and `validate`/`plan --code`) scan, and how.

Kept apart from the scanner so that reading the config costs no more imports than it did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


def compile_pattern(pattern: str) -> re.Pattern[bytes]:
    """A team's pattern, as bytes: it must name the key with a group `key`, or have exactly one group."""
    try:
        compiled = re.compile(pattern.encode("utf-8"), re.M)
    except re.error as exc:
        raise ValueError(f"is not a regular expression ({exc})") from None
    if "key" not in compiled.groupindex and compiled.groups != 1:
        raise ValueError("must capture the event key: a group named `key`, e.g. (?P<key>[\\w.-]+), or exactly one "
                         "group")
    return compiled
