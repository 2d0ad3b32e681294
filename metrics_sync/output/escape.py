"""One escaper for every string that comes from outside (LaunchDarkly's answers, definition files, the
environment) before it reaches a terminal, a CI log or a pull-request comment.

Control characters (C0, DEL, C1 — which carry terminal escape sequences that could move the cursor, clear
the screen, retitle the window or print fake plan lines) and the invisible characters that reorder or hide
text (bidi overrides and isolates, zero-width marks, the byte-order mark) become visible escapes such as
`\\x1b` or `\\u202e`. Text passed through `shown` is always one line.
"""

from __future__ import annotations

import re

_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: str) -> str:
    """`text` with every control and invisible formatting character made visible."""
    return _HIDDEN.sub(_escape, text)


def lines_shown(text: str) -> str:
    """Each line of `text` through `shown` (line breaks between lines are kept)."""
    return "\n".join(shown(line) for line in text.split("\n"))


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+!|~&])")


def markdown_inline(text: str) -> str:
    """Outside text for Markdown prose (not inside a code block): shown, and every character Markdown or
    GitHub's HTML could read as markup escaped, so it cannot add links, images, headings or close a block."""
    return _MARKDOWN.sub(r"\\\1", shown(text))


def markdown_code(text: str) -> str:
    """Outside text as an inline code span, in prose or a table cell. Markdown reads no escapes inside a code span
    (`markdown_inline` there would show its backslashes), so: shown, `|` escaped (GitHub splits table cells on it
    even inside code), and delimited by a backtick run longer than any inside, so it cannot end early."""
    body = shown(text).replace("|", "\\|")
    ticks = "`" * (max((len(run) for run in re.findall("`+", body)), default=0) + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{ticks}{pad}{body}{pad}{ticks}"


def code_fence(body: str) -> str:
    """A backtick fence longer than any run of backticks in `body`, so the body cannot close the block."""
    longest = max((len(run) for run in re.findall("`+", body)), default=0)
    return "`" * max(3, longest + 1)
