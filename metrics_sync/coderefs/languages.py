"""How each language writes a LaunchDarkly SDK track call, its comments, its strings and its constants.

Everything is a bytes regular expression: files are scanned as bytes (no decoding of files that hold no
call), and one lexer pass per file consumes comments and string literals whole, so a call that only appears
inside a comment or a string is never matched. The SDK call shapes come from each SDK's public API:

- JavaScript/TypeScript (browser, Node, React, Vue): `client.track(key, ...)`
- Python: `client.track(key, context, ...)`, also `event_name=key`
- Go: `client.TrackEvent(key, ...)`, `TrackData`, `TrackMetric`
- Java/Kotlin (server and Android): `track`, `trackData`, `trackMetric`, `trackJson`
- C#/.NET: `client.Track(key, ...)`
- Ruby: `client.track(key, ...)` and `client.track key, ...`
- Swift: `client.track(key: key, ...)`; Objective-C: `[client trackWithKey:key ...]`
- PHP: `$client->track(key, ...)`

The event key counts when it is a string literal, or a name (`EVENTS.CHECKOUT`, `self::CHECKOUT`,
`$event`) that the same file assigns a single string literal to. Any other key is reported as dynamic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# String literals, as bytes patterns.
DQ = rb'"(?:[^"\\\n]|\\.)*"'
SQ = rb"'(?:[^'\\\n]|\\.)*'"
BACKTICK = rb"`(?:[^`\\]|\\.)*`"
TRIPLE_DQ = rb'"""(?:[^\\]|\\.)*?"""'
TRIPLE_SQ = rb"'''(?:[^\\]|\\.)*?'''"
OBJC_STRING = rb'@' + DQ
VERBATIM = rb'@"(?:[^"]|"")*"'
PY_PREFIX = rb"(?:[rRuUfFbB]{1,2})?"

SLASH_COMMENTS = rb"//[^\n]*|/\*.*?(?:\*/|\Z)"
HASH_COMMENT = rb"#[^\n]*"
RUBY_BLOCK_COMMENT = rb"^=begin\b.*?(?:^=end\b|\Z)"

# A name the key may be passed through: `CHECKOUT`, `Events.CHECKOUT`, `self::CHECKOUT`, `$event`.
NAME_PATH = rb"(?:\$?[A-Za-z_][\w$]*\s*(?:\?\.|\.|::|->)\s*)*\$?[A-Za-z_][\w$]*"
# `event_name=` (Python), `eventName =` (Kotlin), `key:` (Swift): a label before the key.
LABEL = rb"(?:[A-Za-z_]\w*\s*(?::(?!:)|=(?!=))\s*)?"

# Receivers of `.track(` that belong to other analytics libraries, whose events are not LaunchDarkly's.
OTHER_ANALYTICS = frozenset({b"analytics", b"mixpanel", b"amplitude", b"posthog", b"heap", b"rudderanalytics",
                             b"snowplow", b"appinsights", b"gtag", b"segment", b"ahoy"})
RECEIVER = re.compile(rb"([A-Za-z_$][\w$]*)\s*\??\s*$")


@dataclass(frozen=True)
class Language:
    name: str
    extensions: tuple[str, ...]
    comments: bytes  # alternation of the comment forms
    strings: bytes  # alternation of every string literal form (longest forms first)
    keys: bytes  # alternation of the literal forms an event key may take
    calls: tuple[bytes, ...]  # what starts a track call, up to where the key begins
    definitions: tuple[bytes, ...] = ()  # extra constant forms, with groups `name` and `value`
    interpolation: bytes | None = None  # in a literal, what makes it a template (a dynamic key)...
    template_quote: bytes = b'"'  # ...in literals that open with this quote
    receiver_checked: bool = True  # whether `.track(` on a known other analytics library is left out
    key_end: bytes = rb"\s*(?=[,)\n]|\Z)"  # what follows a key that is the whole first argument
    flags: int = re.S


# `NAME = "literal"` (also `:=`, a type annotation, `const`/`final`/`let` before it): most languages'
# constants and variables. The name must start an identifier; what follows the literal must end it.
def _assignment(keys: bytes) -> bytes:
    return (rb"(?<![\w$.>:])(?P<name>\$?[A-Za-z_][\w$]*)[ \t]*(?::[ \t]*[\w.<>?\[\], ]{1,60}?[ \t]*)?(?::=|=(?![=>]))"
            rb"[ \t]*(?P<value>" + keys + rb")(?:\.freeze)?[ \t]*(?=[;,)}\r\n]|//|#|\Z)")


JS_KEYS = DQ + rb"|" + SQ + rb"|" + BACKTICK
LANGUAGES: tuple[Language, ...] = (
    Language("javascript", (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts", ".vue", ".svelte"),
             SLASH_COMMENTS, BACKTICK + rb"|" + DQ + rb"|" + SQ, JS_KEYS,
             (rb"\??\.\s*track\s*\(",),
             # object properties: `const EVENTS = { checkout: 'checkout-completed' }` read as EVENTS.checkout
             (rb"(?<![\w$.])(?P<name>[A-Za-z_$][\w$]*)\s*:\s*(?P<value>" + JS_KEYS + rb")\s*(?=[,}\n])",),
             interpolation=rb"${", template_quote=b"`"),
    Language("python", (".py", ".pyi"), HASH_COMMENT,
             PY_PREFIX + TRIPLE_DQ + rb"|" + PY_PREFIX + TRIPLE_SQ + rb"|" + PY_PREFIX + DQ + rb"|" + PY_PREFIX + SQ,
             rb"[rRuU]?(?:" + DQ + rb"|" + SQ + rb")",
             (rb"\.\s*track\s*\(",)),
    Language("go", (".go",), SLASH_COMMENTS, BACKTICK + rb"|" + DQ + rb"|" + SQ, DQ + rb"|" + BACKTICK,
             (rb"\.\s*Track(?:Event|Data|Metric)\s*\(",), receiver_checked=False),
    Language("java", (".java", ".kt", ".kts"), SLASH_COMMENTS, TRIPLE_DQ + rb"|" + DQ + rb"|" + SQ, DQ,
             (rb"\.\s*track(?:Data|Metric|Json)?\s*\(",), interpolation=b"$"),
    Language("csharp", (".cs",), SLASH_COMMENTS, VERBATIM + rb"|" + DQ + rb"|" + SQ, VERBATIM + rb"|" + DQ,
             (rb"\.\s*Track\s*\(",), receiver_checked=False),
    Language("ruby", (".rb",), RUBY_BLOCK_COMMENT + rb"|" + HASH_COMMENT, DQ + rb"|" + SQ, DQ + rb"|" + SQ,
             (rb"\.\s*track(?:\s*\(|[ \t]+(?=[\"'A-Za-z_:]))",), interpolation=b"#{", flags=re.S | re.M),
    Language("swift", (".swift",), SLASH_COMMENTS, TRIPLE_DQ + rb"|" + DQ, DQ,
             (rb"\.\s*track\s*\(\s*(?=key\s*:)",), interpolation=b"\\(", receiver_checked=False),
    Language("objective-c", (".m", ".mm"), SLASH_COMMENTS, OBJC_STRING + rb"|" + DQ + rb"|" + SQ,
             OBJC_STRING, (rb"\btrackWithKey\s*:\s*",),
             (rb"#define[ \t]+(?P<name>[A-Za-z_]\w*)[ \t]+(?P<value>" + OBJC_STRING + rb")",),
             receiver_checked=False, key_end=rb"(?=\s|\])"),
    Language("php", (".php",), SLASH_COMMENTS + rb"|" + HASH_COMMENT, DQ + rb"|" + SQ, DQ + rb"|" + SQ,
             (rb"->\s*track\s*\(",),
             (rb"\bdefine\s*\(\s*['\"](?P<name>[A-Za-z_]\w*)['\"]\s*,\s*(?P<value>" + DQ + rb"|" + SQ + rb")\s*\)",),
             interpolation=b"$"),
)
# Files of other types are read only for the team's own patterns and aliases, with no comment syntax known.
GENERIC = Language("other", (), rb"(?!)", DQ + rb"|" + SQ, DQ + rb"|" + SQ, (), receiver_checked=False)
BY_EXTENSION = {ext: lang for lang in LANGUAGES for ext in lang.extensions}
# Every SDK call shape holds this (`track`, `Track`, `trackWithKey`): a file without it is not lexed at all.
TRIGGERS = (b"rack",)


@dataclass(frozen=True)
class Lexer:
    """One language's compiled scanner: comments, calls and strings, in that order of preference at each
    position (so a call inside a comment or a string is consumed as part of it); and its constants' forms,
    searched only in a file whose call passes a name."""

    language: Language
    pattern: re.Pattern[bytes]
    key: re.Pattern[bytes]  # at the key's position: a literal or a name, then the end of the argument
    definition: re.Pattern[bytes]  # the forms of a constant: `NAME = "literal"`, `#define NAME @"literal"`, ...
    definition_forms: int

    @classmethod
    def build(cls, language: Language, aliases: Sequence[str] = ()) -> Lexer:
        calls = list(language.calls)
        calls += [rb"(?<![\w$])" + re.escape(alias.encode()) + rb"\s*\(" for alias in aliases]
        call = b"|".join(calls) if calls else rb"(?!)"
        pattern = (rb"(?P<comment>" + language.comments + rb")|(?P<call>" + call + rb")|(?P<string>"
                   + language.strings + rb")")
        # Group names must be unique: number the definition forms' groups.
        forms = [_assignment(language.keys), *language.definitions]
        numbered = [d.replace(b"?P<name>", b"?P<name%d>" % i).replace(b"?P<value>", b"?P<value%d>" % i)
                    for i, d in enumerate(forms)]
        key = (rb"\s*" + LABEL + rb"(?:(?P<literal>" + language.keys + rb")|(?P<ref>" + NAME_PATH + rb"))"
               + language.key_end)
        return cls(language, re.compile(pattern, language.flags), re.compile(key),
                   re.compile(b"|".join(numbered), language.flags), len(forms))

    def definitions(self, data: bytes, outside: Callable[[int], bool]) -> dict[bytes, set[bytes]]:
        """Each name the file assigns a string literal to (outside comments and strings), with the literals."""
        names: dict[bytes, set[bytes]] = {}
        for match in self.definition.finditer(data):
            if not outside(match.start()):
                continue
            for i in range(self.definition_forms):
                name = match.group(f"name{i}")
                if name is not None:
                    names.setdefault(name, set()).add(match.group(f"value{i}"))
                    break
        return names


_ESCAPE = re.compile(rb"\\(?:u\{?([0-9A-Fa-f]{4,6})\}?|x([0-9A-Fa-f]{2})|(.))", re.S)
_SIMPLE = {b"n": b"\n", b"t": b"\t", b"r": b"\r", b"0": b"\0"}


def _unescape(match: re.Match[bytes]) -> bytes:
    """The common escapes of the C family (`\\n`, `\\x1b`, `\\u00e9`); any other `\\c` is `c`."""
    code, byte, char = match.groups()
    if code is not None:
        return chr(min(int(code, 16), 0x10FFFF)).encode("utf-8", errors="surrogatepass")
    if byte is not None:
        return chr(int(byte, 16)).encode("utf-8")
    return _SIMPLE.get(char, char)


def literal_text(language: Language, literal: bytes) -> str | None:
    """The text of a string literal, or None when it is a template (its value is only known at run time)."""
    body = literal.lstrip(b"rRuUfFbB@")
    quote = body[:1]
    inner = body[1:-1]
    if literal[:1] == b"@" and language.name == "csharp":
        inner = inner.replace(b'""', b'"')
    else:
        if language.interpolation and quote == language.template_quote and language.interpolation in inner:
            return None
        prefix = literal[:len(literal) - len(body)].lower()
        if b"f" in prefix and b"{" in inner:  # a Python f-string (f"…", rf"…", Fr"…")
            return None
        if quote != b"`" or language.name == "javascript":  # Go's raw strings have no escapes
            inner = _ESCAPE.sub(_unescape, inner)
    return inner.decode("utf-8", errors="replace")
