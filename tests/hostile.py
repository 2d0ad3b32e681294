"""A hostile LaunchDarkly stand-in on 127.0.0.1: one mode per misbehaviour, for the tests that prove
metrics-sync bounds its work and escapes what it prints whatever a server does (tests/launchdarkly/test_hostile.py).

A raw socket server rather than the emulator: slow drips, endless chunked bodies and lying headers need
control of every byte. Start with `HostileServer(mode)` as a context manager; `.url` is its base URL.
"""

from __future__ import annotations

import functools
import json
import socketserver
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

TAG = "managed-by-metrics-sync"
ESCAPES = "\x1b[2J\x1b[1;1H\x1b]0;pwned\x07Plan: 0 to create\u202e"


def metric(key: str, **fields: Any) -> dict[str, Any]:
    return {"key": key, "name": key, "kind": "custom", "eventKey": key, "isNumeric": False, "_version": 1,
            "tags": [TAG], **fields}


def page(items: list[Any], total: Any) -> bytes:
    return json.dumps({"items": items, "totalCount": total, "_links": {}}).encode()


class _State:
    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def next(self) -> int:
        with self.lock:
            self.calls += 1
            return self.calls


Reply = Iterator[bytes]
Mode = Callable[[str, str, _State], Reply]


def _response(status: str, body: bytes, headers: dict[str, str] | None = None) -> Reply:
    head = [f"HTTP/1.1 {status}", "Content-Type: application/json", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    yield ("\r\n".join(head) + "\r\n\r\n").encode() + body


def same_page(method: str, target: str, state: _State) -> Reply:
    yield from _response("200 OK", page([metric(f"m{i}") for i in range(50)], 1000))


def new_keys_forever(method: str, target: str, state: _State) -> Reply:
    n = state.next()
    # Ignores the offset, invents 50 new metrics per page and raises its totalCount as it goes.
    yield from _response("200 OK", page([metric(f"p{n}-{i}") for i in range(50)], 500 + 50 * n))


def negative_total(method: str, target: str, state: _State) -> Reply:
    yield from _response("200 OK", page([metric("m1")], -1))


def slow_body(method: str, target: str, state: _State) -> Reply:
    body = page([metric("m1")], 1)
    yield (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    for byte in body:
        time.sleep(0.2)
        yield bytes([byte])


def slow_headers(method: str, target: str, state: _State) -> Reply:
    for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 10_000:
        time.sleep(0.2)
        yield bytes([byte])


def rate_limit_day(method: str, target: str, state: _State) -> Reply:
    reset = int((time.time() + 86_400) * 1000)
    headers = {"X-Ratelimit-Route-Remaining": "0", "X-Ratelimit-Route-Limit": "10", "X-Ratelimit-Reset": str(reset)}
    offset = int(target.split("offset=")[1].split("&")[0]) if "offset=" in target else 0
    items = [metric(f"m{offset + i}", tags=[]) for i in range(50)] if offset < 100 else []
    yield from _response("200 OK", page(items, 100), headers)


def huge_body(method: str, target: str, state: _State) -> Reply:
    size = 500 * 1024 * 1024
    yield (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n").encode()
    chunk = b" " * (1024 * 1024)
    for _ in range(500):
        yield chunk


def endless_chunked(method: str, target: str, state: _State) -> Reply:
    yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b" " * 65536
    while True:
        yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"


def retry_after_nan(method: str, target: str, state: _State) -> Reply:
    yield from _response("429 Too Many Requests", b'{"code":"rate_limited","message":"slow down","id":"x"}',
                         {"Retry-After": "nan"})


def reset_far_away(method: str, target: str, state: _State) -> Reply:
    yield from _response("429 Too Many Requests", b'{"code":"rate_limited","message":"slow down","id":"x"}',
                         {"X-Ratelimit-Reset": "100000000000000000000"})


def redirect(method: str, target: str, state: _State) -> Reply:
    yield from _response("307 Temporary Redirect", page([], 0), {"Location": "https://collector.example/steal"})


def redirect_malformed(method: str, target: str, state: _State) -> Reply:
    yield from _response("302 Found", page([], 0), {"Location": "https://[collector.example]/steal"})


def missing_key(method: str, target: str, state: _State) -> Reply:
    yield from _response("200 OK", page([metric("m1"), {"name": "no key"}], 2))


def dot_key(method: str, target: str, state: _State) -> Reply:
    yield from _response("200 OK", page([metric("m1"), metric("..")], 2))


def wrong_types(method: str, target: str, state: _State) -> Reply:
    yield from _response("200 OK", page([metric("m1", tags="not-a-list")], 1))


def deep_nesting(method: str, target: str, state: _State) -> Reply:
    yield from _response("200 OK", b'{"items": [' + b"[" * 100_000 + b"]" * 100_000 + b'], "totalCount": 1}')


def not_a_number(method: str, target: str, state: _State) -> Reply:
    yield from _response("200 OK", b'{"items": [], "totalCount": NaN}')


def escapes(method: str, target: str, state: _State) -> Reply:
    """Names, tags and error messages that try to forge terminal output and the PR comment."""
    if method == "POST":
        yield from _response("400 Bad Request", json.dumps(
            {"code": "invalid_request", "message": f"bad {ESCAPES}\nApply complete: 9 created", "id": "x"}).encode())
        return
    hostile = metric("order-placed", name=f"Order {ESCAPES}",
                     description="```\n</details>\n# Hacked ![x](https://e.x/i.png)", tags=[TAG, "kpi"])
    path = target.split("?")[0]
    if path.count("/") == 5 and not path.endswith("/order-placed"):  # /api/v2/metrics/{project}/{key}
        yield from _response("404 Not Found", b'{"code":"not_found","message":"Unknown metric","id":"x"}')
        return
    yield from _response("200 OK", json.dumps(hostile).encode() if path.count("/") == 5 else page([hostile], 1))


@functools.cache
def gzip_bomb() -> bytes:
    """1 GiB of spaces, gzipped once (about 1 MB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b" " * (1024 * 1024)
    return b"".join([packer.compress(block) for _ in range(1024)] + [packer.flush()])


def gzip_twice() -> bytes:
    """The same 1 GiB, gzipped twice: under 2 KB on the wire."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return packer.compress(gzip_bomb()) + packer.flush()


def stacked_gzip(method: str, target: str, state: _State) -> Reply:
    yield from _response("200 OK", gzip_twice(), {"Content-Encoding": "gzip, gzip"})


def gzip_huge(method: str, target: str, state: _State) -> Reply:
    yield from _response("200 OK", gzip_bomb(), {"Content-Encoding": "gzip"})


def gzip_page(method: str, target: str, state: _State) -> Reply:
    packer = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    yield from _response("200 OK", packer.compress(page([metric("m1", tags=[])], 1)) + packer.flush(),
                         {"Content-Encoding": "gzip"})


def _huge_error(status: str) -> Reply:
    size = 20 * 1024 * 1024
    yield (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n").encode()
    yield b'{"code":"unauthorized","message":"Invalid access token"' + b" " * (size - 55) + b"}"


def huge_401(method: str, target: str, state: _State) -> Reply:
    yield from _huge_error("401 Unauthorized")


def huge_503(method: str, target: str, state: _State) -> Reply:
    yield from _huge_error("503 Service Unavailable")


def huge_number(method: str, target: str, state: _State) -> Reply:
    body = page([metric("m1", tags=[]), metric("m2", tags=[])], 2).replace(
        b'"key": "m2", "name": "m2", "kind": "custom"',
        b'"key": "m2", "name": "m2", "kind": "custom", "percentileValue": 1' + b"0" * 400)
    yield from _response("200 OK", body)


def huge_event_default(method: str, target: str, state: _State) -> Reply:
    body = page([metric("m1", tags=[])], 1).replace(
        b'"key": "m1",', b'"key": "m1", "eventDefault": {"disabled": false, "value": 1' + b"0" * 400 + b"},")
    yield from _response("200 OK", body)


def duplicate_keys(method: str, target: str, state: _State) -> Reply:
    # The tag list twice: the last one would win, turning the managed metric unmanaged.
    body = page([metric("order-placed", tags=[TAG])], 1).replace(b'"tags": [', b'"tags": [], "tags": [', 1)
    yield from _response("200 OK", body)


def rate_limit_far_pages(method: str, target: str, state: _State) -> Reply:
    """Every 2xx page says the window is spent and resets in a day: each page would wait the longest wait."""
    reset = int((time.time() + 86_400) * 1000)
    headers = {"X-Ratelimit-Route-Remaining": "0", "X-Ratelimit-Route-Limit": "10", "X-Ratelimit-Reset": str(reset)}
    offset = int(target.split("offset=")[1].split("&")[0]) if "offset=" in target else 0
    items = [metric(f"m{offset + i}", tags=[]) for i in range(50)] if offset < 1000 else []
    yield from _response("200 OK", page(items, 1000), headers)


MODES: dict[str, Mode] = {
    "stacked-gzip": stacked_gzip, "gzip-huge": gzip_huge, "gzip-page": gzip_page, "huge-401": huge_401,
    "huge-503": huge_503, "huge-number": huge_number, "huge-event-default": huge_event_default,
    "duplicate-keys": duplicate_keys, "rate-limit-far-pages": rate_limit_far_pages,
    "same-page": same_page, "new-keys-forever": new_keys_forever, "negative-total": negative_total,
    "slow-body": slow_body, "slow-headers": slow_headers, "rate-limit-day": rate_limit_day,
    "huge-body": huge_body, "endless-chunked": endless_chunked, "retry-after-nan": retry_after_nan,
    "reset-far-away": reset_far_away, "redirect": redirect,
    "redirect-malformed": redirect_malformed, "missing-key": missing_key, "dot-key": dot_key,
    "wrong-types": wrong_types, "deep-nesting": deep_nesting, "not-a-number": not_a_number, "escapes": escapes,
}


class HostileServer:
    def __init__(self, mode: str) -> None:
        reply, state = MODES[mode], _State()
        self.requests: list[str] = []
        requests = self.requests

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                stream = self.request.makefile("rb")
                while True:
                    line = stream.readline(65537).decode("latin-1")
                    if not line:
                        return
                    method, target = line.split(" ")[:2]
                    length = 0
                    while (header := stream.readline(65537).decode("latin-1").strip()):
                        if header.lower().startswith("content-length:"):
                            length = int(header.split(":")[1])
                    stream.read(length)
                    requests.append(f"{method} {target}")
                    try:
                        for part in reply(method, target, state):
                            self.request.sendall(part)
                    except OSError:  # the client hung up: exactly what a bounded client does
                        return

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HostileServer:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
