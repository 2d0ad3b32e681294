"""Plan starts the metrics list while it reads the definitions (cli/commands/plan.py, paging.EarlyRead): the
pages are read once, not again; when the definitions fail, the early read is cut off at once, says nothing and
leaves no thread behind, and the run ends as it always did; a wrong guess of the project costs nothing else."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest

from metrics_sync.emulator import EmulatorApp, Store
from tests.conftest import ENV, ROOT, TOKEN, Shop, run_cli, served

LIST = "GET /api/v2/metrics/{projectKey}"
BAD_UNIT = ("error: 1 problem in the metric definitions (listed above); nothing was changed in LaunchDarkly")


class HeldGets(EmulatorApp):
    """The emulator, holding every GET for `seconds` before serving it; `entered` is set as the first arrives."""

    def __init__(self, store: Store, seconds: float) -> None:
        super().__init__(store, token=TOKEN)
        self.seconds, self.entered = seconds, threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "GET":
            self.entered.set()
            time.sleep(self.seconds)
        return super().__call__(environ, start_response)


def repo(root: Path, extra_metrics: int = 0) -> Path:
    shutil.copytree(ROOT / "examples", root, ignore=shutil.ignore_patterns("*.py", "github"))
    if extra_metrics:  # definitions that take a while to read, so the early read is surely under way
        lines = ["project: shop\nmetrics:\n"]
        lines += [f"  - key: extra-{i}\n    name: Extra {i}\n    kind: custom\n    eventKey: extra-{i}\n"
                  f"    isNumeric: false\n" for i in range(extra_metrics)]
        (root / "metrics" / "zz-extra.yaml").write_text("".join(lines))
    checkout = root / "metrics" / "checkout.yaml"
    checkout.write_text(checkout.read_text().replace("unit: USD", "unit: [USD]"))
    return root


class Threads(httpx.BaseTransport):
    """Passes every request on, noting the thread that sent each metrics list read."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner, self.names = inner, list[str]()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/v2/metrics/") and "offset" in request.url.params:
            self.names.append(threading.current_thread().name)
        return self.inner.handle_request(request)


def early_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("read-early")]


@pytest.mark.slow
def test_bad_definitions_cut_the_early_read_off_at_once_and_end_the_run_as_before(tmp_path: Path) -> None:
    app = HeldGets(Store(["shop"]), seconds=4.0)
    folder = repo(tmp_path / "repo", extra_metrics=3000)
    with served(app) as url:
        started = time.monotonic()
        result = run_cli("plan", "--verbose", cwd=folder, env={"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": url},
                         real_time=True)
        took = time.monotonic() - started
        assert app.entered.is_set()  # the early read was under way: LaunchDarkly holds its answer for 4 s
    assert result.code == 1 and result.out == ""
    assert result.err.splitlines()[-1] == BAD_UNIT
    assert "[api]" not in result.err  # the early read's --verbose lines are never shown
    assert took < 3.0, f"the run waited {took:.1f} s for a read nobody needs"
    assert early_threads() == []
    # The same words as a run against no LaunchDarkly at all.
    offline = run_cli("plan", "--verbose", cwd=folder, env={"LD_ACCESS_TOKEN": TOKEN,
                                                             "LD_BASE_URL": "http://127.0.0.1:9"})
    assert (offline.code, offline.out, offline.err) == (result.code, result.out, result.err)


def test_bad_definitions_in_process_leave_no_thread_and_write_nothing(tmp_path: Path) -> None:
    shop = Shop(tmp_path / "shop")
    shop.edit_yaml("checkout.yaml", "unit: USD", "unit: [USD]")
    result = shop.run("plan", "--verbose")
    assert (result.code, result.out) == (1, "")
    assert result.err.splitlines()[-1] == BAD_UNIT and "[api]" not in result.err
    assert early_threads() == []
    assert set(shop.app.stats.requests) <= {LIST} and not shop.app.stats.writes


def test_the_early_pages_are_taken_over_and_not_read_again(shop: Shop) -> None:
    shop.store.seed({"projects": {"shop": [
        {"key": f"ui-{i:03d}", "name": f"UI {i}", "kind": "custom", "eventKey": f"ui-{i}", "isNumeric": False}
        for i in range(120)]}})  # 3 pages: the first, and two read ahead once it told the count
    shop.transport = threads = Threads(shop.transport)
    result = shop.run("plan", "--verbose")
    # The first page was read early; the two others early too, or by the reader when the early read had not
    # started them yet: each once.
    assert len(threads.names) == 3 and threads.names[0] == "read-early"
    assert result.code == 0, result.err
    assert shop.app.stats.requests[LIST] == 3
    listed = [line for line in result.err.splitlines() if line.startswith("[api] GET /api/v2/metrics/shop?")]
    assert len(listed) == 3  # logged once each, after the definitions were read
    assert early_threads() == []


def test_files_that_name_no_project_are_read_early_for_the_project_option(tmp_path: Path) -> None:
    shop = Shop(tmp_path / "shop")
    for name in ("checkout.yaml", "storefront.yaml"):
        path = shop.root / "metrics" / name
        path.write_text(path.read_text().replace("project: shop\n", ""))
    shop.transport = threads = Threads(shop.transport)
    result = shop.run("plan", "--project", "shop", "--verbose")
    assert result.code == 0, result.err
    assert shop.app.stats.requests[LIST] == 1  # read early, taken over
    assert threads.names == ["read-early"]
    assert early_threads() == []


def test_no_early_read_without_a_token_and_the_error_comes_where_it_did(tmp_path: Path) -> None:
    shop = Shop(tmp_path / "shop")
    result = run_cli("plan", env={k: v for k, v in ENV.items() if k != "LD_ACCESS_TOKEN"}, cwd=shop.root,
                     transport=shop.transport)
    assert result.code == 1
    assert "no LaunchDarkly access token" in result.err
    assert shop.app.stats.total == 0
