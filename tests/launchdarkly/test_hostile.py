"""Against a hostile server (tests/hostile.py) metrics-sync ends, bounds its time and memory, and prints a
clear error or an escaped plan, never an internal error or a forged line."""

from __future__ import annotations

import re
import time
import tracemalloc
from pathlib import Path

import pytest

from tests.conftest import TOKEN, run_cli
from tests.hostile import HostileServer

DEFINITIONS = """project: shop
metrics:
  - key: order-placed
    name: Order placed
    kind: custom
    eventKey: order-placed
"""
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "shop.yaml").write_text(DEFINITIONS)
    return tmp_path


def _plan(repo: Path, mode: str, *extra: str, timeout: str = "0.5") -> tuple[int, str, str, float]:
    with HostileServer(mode) as server:
        started = time.monotonic()
        result = run_cli("plan", "--timeout", timeout, *extra, cwd=repo,
                         env={"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": server.url})
        elapsed = time.monotonic() - started
    assert "internal error" not in result.err
    assert not CONTROL.search(result.out + result.err)
    return result.code, result.out, result.err, elapsed


@pytest.mark.parametrize("mode, message", [
    ("same-page", "LaunchDarkly sent the same metrics again at offset 50 (totalCount 1000)"),
    ("new-keys-forever", "LaunchDarkly kept sending pages: 21 pages for a totalCount of 1050"),
    ("negative-total", "the metric list gives no usable totalCount (-1)"),
    ("missing-key", "LaunchDarkly sent a malformed metric: its key does not follow LaunchDarkly's key pattern"),
    ("dot-key", "LaunchDarkly sent a malformed metric: its key does not follow LaunchDarkly's key pattern"),
    ("wrong-types", "LaunchDarkly sent a malformed metric `m1`: `tags` is not a list of text"),
    ("deep-nesting", "LaunchDarkly's answer cannot be used: it is nested deeper than 32 levels"),
    ("not-a-number", "LaunchDarkly's answer cannot be used: it holds NaN, which is not JSON"),
    ("redirect", "307: redirect to collector.example not followed (check --base-url (or LD_BASE_URL): it should "
                 "be LaunchDarkly's own address)"),
])
def test_answers_that_make_no_sense_are_clear_errors(repo: Path, mode: str, message: str) -> None:
    code, out, err, elapsed = _plan(repo, mode)
    assert code == 1 and out == ""
    assert message in err, err
    assert elapsed < 10


@pytest.mark.parametrize("mode", ["slow-body", "slow-headers"])
def test_timeout_bounds_each_whole_request(repo: Path, mode: str) -> None:
    code, _, err, elapsed = _plan(repo, mode, timeout="0.5")
    assert code == 1
    assert "timed out (the whole request took longer than --timeout (0.5 s))" in err
    assert elapsed < 8 * 0.5 + 3  # eight attempts of at most 0.5 s each (retry waits are instant in tests)


@pytest.mark.parametrize("mode", ["huge-body", "endless-chunked"])
def test_answers_are_read_with_a_size_cap(repo: Path, mode: str) -> None:
    tracemalloc.start()
    try:
        code, _, err, _ = _plan(repo, mode, timeout="20")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 1 and "LaunchDarkly's answer is larger than 16 MB; it was not read" in err
    assert peak < 80 * 1024 * 1024


@pytest.mark.parametrize("mode", ["retry-after-nan", "reset-far-away"])
def test_odd_rate_limit_headers_give_up_cleanly(repo: Path, mode: str) -> None:
    code, _, err, _ = _plan(repo, mode)
    assert code == 1
    if mode == "reset-far-away":  # each wait capped at 60 s and announced; at most 180 s in all, then an error
        assert err.count("LaunchDarkly's rate limit: waiting 60 s before retrying GET /api/v2/metrics/shop") == 3
        assert err.endswith("429 rate_limited: LaunchDarkly's rate limit: still refused after 180 s of waiting "
                            "(try again later, or lower --parallelism)\n")
    else:
        assert "429 rate_limited: slow down" in err


def test_a_rate_limit_window_a_day_away_is_waited_for_at_most_a_minute_and_said(repo: Path) -> None:
    code, out, err, _ = _plan(repo, "rate-limit-day")
    assert code == 0, err
    assert ("LaunchDarkly's rate limit: waiting 60 s for the rate-limit window of GET /api/v2/metrics/{projectKey} "
            "to reset") in err
    assert "Not managed by metrics-sync (left alone): 100 metrics" in out


def test_text_from_the_server_cannot_forge_output(repo: Path) -> None:
    code, out, _, _ = _plan(repo, "escapes")
    assert code == 0
    assert '\\u001b[2J\\u001b[1;1H\\u001b]0;pwned\\u0007Plan: 0 to create\\u202e' in out
    assert [line for line in out.splitlines() if line.startswith("Plan: ")] == [
        "Plan: 0 to create, 1 to update, 0 to archive, 0 unchanged."]  # the forged summary is not a line
    code, markdown, _, _ = _plan(repo, "escapes", "--format", "markdown")
    fence = re.search(r"^(`{3,})diff$", markdown, re.MULTILINE)
    assert fence is not None and len(fence.group(1)) > 3  # longer than the ``` in the description
    body = markdown.split(fence.group(0))[1].split("\n" + fence.group(1) + "\n")[0]
    assert "</details>" in body and "# Hacked" in body  # inside the code block, as text
    assert markdown.count("</details>") == 2  # the real one, and the quoted one in the block


def test_an_error_message_from_the_server_cannot_forge_output(repo: Path) -> None:
    (repo / "metrics" / "shop.yaml").write_text(DEFINITIONS.replace("order-placed", "new-metric"))
    with HostileServer("escapes") as server:
        result = run_cli("apply", "--auto-approve", cwd=repo,
                         env={"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": server.url})
    assert result.code == 1
    assert not CONTROL.search(result.out + result.err)
    assert "bad \\x1b[2J\\x1b[1;1H\\x1b]0;pwned\\x07Plan: 0 to create\\u202e\\nApply complete: 9 created" in result.out
    assert [line for line in result.out.splitlines() if line.startswith("Apply complete")] == [
        "Apply complete: 0 created, 0 updated, 0 archived, 1 failed."]
