"""The HTML page's own guarantees, without a browser: outside strings escaped, the embedded JSON safe in a script
element, and a Content-Security-Policy that allows exactly the page's inline style and script."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser

from metrics_sync.output.health_page import SCRIPT, STYLE, e, script_json
from tests.health.conftest import Catalogue


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        self.hrefs.extend(str(value) for name, value in attrs if name == "href")


HOSTILE = "</script><img src=x onerror=alert(1)>\u2028\u2029&lt;<!--"


def test_embedded_json_cannot_end_its_script_element_and_reads_back_the_same() -> None:
    text = script_json({"name": HOSTILE})
    assert not re.search(r"[<>&\u2028\u2029]", text)
    assert json.loads(text) == {"name": HOSTILE}


def test_outside_text_is_escaped_for_text_and_attributes() -> None:
    assert e('<b a="1">\'&') == "&lt;b a=&quot;1&quot;&gt;&#x27;&amp;"
    assert e("bell\x07") == "bell\\x07"  # control characters made visible, as on the terminal


def test_a_description_keeps_its_line_breaks_and_escapes_each_line(catalogue: Catalogue) -> None:
    catalogue.store.seed({"projects": {"shop": [
        {"key": "two-lines", "name": "Two lines", "kind": "custom", "eventKey": "two", "isNumeric": False,
         "description": "First <b>line</b>\nsecond\x07 line", "tags": ["growth"]}]}})
    page = catalogue.run("health", "--format", "html").out
    assert '<p class="description">First &lt;b&gt;line&lt;/b&gt;\nsecond\\x07 line</p>' in page
    assert ".card p.description{white-space:pre-line}" in STYLE  # the page shows the break


def test_the_page_allows_only_its_own_style_and_script(catalogue: Catalogue) -> None:
    catalogue.store.seed({"projects": {"shop": [
        {"key": "hostile", "name": HOSTILE, "kind": "custom", "eventKey": HOSTILE, "isNumeric": False,
         "description": HOSTILE, "tags": ["growth"]}]}})
    page = catalogue.run("health", "--format", "html").out
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    assert policy is not None
    hashes = {name: "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
              for name, body in (("style", STYLE), ("script", SCRIPT))}
    assert policy.group(1) == (f"default-src 'none'; style-src {hashes['style']}; script-src {hashes['script']}; "
                               "img-src 'none'; base-uri 'none'; form-action 'none'")
    assert f"<style>{STYLE}</style>" in page and f"<script>{SCRIPT}</script>" in page
    # No markup from outside: only the page's own elements, no inline handler, style attribute or link out.
    elements = Elements()
    elements.feed(page)
    assert elements.tags <= {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p", "div",
                             "input", "select", "option", "span", "main", "section", "article", "dl", "dt", "dd",
                             "code", "ul", "ol", "li", "a", "strong", "script"}
    assert not {a for a in elements.attributes if a.startswith("on") or a in ("style", "src", "srcdoc")}
    assert all(href.startswith("#") for href in elements.hrefs)
    assert page.count("<script") == 2 and page.count("</script>") == 2
    data = page.split('<script type="application/json" id="health-data">')[1].split("</script>")[0]
    assert any(m["name"] == HOSTILE for m in json.loads(data)["metrics"])
