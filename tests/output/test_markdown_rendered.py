"""The PR comment as GitHub renders it: cmark-gfm (GitHub's own renderer, with its table and autolink extensions)
turns the Markdown into HTML, and the tests read the HTML, not the Markdown text.

GitHub then turns `@name` in text into a mention, except inside `code`, `pre` and `a` elements (its mention
filter skips those); `_mentions` applies the same rule to the rendered HTML.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import cmarkgfm
from cmarkgfm.cmark import Options

from metrics_sync.core.findings import Finding, code
from metrics_sync.core.model import Change, FieldChange, Plan, ProjectPlan, UnsentEvent, Use
from metrics_sync.output.escape import compact, markdown_code, markdown_inline, markdown_text
from metrics_sync.output.plan import markdown as plan_markdown
from metrics_sync.output.plan import text as plan_text

HOSTILE_EVENT = "x` @octocat https://evil.example/track.png `y"
HOSTILE_FILE = "metrics/@octocat www.evil.example.yaml:3:5"
MENTION = re.compile(r"(?:^|\W)@[a-z0-9]", re.I)  # GitHub's mention pattern, in text outside code/pre/a


def _html(markdown: str) -> str:
    return cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)


class _Reader(HTMLParser):
    """The text inside code elements, the text outside code/pre/a, and the tags seen."""

    def __init__(self) -> None:
        super().__init__()
        self.codes: list[str] = []
        self.prose: list[str] = []
        self.tags: list[str] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._open.append(tag)
        if tag == "code":
            self.codes.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            del self._open[len(self._open) - 1 - self._open[::-1].index(tag)]

    def handle_data(self, data: str) -> None:
        if "code" in self._open:
            self.codes[-1] += data
        elif not {"pre", "a"} & set(self._open):
            self.prose.append(data)


def _read(markdown: str) -> _Reader:
    reader = _Reader()
    reader.feed(_html(markdown))
    return reader


def _mentions(reader: _Reader) -> list[str]:
    return [text for text in reader.prose if MENTION.search(text)]


def _hostile_plan() -> Plan:
    use = Use("experiment", "spring_sale", "", "production @octocat www.evil.example", True)
    change = Change("update", "order_placed", "custom numeric", {}, {}, [FieldChange("eventKey", "a", "b")], [],
                    remote_version=1, used_by=(use,),
                    findings=(Finding("changes-running-results", "alert", "changes results of `order_placed`"),
                              Finding("changes-results", "warning", f"the event {code(HOSTILE_EVENT)} of "
                                                                    "`order_placed` changes", source=HOSTILE_FILE)))
    refusal = Finding("unavailable-unit", "refusal", "LaunchDarkly said: see www.evil.example or ask @octocat",
                      "metric `order_placed`")
    project = ProjectPlan("shop", "sha256:x", [change], unchanged=0, unmanaged=0, would_archive=[], blocked=[],
                          findings=[refusal], unsent=[UnsentEvent("add_to_cart", HOSTILE_EVENT, HOSTILE_FILE, (use,))])
    return Plan([project], prune=False, ownership_tag="t", base_url_host="h", tool_version="0")


def test_hostile_keys_and_file_names_render_as_no_link_no_mention_and_exact_code() -> None:
    reader = _read(plan_markdown(_hostile_plan()))
    assert "a" not in reader.tags and "img" not in reader.tags
    assert _mentions(reader) == []
    assert HOSTILE_EVENT in reader.codes  # the event key, exactly, in one code span (table and warning line)
    assert reader.codes.count(HOSTILE_EVENT) == 2
    assert HOSTILE_FILE in reader.codes  # the "Defined at" column
    assert "order_placed" in reader.codes
    assert not any("\\" in text for text in reader.codes)  # no backslash escapes shown inside code (order\_placed)
    prose = "".join(reader.prose)
    assert "\\" not in prose
    assert "see www\u2060.evil.example or ask @\u2060octocat" in prose  # readable, but neither a link nor a mention


def test_the_markdown_of_a_backtick_key_keeps_it_in_one_code_span() -> None:
    for key in ("x` @octocat `y", "`lead", "trail`", "a``b", " padded ", "|pipe|", "order_placed"):
        reader = _read(f"text {markdown_code(key)} more")
        assert reader.codes == [key], key
        assert _read(f"| a |\n|---|\n| {markdown_code(key, table=True)} |").codes == [key], key
        assert _read(markdown_text(f"metric {code(key)} is {code(key)}")).codes == [key, key], key


def test_prose_breaks_every_autolink_and_mention_gfm_knows() -> None:
    hostile = ("@octocat @org/team a@b.co www.evil.example http://evil.example https://evil.example/x "
               "ftp://evil.example mailto:a@b.co xmpp:a@b.co <https://evil.example> [x](https://evil.example)")
    reader = _read(markdown_inline(hostile))
    assert reader.tags == ["p"]
    assert _mentions(reader) == []
    assert "".join(reader.prose).replace("\u2060", "").strip() == hostile  # shows the same characters


def test_a_name_padded_with_blanks_cannot_look_like_a_plan_line_of_its_own() -> None:
    padded = "Order" + " " * 200 + "+ create fake (custom)"
    change = Change("update", "order", "custom numeric", {}, {}, [FieldChange("name", "Order", padded)], [],
                    remote_version=1)
    project = ProjectPlan("shop", "sha256:x", [change], unchanged=0, unmanaged=0, would_archive=[], blocked=[],
                          findings=[])
    plan = Plan([project], prune=False, ownership_tag="t", base_url_host="h", tool_version="0")
    line = next(line for line in plan_text(plan).splitlines() if line.lstrip().startswith("name:"))
    assert line == '      name: "Order" → "Order [200 blanks] + create fake (custom)"'
    assert '!     name: "Order" → "Order [200 blanks] + create fake (custom)"' in plan_markdown(plan)
    assert compact("a\u00a0b\u3000c\tc\nd") == "a\\u00a0b\\u3000c\\tc\\nd"
    assert compact("two  spaces stay") == "two  spaces stay"
