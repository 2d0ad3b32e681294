"""One escaper for every string that comes from outside (LaunchDarkly's answers, definition files, the
environment) before it reaches a terminal, a CI log or a pull-request comment.

Control characters (C0, DEL, C1 — which carry terminal escape sequences that could move the cursor, clear
the screen, retitle the window or print fake plan lines) and the invisible characters that reorder or hide
text (bidi overrides and isolates, zero-width marks, the byte-order mark) become visible escapes such as
`\\x1b` or `\\u202e`. Text passed through `shown` is always one line.

In a pull-request comment (Markdown), outside text goes in code spans (`markdown_code`: CommonMark's rule, a
backtick run longer than any inside, so nothing in it is read as markup and it cannot end early) or, as prose,
through `markdown_inline`, which also breaks @mentions and autolinks (see `_defuse`).
"""

from __future__ import annotations

import re

# Also the invisible "filler" letters (Hangul fillers, the Braille blank, the Mongolian vowel separator and the
# combining grapheme joiner), which render as nothing or as blank space.
_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u034f\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e"
                     "\u2060-\u2069\u2800\u3164\ufeff\uffa0]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: str) -> str:
    """`text` with every control and invisible formatting character made visible."""
    return _HIDDEN.sub(_escape, text)


# Blank characters other than the ASCII space (no-break, en, em, ideographic... spaces), and runs of 3 or more
# blanks: a name padded with 200 spaces would wrap on a terminal or in a review so that what follows the padding
# starts a line of its own, looking like a plan line of its own (`+ create ...`).
_BLANKS = re.compile("[ \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]{3,}|[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")


def _blanks(match: re.Match[str]) -> str:
    run = match.group()
    if len(run) == 1:
        return f"\\u{ord(run):04x}"
    return f" [{len(run)} blanks] "


def compact(text: str) -> str:
    """An outside value (a name, a description) `shown`, with unusual blank characters escaped and runs of
    blanks counted (`name [200 blanks] tail`), so padding cannot push text onto a line that seems its own.
    Only for values: our own alignment padding is never passed through it."""
    return _BLANKS.sub(_blanks, shown(text))


def lines_shown(text: str) -> str:
    """Each line of `text` through `shown` (line breaks between lines are kept)."""
    return "\n".join(shown(line) for line in text.split("\n"))


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+!|~&])")


# GitHub turns `@name` into a mention (a notification to that user or team) and cmark-gfm's autolink extension
# turns `www.x`, `http(s)://x`, `ftp://x`, `mailto:`/`xmpp:` and `a@b.c` into links, in prose but never inside a
# code span. Both work on the rendered text, after entities and backslash escapes are decoded, so `&#64;` or `\\@`
# would not stop them; a WORD JOINER (U+2060: invisible, no width, no line break) after the `@`, inside `://`
# and after `www` and `:` of the mail schemes does, since it stays in the text and breaks their patterns.
_JOIN = "\u2060"
_AUTOLINKS = re.compile(r"@|(?<=:)(?=//)|(?<=www)(?=\.)|(?<=mailto:)|(?<=xmpp:)", re.I)


def _defuse(text: str) -> str:
    return _AUTOLINKS.sub(lambda m: m.group() + _JOIN, text)


def markdown_inline(text: str) -> str:
    """Outside text for Markdown prose (not inside a code block): shown, every character Markdown or GitHub's
    HTML could read as markup escaped, so it cannot add links, images, headings or close a block, and @mentions
    and bare URLs broken so they stay plain text."""
    return _defuse(_MARKDOWN.sub(r"\\\1", compact(text)))


def markdown_code(text: str, *, table: bool = False) -> str:
    """Outside text as an inline code span (CommonMark: no escapes, no links, no mentions inside one). Markdown
    reads no escapes inside a code span (`markdown_inline` there would show its backslashes), so: shown, and
    delimited by a backtick run longer than any inside, padded with a space where the text starts or ends with a
    backtick or with spaces on both ends (which CommonMark would strip), so it cannot end early or lose a
    character. In a table cell (`table`), `|` is escaped: GitHub splits cells on it even inside code, and reads
    `\\|` there as `|`."""
    body = compact(text)
    if table:
        body = body.replace("|", "\\|")
    ticks = "`" * (max((len(run) for run in re.findall("`+", body)), default=0) + 1)
    stripped = body.startswith(" ") and body.endswith(" ") and body.strip(" ")
    pad = " " if body.startswith("`") or body.endswith("`") or stripped else ""
    return f"{ticks}{pad}{body}{pad}{ticks}"


def markdown_text(text: str, *, table: bool = False) -> str:
    """One of our messages (a finding's text), whose outside values are quoted as code spans (`core.findings.
    code`), in Markdown: each code span, found by CommonMark's rule (a run of N backticks up to the next run of
    exactly N), through `markdown_code`; the prose around them through `markdown_inline`."""
    out: list[str] = []
    at = 0  # the prose not yet written starts here
    search = 0
    while (opening := _TICKS.search(text, search)) is not None:
        width = len(opening.group())
        closing = re.compile(f"(?<!`)`{{{width}}}(?!`)").search(text, opening.end())
        if closing is None:
            search = opening.end()  # a lone run of backticks is text (escaped with the prose)
            continue
        body = text[opening.end():closing.start()]
        if body.startswith(" ") and body.endswith(" ") and body.strip(" "):
            body = body[1:-1]
        out.append(markdown_inline(text[at:opening.start()]))
        out.append(markdown_code(body, table=table))
        at = search = closing.end()
    out.append(markdown_inline(text[at:]))
    return "".join(out)


_TICKS = re.compile("`+")


def code_fence(body: str) -> str:
    """A backtick fence longer than any run of backticks in `body`, so the body cannot close the block."""
    longest = max((len(run) for run in re.findall("`+", body)), default=0)
    return "`" * max(3, longest + 1)
