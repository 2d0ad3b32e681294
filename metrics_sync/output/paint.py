"""Terminal colours, applied only when the caller says the output is a colour terminal.

Every piece of text goes through the escaper first (escape.py): colour codes are the only control
characters metrics-sync itself writes.
"""

from __future__ import annotations

from metrics_sync.output.escape import shown

_COLOR = {"create": "32", "update": "33", "archive": "31", "warning": "33", "error": "31", "bold": "1"}


class Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, style: str | None, text: str) -> str:
        safe = shown(text)
        return f"\x1b[{_COLOR[style]}m{safe}\x1b[0m" if self.color and style else safe
