"""`metrics-sync emulator`: serve the emulator over HTTP on loopback.

The first line on stdout is exactly `listening on http://HOST:PORT` (with --port 0 the port the OS
picked), the next one the access token to use (and, with --reader-token, a third the reader token). SIGINT and
SIGTERM stop it cleanly.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import random
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any, NoReturn
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server

from metrics_sync.emulator.app import FAULT_HEADER, EmulatorApp, Faults
from metrics_sync.emulator.readings import CHOICES, Readings
from metrics_sync.emulator.rules import RuleError
from metrics_sync.emulator.store import NotFound, Store

DEFAULT_TOKEN = "emulator-token"
MAX_BODY_BYTES = 16 * 1024 * 1024  # a request body larger than this is answered 413, unread


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _FaultAwareServerHandler(ServerHandler):
    """Carries out the app's connection faults: a reset (RST, no answer) or a hang, then a reset."""

    request_handler: _Handler
    http_version = "1.1"  # keep-alive: every answer carries Content-Length (the app sets it)

    def finish_response(self) -> None:
        headers = getattr(self, "headers", None)  # set by start_response
        fault = headers.get(FAULT_HEADER) if headers is not None else None
        if not fault:
            super().finish_response()
            return
        if fault.startswith("hang"):
            time.sleep(float(fault.split()[1]))
        connection = self.request_handler.connection
        # SO_LINGER with a zero timeout makes close() send RST: the client sees "connection reset".
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.request_handler.aborted = True
        connection.close()


class _Handler(WSGIRequestHandler):
    """HTTP/1.1 with keep-alive, as LaunchDarkly's API (a new connection per request made every answer a few
    milliseconds slower than LaunchDarkly's would be, and benchmarks measured the emulator)."""

    aborted = False
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle kept-alive connection is closed after this many seconds

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # wsgiref writes the status line, the headers and the body in separate sends: on a kept-alive connection
        # Nagle's algorithm would hold the body back until the client's delayed ACK (40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        self.close_connection = True
        try:
            self._handle_one()
            while not self.close_connection and not self.aborted:
                self._handle_one()
        except (TimeoutError, ConnectionError):
            self.close_connection = True

    def _handle_one(self) -> None:
        # wsgiref's handle(), for one request of the connection, with a ServerHandler that can abort it.
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline, self.request_version, self.command = "", "", ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        app: EmulatorApp = self.server.get_app()  # type: ignore[attr-defined]
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # the app reads no body without a Content-Length; the stream ends here
            body_stream: Any = io.BytesIO(b"")
        else:
            given = (self.headers.get("Content-Length") or "0").strip()
            if not given.isdigit():  # (isdigit: no sign, no spaces inside, no "1e9")
                self._refuse(400, "invalid_request", "Invalid Content-Length")
                return
            length = int(given)
            if not app.accepts(self.headers.get("Authorization", "")):
                # The token is checked before a byte of the body is read: a stranger's body is never read (the
                # app answers 401), and the connection is closed after, so its unread body is never parsed.
                self.close_connection = True
                length = 0
            elif length > MAX_BODY_BYTES:
                self._refuse(413, "request_too_large", f"The request body is larger than {MAX_BODY_BYTES} bytes")
                return
            # The body is read whole before the app runs, so an app that does not read it (a 404) leaves
            # nothing behind that the next request on the connection would be parsed from.
            body_stream = io.BytesIO(self.rfile.read(length) if length > 0 else b"")
        environ = self.get_environ()
        environ["wsgi.input"] = body_stream
        handler = _FaultAwareServerHandler(body_stream, self.wfile, self.get_stderr(),  # type: ignore[arg-type]
                                           environ, multithread=True)
        handler.request_handler = self
        handler.run(app)

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer a request whose body cannot be read, and close the connection (the body is left unread)."""
        body = json.dumps({"code": code, "message": message}).encode()
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def finish(self) -> None:
        if self.aborted:
            return  # the socket is gone on purpose; nothing to flush
        super().finish()


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    out: IO[str] | None = None  # where --help goes (the caller's stdout)

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: {message}")

    def _print_message(self, message: str, file: IO[str] | Any = None) -> None:
        if message:
            (self.out or sys.stdout).write(message)


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except the empty ones (None, [], off)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default == []:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> _Parser:
    p = _Parser(prog="metrics-sync emulator",
                description="A local LaunchDarkly metrics API for demos, CI and tests.",
                formatter_class=_Help)
    p.add_argument("--host", default="127.0.0.1", metavar="ADDRESS", help="address to bind (loopback only by default)")
    p.add_argument("--port", type=int, default=8765, metavar="PORT", help="port (0 picks a free one)")
    p.add_argument("--token", default=DEFAULT_TOKEN, metavar="TOKEN", help="access token clients must send")
    p.add_argument("--reader-token", metavar="TOKEN", help="a second token that may only read (writes get 403)")
    p.add_argument("--project", action="append", default=[], metavar="KEY",
                   help="project to serve (repeatable; `default` when none is given)")
    p.add_argument("--state", type=Path, metavar="FILE", help="persist metrics to FILE (survives a kill)")
    p.add_argument("--seed", type=Path, metavar="FILE",
                   help="preload metrics, metric groups, experiments, guarded rollouts, environments, holdouts and "
                        "release policies from a JSON seed file")
    p.add_argument("--latency-ms", type=float, default=0.0, metavar="MS", help="delay every answer by MS milliseconds")
    p.add_argument("--fail-rate", type=float, default=0.0, metavar="SHARE",
                   help="answer this share of requests (0 to 1) with a random 5xx")
    p.add_argument("--rate-limit", type=int, metavar="N", help="N requests per 10-second window per route (then 429)")
    p.add_argument("--reset-rate", type=float, default=0.0, metavar="SHARE",
                   help="reset this share of connections without an answer")
    p.add_argument("--timeout-rate", type=float, default=0.0, metavar="SHARE",
                   help="leave this share of requests unanswered for --hang-seconds (the client times out)")
    p.add_argument("--hang-seconds", type=float, default=30.0, metavar="SECONDS",
                   help="how long an unanswered request hangs")
    p.add_argument("--throttle-rate", type=float, default=0.0, metavar="SHARE",
                   help="start a burst of 429 answers on this share of requests")
    p.add_argument("--throttle-header", choices=["retry-after", "reset"], default="retry-after",
                   help="how a 429 burst says when to retry: Retry-After or X-Ratelimit-Reset")
    p.add_argument("--burst-seconds", type=float, default=1.0, metavar="SECONDS", help="how long a 429 burst lasts")
    p.add_argument("--slow-rate", type=float, default=0.0, metavar="SHARE",
                   help="answer this share of requests --slow-ms late")
    p.add_argument("--slow-ms", type=float, default=1000.0, metavar="MS", help="extra delay of a slow answer")
    p.add_argument("--random-seed", type=int, metavar="N", help="seed for the random faults, for repeatable runs")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    # The options every metrics-sync command takes, so a habit (or a script's common options) does not stop it.
    p.add_argument("--config", metavar="FILE", help="accepted and ignored: the emulator reads no config")
    p.add_argument("--no-color", action="store_true", help="accepted and ignored: the emulator prints no colours")
    readings = p.add_argument_group(
        "readings of LaunchDarkly's contract where its sources are silent (docs/launchdarkly-contract.md)")
    helps = {
        "archived_in_list": "whether the metric list shows archived metrics",
        "failed_test_status": "the status of a PATCH whose `test` operation fails",
        "maintainer_on_create": "whether a maintainerId sent in a POST is kept",
        "list_counters": "whether list items carry activeExperimentCount/activeGuardedRolloutCount",
        "comment_wrapper": 'whether PATCH accepts {"comment", "patch"}',
        "duplicate_key_status": "the status of a POST whose key exists",
        "group_patch_test": "what a metric group PATCH's `test` compares with",
        "experiments_through_groups": "whether a metric lists the experiments that use it through a group",
        "holdout_in_experiments": "whether a metric lists a holdout's base experiment among its experiments",
        "policy_blocks_retire": "what a release policy naming a metric or group refuses: delete, archive too, nothing",
        "archive_before_delete": "whether a metric must be archived before it is deleted",
        "filter_order": "whether LaunchDarkly keeps the order of an event filter's values and conditions",
        "metric_versions": "whether a PATCH that changes a metric gives it a new _versionId",
        "iteration_versions": "whether a running experiment iteration measures the metric version it started with",
        "last_seen": "whether a metric's lastSeen is its event key's (shared) or its own (events since it existed)",
    }
    for name, choices in CHOICES.items():
        readings.add_argument(f"--{name.replace('_', '-')}", choices=[str(c) for c in choices],
                              default=str(choices[0]), help=helps[name])
    return p


# The longest delay each option may ask for: a day (enough for any test of patience; NaN and negatives refused).
MAX_DELAY = {"latency_ms": 86_400_000.0, "hang_seconds": 86_400.0, "burst_seconds": 86_400.0, "slow_ms": 86_400_000.0}


def _printable(text: str) -> str:
    """Text from the command line or a seed file, for the terminal: each character that is not printable (a
    control character, an undecodable byte) written as its escape."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def readings_from(args: argparse.Namespace) -> Readings:
    return Readings(**{name: type(choices[0])(getattr(args, name)) for name, choices in CHOICES.items()})


def create_server(app: EmulatorApp, host: str, port: int) -> WSGIServer:
    return make_server(host, port, app, server_class=_ThreadingServer, handler_class=_Handler)


def serve_in_thread(app: EmulatorApp, host: str = "127.0.0.1", port: int = 0) -> tuple[WSGIServer, str]:
    """Start serving `app` on a background thread; returns (server, base URL). Call server.shutdown()."""
    server = create_server(app, host, port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, f"http://{host}:{server.server_port}"


def main(argv: Sequence[str] | None = None, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        parser = build_parser()
        parser.out = out
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help
            return int(exc.code or 0)
        for name in ("fail_rate", "reset_rate", "timeout_rate", "throttle_rate", "slow_rate"):
            if not 0.0 <= getattr(args, name) <= 1.0:
                raise _UsageError(f"--{name.replace('_', '-')} must be between 0 and 1")
        if args.rate_limit is not None and args.rate_limit < 1:
            raise _UsageError("--rate-limit must be at least 1")
        for name in ("latency_ms", "hang_seconds", "burst_seconds", "slow_ms"):
            if not 0.0 <= getattr(args, name) <= MAX_DELAY[name]:
                raise _UsageError(f"--{name.replace('_', '-')} must be between 0 and {MAX_DELAY[name]:g}")
        if not 0 <= args.port <= 65535:
            raise _UsageError("--port must be between 0 and 65535")
        store = Store(args.project or ["default"], state_file=args.state, readings=readings_from(args))
        if args.seed:
            store.seed(json.loads(args.seed.read_text(encoding="utf-8")))
    except _UsageError as exc:
        err.write(f"error: {exc}\n")
        return 1
    except (OSError, ValueError, KeyError, TypeError) as exc:
        err.write(f"error: cannot start the emulator: {_printable(str(exc))}\n")
        return 1
    # A seed or state file of the wrong shape (a list where an object belongs, nesting past the recursion limit,
    # a metric LaunchDarkly's rules refuse): the file is the user's, so this is its error, not a crash.
    except (AttributeError, RecursionError, RuleError, NotFound) as exc:
        what = "seed" if args.seed else "state"
        err.write(f"error: cannot start the emulator: the {what} file cannot be used ({type(exc).__name__}: "
                  f"{_printable(str(exc)[:200])})\n")
        return 1
    # A seeded project can hold 100,000s of objects that live as long as the process: keep the cyclic
    # collector from walking them on every collection (it made large listings slower than linear).
    gc.collect()
    gc.freeze()

    def log(line: str) -> None:
        err.write(line + "\n")
        err.flush()

    app = EmulatorApp(store, token=args.token, reader_token=args.reader_token,
                      faults=Faults(latency_ms=args.latency_ms, fail_rate=args.fail_rate, rate_limit=args.rate_limit,
                                    reset_rate=args.reset_rate, timeout_rate=args.timeout_rate,
                                    hang_seconds=args.hang_seconds, throttle_rate=args.throttle_rate,
                                    throttle_header=args.throttle_header, burst_seconds=args.burst_seconds,
                                    slow_rate=args.slow_rate, slow_ms=args.slow_ms),
                      rng=random.Random(args.random_seed), log=log if args.verbose else None)
    try:
        server = create_server(app, args.host, args.port)
    except (OSError, OverflowError, UnicodeError, ValueError, TypeError) as exc:  # (a host that is no address)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        host = args.host if args.host.isascii() and args.host.isprintable() else ascii(args.host)
        err.write(f"error: cannot listen on {host}:{args.port}: {reason}\n")
        return 1

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    host = args.host if ":" not in args.host else f"[{args.host}]"
    out.write(f"listening on http://{host}:{server.server_port}\n")
    out.write(f"access token: {args.token}\n")
    if args.reader_token:
        out.write(f"reader token: {args.reader_token} (may only read: writes get 403)\n")
    out.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if store.state_file is not None:
            store.compact()  # a clean stop leaves the whole state in the snapshot
    err.write("emulator stopped\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
