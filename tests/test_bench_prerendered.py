"""The benchmarks' stand-in LaunchDarkly (benchmarks/prerendered.py): it records the upstream's answers whole,
then, frozen, replays them byte for byte without asking the upstream, and answers 404 to what it never saw."""

from __future__ import annotations

import http.client
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

from prerendered import StandIn  # benchmarks/ is a folder of scripts, put on the path above


class Upstream:
    def __init__(self) -> None:
        self.asked: list[str] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                upstream.asked.append(self.path)
                body = f'{{"items": [], "totalCount": {len(upstream.asked)}}}'.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Ratelimit-Route-Remaining", "99")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.server.shutdown()
    server.server.server_close()


def get(url: str, path: str) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port)
    try:
        connection.request("GET", path, headers={"Authorization": "token"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_recorded_answers_are_replayed_whole_without_the_upstream(upstream: Upstream) -> None:
    stand_in = StandIn(upstream.url)
    try:
        first = get(stand_in.url, "/api/v2/metrics/p?limit=50&offset=0")
        assert first[0] == 200 and first[2] == b'{"items": [], "totalCount": 1}'
        assert first[1]["X-Ratelimit-Route-Remaining"] == "99"
        stand_in.freeze()
        again = get(stand_in.url, "/api/v2/metrics/p?limit=50&offset=0")
        assert again == first and upstream.asked == ["/api/v2/metrics/p?limit=50&offset=0"]
        status, _, _ = get(stand_in.url, "/api/v2/metrics/p?limit=50&offset=50")
        assert status == 404 and stand_in.misses == [("GET", "/api/v2/metrics/p?limit=50&offset=50")]
        assert len(upstream.asked) == 1
    finally:
        stand_in.close()
