"""A stand-in LaunchDarkly that costs nothing: it answers from pre-rendered bytes, so a benchmark against it
measures the client's own work.

It records first: while `recording`, a request it has no answer for is forwarded to an upstream server (the
emulator, seeded like the benchmark's repository) and the whole answer — status line, the emulator's headers
(rate-limit headers, `Content-Type`, ...) and body (`items`, `totalCount`, `_links` with `next`) — is kept as one
byte string. A warm-up run of the measured command (not timed) records every request it makes: list pages,
experiment units, metric groups, whatever plan asks. `freeze()` then ends the recording, and from then on each
request costs a dict lookup and one write (plus, with `latency_ms`, a sleep that uses no CPU). A request never
recorded is answered 404 and counted in `misses` (a benchmark must check that none happened).

    python benchmarks/prerendered.py UPSTREAM_URL [--latency-ms 150]   # record while serving; prints its URL
"""

from __future__ import annotations

import argparse
import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "date", "server", "content-length"})
Key = tuple[str, str]  # (method, path with its query)


class StandIn:
    def __init__(self, upstream: str, *, latency_ms: float = 0.0, host: str = "127.0.0.1") -> None:
        self.upstream = urlsplit(upstream)
        self.latency = latency_ms / 1000
        self.answers: dict[Key, bytes] = {}
        self.recording = True
        self.misses: list[Key] = []
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the emulator and LaunchDarkly do

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                key = (self.command, self.path)
                answer = stand_in.answers.get(key)
                if answer is None:
                    answer = stand_in.record(key, dict(self.headers.items()), body)
                if stand_in.latency:
                    time.sleep(stand_in.latency)
                self.wfile.write(answer)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="stand-in", daemon=True)
        self._thread.start()

    def record(self, key: Key, headers: dict[str, str], body: bytes) -> bytes:
        """The upstream's answer to a request not seen yet, rendered once and kept (404 once frozen)."""
        with self._lock:
            if not self.recording:
                self.misses.append(key)
                missing = b'{"code":"not_found","message":"not recorded"}'
                return (b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: "
                        + str(len(missing)).encode() + b"\r\n\r\n" + missing)
        connection = http.client.HTTPConnection(self.upstream.hostname or "127.0.0.1", self.upstream.port)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
            connection.request(key[0], key[1], body=body or None, headers=sent)
            response = connection.getresponse()
            content = response.read()
            head = [f"HTTP/1.1 {response.status} {response.reason}"]
            head += [f"{k}: {v}" for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            head.append(f"Content-Length: {len(content)}")
            answer = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + content
        finally:
            connection.close()
        if key[0] == "GET":  # only reads are replayed; a write is forwarded every time while recording
            with self._lock:
                self.answers[key] = answer
        return answer

    def freeze(self) -> None:
        with self._lock:
            self.recording = False

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("upstream")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    stand_in = StandIn(args.upstream, latency_ms=args.latency_ms)
    print(f"listening on {stand_in.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        stand_in.close()


if __name__ == "__main__":
    main()
