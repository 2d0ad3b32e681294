"""Against a hostile server (tests/hostile.py) metrics-sync ends, bounds its time and memory, and prints a
clear error or an escaped plan, never an internal error or a forged line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from metrics_sync.core.errors import REDACTED, redact, redact_token
from tests.conftest import ROOT, TOKEN, FakeClock, run_cli
from tests.hostile import HostileServer, gzip_bomb, gzip_twice

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
        # Waits advance a clock that starts now (the server's rate-limit resets are real times): they count
        # against --max-wait as they would, without taking the time.
        result = run_cli("plan", "--timeout", timeout, *extra, cwd=repo, clock=FakeClock(time.time()),
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
    ("redirect-malformed", "302: redirect to elsewhere not followed"),
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


# --- round two (issue 24) ---------------------------------------------------------------------------------------

# Runs metrics-sync in a child process and prints its peak resident memory last, so a test can bound it.
# (VmHWM, not getrusage: ru_maxrss keeps the high-water mark of the forking test process across exec.)
MEASURED = """import re, sys
from metrics_sync.cli.main import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status:
    sys.stderr.write("peak-rss-kb " + re.search(r"VmHWM:\\s+(\\d+)", status.read()).group(1) + "\\n")
sys.exit(code)
"""


def _plan_in_child(repo: Path, mode: str, *extra: str) -> tuple[int, str, float, float]:
    """plan against a hostile server, in a child process: exit code, stderr, seconds, peak memory in MB."""
    with HostileServer(mode) as server:
        started = time.monotonic()
        child = subprocess.run([sys.executable, "-c", MEASURED, "plan", *extra], cwd=repo, capture_output=True,
                               text=True, timeout=120, env={**os.environ, "LD_ACCESS_TOKEN": TOKEN,
                                                            "LD_BASE_URL": server.url, "PYTHONPATH": str(ROOT)})
        elapsed = time.monotonic() - started
    *lines, peak = child.stderr.splitlines()
    err = "\n".join(lines)
    assert "internal error" not in err and "Traceback" not in err, err
    return child.returncode, err, elapsed, int(peak.split()[1]) / 1024


def test_an_answer_compressed_twice_is_refused_at_once_with_little_memory(repo: Path) -> None:
    gzip_twice()  # (made before the clock starts: 1 GiB inside a body under 2 KB)
    code, err, elapsed, peak_mb = _plan_in_child(repo, "stacked-gzip", "--timeout", "1")
    assert code == 1
    assert err.count("\n") == 0 and "LaunchDarkly's answer cannot be used: it is compressed 2 times over " \
        "(Content-Encoding: 'gzip, gzip'); metrics-sync takes one compression" in err, err
    assert elapsed < 5 and peak_mb < 120, (elapsed, peak_mb)


def test_a_compressed_answer_is_capped_while_it_is_inflated(repo: Path) -> None:
    gzip_bomb()  # 1 GiB inside about 1 MB
    code, err, elapsed, peak_mb = _plan_in_child(repo, "gzip-huge", "--timeout", "5")
    assert code == 1
    assert err.endswith("LaunchDarkly's answer is larger than 16 MB; it was not read (nothing was read from it; "
                        "try again later)"), err
    assert elapsed < 10 and peak_mb < 120, (elapsed, peak_mb)  # at the cap: 16 MB inflated, not 1 GiB


def test_a_compressed_answer_within_the_cap_is_read(repo: Path) -> None:
    code, out, err, _ = _plan(repo, "gzip-page")
    assert code == 0, err
    assert "Not managed by metrics-sync (left alone): 1 metric" in out


@pytest.mark.parametrize("mode, message", [
    ("huge-number", "LaunchDarkly sent a malformed metric `m2`: `percentileValue` is not a number we can use"),
    ("huge-event-default", "LaunchDarkly sent a malformed metric `m1`: `eventDefault.value` is not a number we can "
                           "use"),
    ("duplicate-keys", "LaunchDarkly's answer cannot be used: it gives the key `tags` twice in one object"),
])
def test_numbers_and_objects_we_cannot_use_are_clear_errors(repo: Path, mode: str, message: str) -> None:
    code, out, err, _ = _plan(repo, mode)
    assert code == 1 and out == ""
    assert message in err and err.count("\n") == 1, err


@pytest.mark.parametrize("mode, status", [("huge-401", "401"), ("huge-503", "503")])
def test_an_error_answer_over_the_cap_keeps_its_status(repo: Path, mode: str, status: str) -> None:
    code, _, err, elapsed = _plan(repo, mode, timeout="10")
    assert code == 1
    assert f"GET /api/v2/metrics/shop failed: {status}: " in err and err.count("\n") == 1, err
    assert elapsed < 20


def test_a_server_that_drips_is_tried_twice_then_given_up(repo: Path) -> None:
    code, _, err, elapsed = _plan(repo, "slow-body", timeout="5")
    assert code == 1
    assert "timed out (the whole request took longer than --timeout (5 s))" in err
    assert elapsed < 2 * 5 + 3, elapsed  # two attempts of 5 s (today: eight, 40 s and more)


@pytest.mark.parametrize("given, waits", [((), 5), (("--max-wait", "130"), 2), (("--max-wait", "0"), 0)])
def test_rate_limit_resets_far_away_cannot_stretch_a_run_past_max_wait(repo: Path, given: tuple[str, ...],
                                                                       waits: int) -> None:
    # Every 2xx page says the window is spent and resets in a day: each page waits the longest wait (60 s),
    # 20 pages would wait 20 minutes; --max-wait (default 300 s) ends the run, saying so.
    code, out, err, _ = _plan(repo, "rate-limit-far-pages", *given)
    assert code == 1 and out == ""
    assert err.count("LaunchDarkly's rate limit: waiting 60 s") == waits, err
    assert f"before sending it would pass --max-wait ({given[1] if given else '300'} s of waiting in all, for rate " \
        "limits and retries) (LaunchDarkly is limiting or failing these requests; try again later, or raise " \
        "--max-wait)" in err.splitlines()[-1], err


@pytest.mark.parametrize("token, says", [
    (TOKEN + "\n", "LD_ACCESS_TOKEN holds whitespace (a trailing newline?); it was not sent"),
    ("\t" + TOKEN, "LD_ACCESS_TOKEN holds whitespace (a trailing newline?); it was not sent"),
    (TOKEN[:-1] + "é", "LD_ACCESS_TOKEN holds characters that are not ASCII; it was not sent"),
    (TOKEN + "\x07", "LD_ACCESS_TOKEN holds control characters; it was not sent"),
])
def test_a_token_with_stray_characters_is_refused_before_it_is_sent(repo: Path, token: str, says: str) -> None:
    with HostileServer("gzip-page") as server:
        result = run_cli("plan", "-v", cwd=repo, env={"LD_ACCESS_TOKEN": token, "LD_BASE_URL": server.url})
    assert result.code == 1 and server.requests == []
    assert result.err == f"error: {says} (set LD_ACCESS_TOKEN to the API access token exactly, with nothing " \
                         "around it)\n"
    assert TOKEN[4:-4] not in result.out + result.err


def test_the_token_is_redacted_in_its_escaped_and_url_encoded_forms() -> None:
    token = "api-se/cret+to ken\n"
    for text in (f"Illegal header value {token.encode()!r}", f"value {token!r}", json.dumps({"t": token}),
                 f"?token={quote(token, safe='')}", f"?token={quote_plus(token)}", f"raw {token}"):
        assert "se/cret" not in redact(text, {"LD_ACCESS_TOKEN": token}) and "cret%2B" not in redact(
            text, {"LD_ACCESS_TOKEN": token}), text
        assert REDACTED in redact_token(text, token)
