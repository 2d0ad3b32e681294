"""Shared test helpers: run the CLI in-process, and keep every test off the network."""

from __future__ import annotations

import io
import random
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from metrics_sync.cli.main import main
from metrics_sync.core.runtime import Runtime
from metrics_sync.emulator import EmulatorApp, Store
from metrics_sync.emulator.readings import Readings
from metrics_sync.emulator.server import serve_in_thread
from metrics_sync.launchdarkly.client import Client

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@dataclass
class Result:
    code: int
    out: str
    err: str


class _TTYStringIO(io.StringIO):
    def __init__(self, text: str = "", tty: bool = False) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def run_cli(
    *argv: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: str = "",
    tty: bool = False,
    transport: Any = None,
    clock: Any = None,
    real_time: bool = False,
) -> Result:
    """Run `metrics-sync argv...` in-process with captured output, in `cwd` (default: the test's own
    temporary working directory)."""
    out, err = _TTYStringIO(tty=tty), _TTYStringIO(tty=tty)
    runtime = Runtime(
        stdout=out,
        stderr=err,
        stdin=_TTYStringIO(stdin, tty=tty),
        environ=dict(env or {}),
        cwd=cwd or Path.cwd(),
        transport=transport,
        sleep=time.sleep if real_time else clock.sleep if clock is not None else (lambda seconds: None),
        clock=clock if clock is not None else time.time,
    )
    code = main(list(argv), runtime)
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def _own_working_directory(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own empty working directory: a test that forgets to say where its files are
    cannot read or litter the checkout."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail loudly if a test tries to reach anything but loopback."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") and not host.startswith("/"):
            raise AssertionError(f"test tried to connect to {address!r}; tests must stay on loopback")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield


# --- emulator and client fixtures -------------------------------------------------------------

TOKEN = "api-0123456789abcdef-secret-token"


class FakeClock:
    """A clock the tests move by hand; `sleep` advances it instead of waiting."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


@pytest.fixture
def store() -> Store:
    return Store(["shop"], rng=random.Random(1))


@pytest.fixture
def emulator(store: Store) -> EmulatorApp:
    return EmulatorApp(store, token=TOKEN, rng=random.Random(2))


def make_client(app: Any, **kwargs: Any) -> Client:
    """A client talking to a WSGI app in-process (no sockets), or through `transport=` when given."""
    kwargs.setdefault("sleep", lambda s: None)
    kwargs.setdefault("transport", httpx.WSGITransport(app=app))
    return Client("http://127.0.0.1", TOKEN, **kwargs)


@contextmanager
def served(app: EmulatorApp) -> Iterator[str]:
    """The app on a real loopback socket for the duration (for tests that run the CLI in a subprocess or need
    real connections); its URL."""
    server, url = serve_in_thread(app)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def client(emulator: EmulatorApp) -> Iterator[Client]:
    with make_client(emulator) as c:
        yield c


ENV = {"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": "http://127.0.0.1:8765"}


class Shop:
    """A copy of examples/ in a temp folder, and an in-process emulator serving project `shop`."""

    def __init__(self, root: Path, readings: Readings | None = None) -> None:
        self.root = root
        shutil.copytree(ROOT / "examples", root, ignore=shutil.ignore_patterns("*.py", "github"))
        self.store = Store(["shop"], readings=readings)
        self.app = EmulatorApp(self.store, token=TOKEN)
        self.transport: httpx.BaseTransport = httpx.WSGITransport(app=self.app)

    def run(self, *args: str, tty: bool = False, stdin: str = "", env: dict[str, str] | None = None) -> Result:
        return run_cli(*args, env={**ENV, **(env or {})}, cwd=self.root, tty=tty, stdin=stdin,
                       transport=self.transport)

    def ui_edit(self, key: str, ops: list[dict[str, object]]) -> None:
        self.store.patch("shop", key, ops)

    def edit_yaml(self, file: str, old: str, new: str) -> None:
        path = self.root / "metrics" / file
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))


@pytest.fixture
def shop(tmp_path: Path) -> Shop:
    return Shop(tmp_path / "repo")


class Answering(httpx.BaseTransport):
    """A transport that answers requests whose path `matches` with `answer` (a hostile or refusing LaunchDarkly)
    and passes every other request to `inner` (the in-process emulator)."""

    def __init__(self, inner: httpx.BaseTransport, matches: Callable[[str], bool], answer: httpx.Response) -> None:
        self.inner, self.matches, self.answer = inner, matches, answer

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.matches(request.url.path):
            return httpx.Response(self.answer.status_code, headers=self.answer.headers, content=self.answer.content)
        return self.inner.handle_request(request)
