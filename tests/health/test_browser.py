"""The HTML catalogue in a real browser: Debian's chromium, headless (the Makefile's test target installs it when
missing). The page runs under its own Content-Security-Policy; the DOM is read back after its script ran."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.health.conftest import Catalogue

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HOSTILE_NAME = "<img src=x onerror=document.title='pwned'>"
HOSTILE_DESCRIPTION = "</script><script>document.title='pwned'</script>\u2028&amp;"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000", "--window-size=1280,1800"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (make test installs it)")


class Dom(HTMLParser):
    """The cards (key, hidden), the funnel steps, the image elements and the texts of the dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: list[tuple[str, bool]] = []
        self.steps: dict[str, list[str]] = {}
        self.images = 0
        self.title = ""
        self.count = ""
        self.names: list[str] = []
        self.descriptions: list[str] = []
        self._card = ""
        self._into: list[str] | None = None
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "img":
            self.images += 1
        if tag == "article" and "card" in classes:
            self._card = ""
            self.cards.append(("", "hidden" in a))
        if tag == "span" and "key" in classes:
            self._in = "key"
        if tag == "span" and "name" in classes:
            self._in = "name"
        if tag == "p" and "description" in classes:
            self._in = "description"
        if tag == "li" and "step" in classes:
            self._in = "step"
        if tag == "title":
            self._in = "title"
        if tag == "span" and a.get("id") == "count":
            self._in = "count"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("span", "p", "li", "title"):
            self._in = None if tag != "li" or self._in == "step" else self._in

    def handle_data(self, data: str) -> None:
        if self._in == "key" and self.cards and not self.cards[-1][0]:
            self.cards[-1] = (data, self.cards[-1][1])
            self._card = data
        elif self._in == "step":
            self.steps.setdefault(self._card, []).append(data)
        elif self._in == "name":
            self.names.append(data)
        elif self._in == "description":
            self.descriptions.append(data)
        elif self._in == "title":
            self.title += data
        elif self._in == "count":
            self.count += data


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def _dom(tmp_path: Path, url: str) -> Dom:
    done = _chromium(tmp_path, "--dump-dom", url)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = Dom()
    dom.feed(done.stdout)
    return dom


@pytest.fixture
def page(catalogue: Catalogue, tmp_path: Path) -> Path:
    catalogue.store.seed({"projects": {"shop": [
        {"key": "hostile-metric", "name": HOSTILE_NAME, "kind": "custom", "eventKey": "</script>",
         "isNumeric": False, "description": HOSTILE_DESCRIPTION, "tags": ["growth"]}]}})
    result = catalogue.run("health", "--code", "app", "--format", "html", "--out", "catalogue.html")
    assert result.code == 0, result.err
    return catalogue.root / "catalogue.html"


def test_the_page_in_a_browser_searches_draws_funnels_and_keeps_hostile_names_as_text(page: Path,
                                                                                       tmp_path: Path) -> None:
    everything = _dom(tmp_path, page.as_uri())
    keys = [key for key, _ in everything.cards]
    assert "checkout-funnel" in keys and "hostile-metric" in keys
    assert not any(hidden for _, hidden in everything.cards)
    # The script ran (under the page's own CSP): it counted the cards.
    assert everything.count == f"{len(keys)} of {len(keys)} shown"
    # A funnel shows its steps in order.
    assert everything.steps["checkout-funnel"] == ["place-order-clicked", "order-placed", "confirmation-page-viewed"]
    # Hostile names stay text: no image element, the title untouched, the text shown as written.
    assert everything.images == 0
    assert everything.title == "Metrics catalogue and health"
    assert HOSTILE_NAME in everything.names
    assert any(d.startswith("</script><script>document.title='pwned'</script>") for d in everything.descriptions)
    # Search narrows the list (the filters can be given in the link).
    narrowed = _dom(tmp_path, page.as_uri() + "#search=order")
    shown = {key for key, hidden in narrowed.cards if not hidden}
    assert shown and shown < set(keys)
    assert {"order-placed", "order-value", "checkout-funnel"} <= shown
    assert "product-page-views" not in shown
    by_finding = _dom(tmp_path, page.as_uri() + "#finding=never-seen")
    assert {key for key, hidden in by_finding.cards if not hidden} == {"checkout-latency-p95", "hostile-metric"}
    by_kind = _dom(tmp_path, page.as_uri() + "#kind=funnel")
    assert {key for key, hidden in by_kind.cards if not hidden} == {"checkout-funnel"}
    by_tag = _dom(tmp_path, page.as_uri() + "#tag=growth")
    assert "hostile-metric" in {key for key, hidden in by_tag.cards if not hidden}
    assert "order-placed" not in {key for key, hidden in by_tag.cards if not hidden}


def test_the_page_renders_a_screenshot(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "catalogue.png"
    done = _chromium(tmp_path, f"--screenshot={shot}", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
