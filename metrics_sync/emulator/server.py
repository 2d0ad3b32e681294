"""`metrics-sync emulator`: serve the emulator over HTTP on loopback.

The first line on stdout is exactly `listening on http://HOST:PORT` (with --port 0 the port the OS
picked), the next one the access token to use. SIGINT and SIGTERM stop it cleanly.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import signal
import socketserver
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any, NoReturn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from metrics_sync.emulator.app import EmulatorApp, Faults
from metrics_sync.emulator.store import Store

DEFAULT_TOKEN = "emulator-token"


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="metrics-sync emulator",
                description="A local LaunchDarkly metrics API for demos, CI and tests.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    p.add_argument("--token", default=DEFAULT_TOKEN, help="access token clients must send (default emulator-token)")
    p.add_argument("--reader-token", help="a second token that may only read (writes get 403)")
    p.add_argument("--project", action="append", default=[], metavar="KEY",
                   help="project to serve (repeatable; default: default)")
    p.add_argument("--state", type=Path, metavar="FILE", help="persist metrics to FILE (atomic writes)")
    p.add_argument("--seed", type=Path, metavar="FILE", help="preload metrics from a JSON seed file")
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay every answer by N milliseconds")
    p.add_argument("--fail-rate", type=float, default=0.0, help="answer this share of requests with a random 5xx")
    p.add_argument("--rate-limit", type=int, help="requests per 10-second window per route (then 429)")
    p.add_argument("--random-seed", type=int, help="seed for --fail-rate, for repeatable runs")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return p


def create_server(app: EmulatorApp, host: str, port: int) -> WSGIServer:
    return make_server(host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler)


def serve_in_thread(app: EmulatorApp, host: str = "127.0.0.1", port: int = 0) -> tuple[WSGIServer, str]:
    """Start serving `app` on a background thread; returns (server, base URL). Call server.shutdown()."""
    server = create_server(app, host, port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, f"http://{host}:{server.server_port}"


def main(argv: Sequence[str] | None = None, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        if not 0.0 <= args.fail_rate <= 1.0:
            raise _UsageError("--fail-rate must be between 0 and 1")
        if args.rate_limit is not None and args.rate_limit < 1:
            raise _UsageError("--rate-limit must be at least 1")
        store = Store(args.project or ["default"], state_file=args.state)
        if args.seed:
            store.seed(json.loads(args.seed.read_text(encoding="utf-8")))
    except _UsageError as exc:
        err.write(f"error: {exc}\n")
        return 1
    except (OSError, ValueError, KeyError, TypeError) as exc:
        err.write(f"error: cannot start the emulator: {exc}\n")
        return 1
    # A seeded project can hold 100,000s of objects that live as long as the process: keep the cyclic
    # collector from walking them on every collection (it made large listings slower than linear).
    gc.collect()
    gc.freeze()

    def log(line: str) -> None:
        err.write(line + "\n")
        err.flush()

    app = EmulatorApp(store, token=args.token, reader_token=args.reader_token,
                      faults=Faults(args.latency_ms, args.fail_rate, args.rate_limit),
                      rng=random.Random(args.random_seed), log=log if args.verbose else None)
    try:
        server = create_server(app, args.host, args.port)
    except OSError as exc:
        err.write(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}\n")
        return 1

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    host = args.host if ":" not in args.host else f"[{args.host}]"
    out.write(f"listening on http://{host}:{server.server_port}\n")
    out.write(f"access token: {args.token}\n")
    out.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    err.write("emulator stopped\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
