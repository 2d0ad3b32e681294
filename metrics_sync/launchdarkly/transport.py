"""The connection to LaunchDarkly: an httpx transport of our own around httpcore, for one guarantee httpx's own
transport cannot give: a deadline for each whole request (connecting, headers and body), that also ends a
request in flight at most `core.cancel.GRACE` seconds after the run is cancelled.

httpx's timeouts bound each read: a server sending one byte a second would never time out. Here every network
stream checks the current request's deadline: a read waits in slices of at most `SLICE` seconds, so a read
blocked on a silent server notices a cancel within a slice. Connecting, the TLS handshake and writes wait in
one call bounded by the deadline: a write cut off part-way cannot be resumed, and requests are small.

Only public httpx and httpcore API: `httpcore.ConnectionPool`/`HTTPProxy` with our `network_backend`, and
httpcore's exceptions mapped to httpx's as httpx's own `HTTPTransport` maps them.
"""

from __future__ import annotations

import os
import ssl
import stat
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from metrics_sync.core.cancel import CancelSignal
from metrics_sync.core.errors import ConfigError

SLICE = 0.25  # seconds a read waits before it looks at the deadline (and the cancel signal) again
# Connections to LaunchDarkly at once, all kept open between requests: the pager's window may put
# rate_limits.MAX_IN_FLIGHT (32) page reads in flight, beside the other reads of plan and apply's workers
# (--parallelism, at most 64). Every connection stays open for the next request: at a distance a new one costs
# round trips (TCP, TLS) before the request is even sent.
MAX_CONNECTIONS = 64


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    """httpcore's exceptions as httpx raises them: httpx names each one as httpcore does (a ReadTimeout stays one)."""
    try:
        yield
    except Exception as exc:
        for kind in type(exc).__mro__:
            same = getattr(httpx, kind.__name__, None) if kind.__module__ == "httpcore" else None
            if isinstance(same, type) and issubclass(same, httpx.TransportError):
                raise same(str(exc)) from exc
        raise


@dataclass(frozen=True)
class NetworkSettings:
    proxy: str | None  # the proxy that tunnels TLS to LaunchDarkly, or None for a direct connection
    ca_file: str | None  # SSL_CERT_FILE: a CA bundle to trust instead of the default one
    ca_dir: str | None  # SSL_CERT_DIR


def network_settings(base_url: str, environ: Mapping[str, str]) -> NetworkSettings:
    """Proxy and CA settings from the environment, as curl and pip read them, for https only.

    HTTPS_PROXY (else ALL_PROXY) is used for https:// unless NO_PROXY names the host: the proxy sees only the
    TLS tunnel, so the token stays encrypted end to end. HTTP_PROXY is never used: plain http goes only to a
    loopback emulator, and a proxy would be a plain-text hop that sees the token."""
    def get(name: str) -> str | None:
        return environ.get(name) or environ.get(name.lower()) or None

    parts = urlsplit(base_url)
    if parts.scheme != "https":
        return NetworkSettings(None, None, None)
    host = (parts.hostname or "").lower()
    bypass = [entry.strip().lower().lstrip(".") for entry in (get("NO_PROXY") or "").split(",") if entry.strip()]
    skip = "*" in bypass or any(host == entry or host.endswith("." + entry) for entry in bypass)
    proxy = None if skip else get("HTTPS_PROXY") or get("ALL_PROXY")
    return NetworkSettings(proxy, get("SSL_CERT_FILE"), get("SSL_CERT_DIR"))


class _Deadlines(threading.local):
    """The monotonic time by which the current thread's request must be done (the thread that sends a request
    also reads its body)."""

    at: float | None = None

    def __init__(self, cancel: CancelSignal) -> None:
        self.cancel = cancel

    def left(self, timeout: float | None) -> float | None:
        """Seconds a wait may take: its own timeout, shortened to the request's deadline (and to the grace
        period once the run is cancelled); a request past its deadline times out."""
        if self.at is None:
            return timeout
        left = self.cancel.deadline(self.at) - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("past the deadline")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadlines: _Deadlines) -> None:
        self._inner, self._deadlines = inner, deadlines

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        ends = None if timeout is None else time.monotonic() + timeout
        while True:
            left = self._deadlines.left(None if ends is None else ends - time.monotonic())
            wait = SLICE if left is None else min(left, SLICE)
            try:
                return self._inner.read(max_bytes, wait)
            except httpcore.ReadTimeout:
                if wait == left:
                    raise  # the read's own timeout or the request's deadline, not just a slice
                # (a timed-out socket read consumed nothing: it is asked again)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadlines.left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        secured = self._inner.start_tls(ssl_context, server_hostname, self._deadlines.left(timeout))
        return _DeadlineStream(secured, self._deadlines)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    def __init__(self, deadlines: _Deadlines) -> None:
        self._deadlines = deadlines

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        try:
            stream = super().connect_tcp(host, port, self._deadlines.left(timeout), local_address, socket_options)
        except UnicodeError:  # a host name no DNS name can be made of (`a..b`, a label over 63 characters)
            raise httpcore.ConnectError(f"the host name {host!r} is not a valid DNS name") from None
        return _DeadlineStream(stream, self._deadlines)


class _Body(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes]) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._inner

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


class DeadlineTransport(httpx.BaseTransport):
    """Each request sent through it must be done, body read, within `timeout` seconds of being sent."""

    def __init__(self, settings: NetworkSettings, *, timeout: float, cancel: CancelSignal) -> None:
        self.timeout = timeout
        self._deadlines = deadlines = _Deadlines(cancel)
        try:  # the CA bundle of the environment given (never httpx's own reading of os.environ)
            _check_ca_paths(settings)
            self.ssl_context = (ssl.create_default_context(cafile=settings.ca_file, capath=settings.ca_dir)
                                if settings.ca_file or settings.ca_dir else httpx.create_ssl_context(trust_env=False))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot use the CA bundle of SSL_CERT_FILE/SSL_CERT_DIR: {exc.strerror or exc}",
                              "point SSL_CERT_FILE at a PEM file of CA certificates, or unset it") from None
        options: dict[str, Any] = {"ssl_context": self.ssl_context, "network_backend": _DeadlineBackend(deadlines),
                                   "max_connections": MAX_CONNECTIONS, "max_keepalive_connections": MAX_CONNECTIONS,
                                   "keepalive_expiry": 5.0}
        if settings.proxy:
            proxy = _proxy(settings.proxy)
            self._pool: httpcore.ConnectionPool = httpcore.HTTPProxy(
                proxy_url=httpcore.URL(scheme=proxy.url.raw_scheme, host=proxy.url.raw_host, port=proxy.url.port,
                                       target=proxy.url.raw_path),
                proxy_auth=proxy.raw_auth, proxy_headers=proxy.headers.raw, **options)
        else:
            self._pool = httpcore.ConnectionPool(**options)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        self._deadlines.at = time.monotonic() + self.timeout
        url = request.url
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=request.extensions)
        with _as_httpx_errors():
            response = self._pool.handle_request(core_request)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(status_code=response.status, headers=response.headers, stream=_Body(response.stream),
                              extensions=response.extensions)

    def close(self) -> None:
        self._pool.close()


def _check_ca_paths(settings: NetworkSettings) -> None:
    """SSL_CERT_FILE must name a regular file and SSL_CERT_DIR a folder: OpenSSL would wait forever for a FIFO's
    writer. Raises OSError."""
    if settings.ca_file and not stat.S_ISREG(os.stat(settings.ca_file).st_mode):
        raise OSError(0, "SSL_CERT_FILE is not a regular file")
    if settings.ca_dir and not stat.S_ISDIR(os.stat(settings.ca_dir).st_mode):
        raise OSError(0, "SSL_CERT_DIR is not a folder")


def _proxy(url: str) -> httpx.Proxy:
    try:
        proxy = httpx.Proxy(url)
    except (ValueError, httpx.InvalidURL):
        proxy = None
    if proxy is None or proxy.url.scheme not in ("http", "https"):  # (the URL may hold a password: not shown)
        raise ConfigError("the proxy of HTTPS_PROXY/ALL_PROXY is not an http:// or https:// URL",
                          "give e.g. http://proxy.example:3128, or unset the variable")
    return proxy
