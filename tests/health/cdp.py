"""A small Chrome DevTools Protocol client for the browser tests: headless chromium started with
`--remote-debugging-pipe`, commands written as NUL-terminated JSON on its fd 3, replies and events read from its
fd 4. No websocket library; every read is bounded by a deadline and the browser is always killed on exit.

Only what the tests need: one page target (flattened session), commands with replies, and the events seen so
far (console messages, exceptions, dialogs, CSP reports) kept for the test to assert on.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
DEADLINE = 30.0  # seconds for any one reply or awaited event
MAX_MESSAGE = 64 * 1024 * 1024  # a screenshot of a tall page is a few MB of base64


class CdpError(Exception):
    """The browser answered a command with an error, did not answer in time, or went away."""


class Browser:
    """One headless chromium and one page in it. Use `open_browser()`, which always kills the process."""

    def __init__(self, process: subprocess.Popen[bytes], to_browser: int, from_browser: int) -> None:
        self._process = process
        self._out = to_browser
        self._in = from_browser
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None
        self.events: list[dict[str, Any]] = []  # every event received, in order

    # --- the wire ------------------------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode() + b"\0"
        deadline = time.monotonic() + DEADLINE
        while data:
            _, ready, _ = select.select([], [self._out], [], max(deadline - time.monotonic(), 0))
            if not ready:
                raise CdpError("the browser did not take a command in time")
            with suppress(BlockingIOError):  # the pipe filled up between select and write: wait again
                data = data[os.write(self._out, data):]

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError("no message from the browser before the deadline")
            ready, _, _ = select.select([self._in], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise CdpError(f"the browser closed its pipe (exit {self._process.poll()})")
            self._buffer += chunk
            if len(self._buffer) > MAX_MESSAGE:
                raise CdpError("a message from the browser is larger than the test allows")
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(self, method: str, params: dict[str, Any] | None = None, *, browser_level: bool = False,
             timeout: float = DEADLINE) -> dict[str, Any]:
        """Send a command (to the page's session unless `browser_level`) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session is not None and not browser_level:
            message["sessionId"] = self.session
        self._send(message)
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CdpError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, method: str, match: Callable[[dict[str, Any]], bool] = lambda _: True, *,
                 since: int = 0, timeout: float = DEADLINE) -> dict[str, Any]:
        """The first event `method` whose params match: among those received from index `since` on, else the next
        to come."""
        for event in self.events[since:]:
            if event["method"] == method and match(event.get("params", {})):
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._receive(deadline)
            if "method" in event:
                self.events.append(event)
                if event["method"] == method and match(event.get("params", {})):
                    return event

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive within `seconds` (console messages come asynchronously)."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                event = self._receive(deadline)
                if "method" in event:
                    self.events.append(event)
        except CdpError:
            if self._process.poll() is not None:
                raise

    def of(self, method: str) -> list[dict[str, Any]]:
        return [e.get("params", {}) for e in self.events if e["method"] == method]

    # --- the page ------------------------------------------------------------------------------------------

    def attach(self) -> None:
        """Attach to the page target the browser opened (one flattened session), and turn on the domains."""
        targets = self.send("Target.getTargets", browser_level=True)["targetInfos"]
        page = next((t for t in targets if t["type"] == "page"), None)
        target = page["targetId"] if page else self.send("Target.createTarget", {"url": "about:blank"},
                                                         browser_level=True)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 browser_level=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    def navigate(self, url: str) -> None:
        since = len(self.events)
        frame = self.send("Page.navigate", {"url": url})
        if frame.get("errorText"):
            raise CdpError(f"navigating to {url}: {frame['errorText']}")
        if "loaderId" in frame:
            self.wait_for("Page.loadEventFired", since=since)
        else:  # only the fragment changed: the same document, no load
            self.wait_for("Page.navigatedWithinDocument", since=since)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (returned by value); a thrown error fails."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise CdpError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def center(self, selector: str) -> tuple[float, float]:
        """The middle of the element's box, scrolled into view, in CSS pixels of the viewport."""
        box = self.evaluate(f"""(() => {{ const el = document.querySelector({json.dumps(selector)});
            el.scrollIntoView({{block: 'center'}}); const r = el.getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
        return float(box[0]), float(box[1])

    def click(self, selector: str) -> None:
        x, y = self.center(selector)
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def key(self, key: str, code: str, key_code: int) -> None:
        """Press and release one non-text key (ArrowDown, Enter, Backspace...)."""
        for kind in ("rawKeyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": code,
                                                 "windowsVirtualKeyCode": key_code})

    def type(self, text: str) -> None:
        """Type `text` into the focused element one character at a time, as key events."""
        for char in text:
            self.send("Input.dispatchKeyEvent", {"type": "keyDown", "text": char, "key": char,
                                                 "unmodifiedText": char})
            self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": char})

    def screenshot(self) -> bytes:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        return base64.b64decode(data)


def chromium() -> str | None:
    found = shutil.which("chromium")
    return found or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@contextmanager
def open_browser(executable: str, *, width: int = 1280, height: int = 900) -> Iterator[Browser]:
    """Headless chromium on a fresh profile with the DevTools pipe; killed (its whole process group) and its
    profile removed on exit, whatever happened."""
    profile = tempfile.mkdtemp(prefix="cdp-profile-")
    ends: list[int] = []
    process: subprocess.Popen[bytes] | None = None
    try:
        commands_read, commands_write = os.pipe()  # the browser reads commands on its fd 3
        replies_read, replies_write = os.pipe()  # and writes replies and events on its fd 4
        ends += [commands_read, commands_write, replies_read, replies_write]
        # The child's ends moved to 10 or above, so bash (dash takes one digit only) puts them at 3 and 4
        # without overwriting one with the other; pass_fds keeps them open in the child.
        child_in, child_out = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (commands_read, replies_write))
        ends += [child_in, child_out]
        process = subprocess.Popen(
            ["/bin/bash", "-c", f'exec "$0" "$@" 3<&{child_in} 4>&{child_out}', executable, *FLAGS,
             "--remote-debugging-pipe", f"--user-data-dir={profile}", f"--window-size={width},{height}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(child_in, child_out), start_new_session=True)
        for fd in (commands_read, replies_write, child_in, child_out):  # the browser's ends: the parent lets go
            os.close(fd)
            ends.remove(fd)
        os.set_blocking(commands_write, False)  # a write takes what fits and returns: `_send` stays bounded
        browser = Browser(process, commands_write, replies_read)
        browser.attach()
        yield browser
    finally:
        if process is not None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the browser and its renderers: its own session
            process.wait(timeout=DEADLINE)
        for fd in ends:
            os.close(fd)
        shutil.rmtree(profile, ignore_errors=True)
