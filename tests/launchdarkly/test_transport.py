"""The transport (launchdarkly/transport.py): over real sockets on 127.0.0.1, a request in flight ends at most
`GRACE` seconds after the run is cancelled, whether the server stalls or drips; and the package reaches into no
private attribute of httpx or httpcore. (The whole-request deadline itself: test_hostile.py.)"""

from __future__ import annotations

import ast
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from metrics_sync.core.cancel import GRACE, Cancelled, CancelSignal
from metrics_sync.core.errors import ApiError
from metrics_sync.core.resources import METRIC
from metrics_sync.launchdarkly.client import Client
from tests.conftest import ROOT, TOKEN

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"


@contextmanager
def slow_server(mode: str) -> Iterator[tuple[str, list[bytes]]]:
    """A server that reads each request, then `stall`s (sends nothing) or `drip`s (the head of an answer, then one
    byte of its body every 0.1 s), until the test ends. Yields its URL and the requests it read."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    done = threading.Event()
    requests: list[bytes] = []

    def answer(connection: socket.socket) -> None:
        with connection:
            requests.append(connection.recv(65536))
            try:
                if mode == "drip":
                    connection.sendall(HEAD)
                while not done.wait(0.1):
                    if mode == "drip":
                        connection.sendall(b" ")
            except OSError:
                pass  # the client hung up

    def serve() -> None:
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=answer, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", requests
    finally:
        done.set()
        thread.join(5)
        listener.close()


@pytest.mark.parametrize("mode", ["stall", "drip"])
def test_a_read_in_flight_ends_within_the_grace_period_after_cancel(mode: str) -> None:
    cancel = CancelSignal()
    with slow_server(mode) as (url, requests), Client(url, TOKEN, timeout=60, cancel=cancel) as client:
        threading.Timer(0.3, cancel.set).start()
        started = time.monotonic()
        with pytest.raises(Cancelled):  # not retried: the read was cut off, and nothing more starts
            client.list_items(METRIC, "shop")
        assert time.monotonic() - started < 0.3 + GRACE + 1  # without the cancel: the 60 s of --timeout
    assert len(requests) == 1


def test_a_write_in_flight_is_cut_off_and_reported_as_unknown() -> None:
    cancel = CancelSignal()
    with slow_server("stall") as (url, requests), Client(url, TOKEN, timeout=60, cancel=cancel) as client:
        threading.Timer(0.3, cancel.set).start()
        started = time.monotonic()
        with pytest.raises(ApiError) as failure:
            client.create_item(METRIC, "shop", {"key": "m", "name": "M", "kind": "custom", "eventKey": "e"})
        assert time.monotonic() - started < 0.3 + GRACE + 1
    assert failure.value.ambiguous and failure.value.method == "POST"
    assert "the run was interrupted, and the request was cut off" in failure.value.api_message
    assert len(requests) == 1 and requests[0].startswith(b"POST ")  # not read back: nothing more is sent


def test_a_cancelled_run_does_not_connect() -> None:
    cancel = CancelSignal()
    cancel.set()
    with slow_server("stall") as (url, requests), Client(url, TOKEN, cancel=cancel) as client:
        with pytest.raises(Cancelled):
            client.list_items(METRIC, "shop")
        time.sleep(0.2)
    assert requests == []


def test_the_package_uses_no_private_attribute_of_httpx_or_httpcore() -> None:
    """A `_name` may be read only on `self`, and only when the class itself defines it (not one it inherits from
    httpx or httpcore); `getattr` and friends never name a private attribute."""
    for path in sorted((ROOT / "metrics_sync" / "launchdarkly").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Attribute) and _private(node.attr):
                assert isinstance(node.value, ast.Name) and node.value.id == "self", f"{where}: {ast.unparse(node)}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                    node.func.id in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) > 1:
                name = node.args[1]  # (a computed name: transport.py's httpx twin of an httpcore exception)
                private = isinstance(name, ast.Constant) and _private(str(name.value))
                assert not private, f"{where}: {ast.unparse(node)}"
            if isinstance(node, ast.ClassDef):
                own = _defined(node)
                for used in ast.walk(node):
                    if isinstance(used, ast.Attribute) and _private(used.attr):
                        assert used.attr in own, f"{path.name}:{used.lineno}: {node.name} reads inherited {used.attr}"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _defined(cls: ast.ClassDef) -> set[str]:
    """What a class defines itself: its methods and class attributes, and what its methods assign to `self`."""
    names = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    names |= {t.id for n in cls.body if isinstance(n, (ast.Assign, ast.AnnAssign))
              for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
    for node in ast.walk(cls):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) \
            else []
        for target in targets:
            for part in ast.walk(target):
                if isinstance(part, ast.Attribute) and isinstance(part.value, ast.Name) and part.value.id == "self":
                    names.add(part.attr)
    return names


def test_a_request_is_built_as_httpx_client_would_build_it() -> None:
    """The session hands requests to its transport itself (no httpx.Client in between): the URL, the headers
    (in order, a resource's own replacing the session's), the body and the timeouts are what httpx.Client, with
    the session's base URL, headers and timeout, builds."""
    import httpx

    from metrics_sync.launchdarkly.bodies import ACCEPT_ENCODING
    from metrics_sync.launchdarkly.session import API_VERSION, USER_AGENT, Session

    session = Session("https://app.launchdarkly.com", TOKEN, timeout=12.5)
    reference = httpx.Client(base_url=session.base_url, timeout=12.5, headers={
        "Authorization": TOKEN, "User-Agent": USER_AGENT, "LD-API-Version": API_VERSION,
        "Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING})
    cases: list[tuple[str, str, dict[str, str | int] | None, bytes | None, dict[str, str]]] = [
        ("GET", "/api/v2/metrics/shop", {"limit": 50, "filter": 'tags contains ["a b"]', "offset": 0}, None, {}),
        ("GET", "/api/v2/projects/shop/metric-groups", None, None, {"LD-API-Version": "beta"}),
        ("POST", "/api/v2/metrics/shop", None, b'{"key":"k"}', {"Content-Type": "application/json"}),
        ("PATCH", "/api/v2/metrics/shop/k%2Fx", {}, b"[]", {"Content-Type": "application/json"}),
    ]
    try:
        for method, path, params, content, headers in cases:
            ours = session._request(method, path, params, content, headers)
            theirs = reference.build_request(method, path, params=params, content=content, headers=headers)
            assert (ours.method, str(ours.url)) == (theirs.method, str(theirs.url))
            assert ours.headers.raw == theirs.headers.raw
            assert ours.read() == theirs.read()
            assert ours.extensions == theirs.extensions
    finally:
        session.close()
        reference.close()


def test_no_cookie_an_answer_sets_is_sent_back() -> None:
    """A server's Set-Cookie is not kept: the next request carries only the session's own headers."""
    import httpx

    from metrics_sync.launchdarkly.session import Session

    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={}, headers={"Set-Cookie": "tracker=1; Path=/"})

    session = Session("https://app.launchdarkly.com", TOKEN, transport=httpx.MockTransport(handle))
    session.request("GET", "/api/v2/metrics/shop", "/api/v2/metrics/{projectKey}")
    session.request("GET", "/api/v2/metrics/shop", "/api/v2/metrics/{projectKey}")
    session.close()
    assert [r.headers.get("cookie") for r in seen] == [None, None]
    with pytest.raises(RuntimeError, match="closed"):
        session.request("GET", "/api/v2/metrics/shop", "/api/v2/metrics/{projectKey}")
