"""Terminal colours, applied only when the caller says the output is a colour terminal."""

from __future__ import annotations

_COLOR = {"create": "32", "update": "33", "archive": "31", "warning": "33", "error": "31", "bold": "1"}


class Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, style: str, text: str) -> str:
        return f"\x1b[{_COLOR[style]}m{text}\x1b[0m" if self.color else text
