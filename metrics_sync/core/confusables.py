"""Look-alike text (Unicode TR39 style): keys, event keys and names that read as other text.

An `eventKey` of `оrder-placed` with a Cyrillic `о` looks exactly like `order-placed` in a review and in a plan,
yet it is another event: the metric gets no data. A word is suspicious when it mixes scripts (Latin with Cyrillic,
Greek, Armenian... beyond the mixtures Japanese, Chinese and Korean text uses), when it is made only of letters
that look like Latin ones (a "whole-script confusable" such as Cyrillic `сое`), or when it holds a compatibility
form of an ASCII character (fullwidth `ｏ`, mathematical `𝐨`). ASCII text, nearly every key, returns at once.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# The letters of other scripts most often taken for Latin ones (a subset of TR39's confusables.txt): what each
# looks like.
_LOOKS_LIKE = {
    # Cyrillic
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ј": "j", "ԁ": "d",
    "һ": "h", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ѵ": "v", "ү": "y", "ɡ": "g",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "Х": "X",
    "У": "Y", "Ѕ": "S", "І": "I", "Ј": "J", "Ԛ": "Q", "Ԝ": "W", "Ү": "Y", "Ӏ": "I",
    # Greek
    "ο": "o", "α": "a", "ν": "v", "ρ": "p", "ι": "i", "κ": "k", "υ": "u", "χ": "x", "ϲ": "c", "ϳ": "j",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P",
    "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C",
    # Armenian, and Latin letters that pass for others
    "օ": "o", "ս": "u", "ց": "g", "հ": "h", "ո": "n", "ı": "i", "ɑ": "a", "ʏ": "y", "ᴠ": "v",
}
# Scripts that legitimately share a word (TR39's "highly restrictive" level): Japanese, Chinese, Korean with Latin.
_TOGETHER = (frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}), frozenset({"LATIN", "HAN", "BOPOMOFO"}),
             frozenset({"LATIN", "HAN", "HANGUL"}))
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class Lookalike:
    reason: str  # e.g. "it mixes Latin and Cyrillic letters"
    characters: tuple[str, ...]  # each suspicious character: `U+043E CYRILLIC SMALL LETTER O (looks like "o")`

    def hint(self) -> str:
        return f"{'; '.join(self.characters)}: retype it in ASCII if that is what is meant"


# Letters shared by scripts (the Japanese prolonged sound mark, iteration marks, modifier letters): no script.
_COMMON = frozenset({"KATAKANA-HIRAGANA", "IDEOGRAPHIC", "MODIFIER", "VERTICAL"})


def _script(char: str) -> str:
    """The script of a letter, from its Unicode name (Python has no Script property): `CYRILLIC SMALL LETTER O`
    is Cyrillic; "" for letters every script uses."""
    name = unicodedata.name(char, "")
    if name.startswith("CJK"):
        return "HAN"
    script = name.split(" ", 1)[0] if name else "UNKNOWN"
    return "" if script in _COMMON else script


def _describe(char: str) -> str:
    name = unicodedata.name(char, "UNNAMED")
    looks = _LOOKS_LIKE.get(char) or unicodedata.normalize("NFKC", char)
    like = f' (looks like "{looks}")' if looks.isascii() and looks != char else ""
    return f"U+{ord(char):04X} {name}{like}"


def lookalike(text: str, *, identifier: bool = True) -> Lookalike | None:
    """Why `text` may read as other text, or None. A name (not an `identifier`) may be a word of Greek or Cyrillic
    whose letters all look Latin (the Greek article `ο`): only mixed words and compatibility forms count there."""
    if text.isascii():
        return None
    for word in _WORD.findall(text):
        if word.isascii():
            continue
        compat = [c for c in word if not c.isascii() and unicodedata.normalize("NFKC", c).isascii()]
        if compat:
            return Lookalike("it holds compatibility forms of ASCII letters",
                             tuple(map(_describe, dict.fromkeys(compat))))
        scripts = {_script(c) for c in word} - {""}
        if len(scripts) > 1 and not any(scripts <= allowed for allowed in _TOGETHER):
            names = " and ".join(sorted(s.title() for s in scripts))
            odd = [c for c in word if _script(c) != "LATIN"] if "LATIN" in scripts else list(word)
            return Lookalike(f"it mixes {names} letters", tuple(map(_describe, dict.fromkeys(odd))))
        if identifier and "LATIN" not in scripts and all(c in _LOOKS_LIKE for c in word):
            return Lookalike("its letters all look like Latin ones", tuple(map(_describe, dict.fromkeys(word))))
    return None


# The text fields a definition's keys and names are in, and whether each is an identifier.
CHECKED_FIELDS = (("key", True), ("eventKey", True), ("name", False))


def message(field: str, value: str, found: Lookalike) -> str:
    return f"`{field}` {value!a} may be mistaken for other text: {found.reason}"
