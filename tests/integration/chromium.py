"""Headless Chromium for the integration tests (Debian's package, scripts/install_chromium.sh),
driven through the DevTools protocol: the ``chromium`` fixture (the browser's path, defined by
:func:`chromium_fixture`), :func:`browser` (a browser of its own profile, stopped whole
afterwards) and :class:`Page` (one tab: calls, JavaScript, waits, key presses, and the console
errors, exceptions and error log entries seen).

Used by test_report.py (the HTML report), test_review_page.py and test_review_e2e.py (the review
page). A test module takes the fixture by importing ``chromium_fixture`` (pytest finds it by its
name, ``chromium``, so test arguments do not shadow the import).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import websocket

from parrotwatch.stack.local import REPO_ROOT

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0"]


@pytest.fixture(scope="module", name="chromium")
def chromium_fixture() -> str:
    """The ``chromium`` fixture: the path of a headless Chromium, installed on first use."""
    done = subprocess.run(["bash", str(REPO_ROOT / "scripts/install_chromium.sh")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


class Page:
    """One Chromium tab over the DevTools protocol; ``problems`` gathers console errors,
    exceptions and error log entries (a CSP violation is one), ``loaded`` turns true on the
    page's load event."""

    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws, self.ids, self.problems, self.loaded = ws, iter(range(1, 10**6)), [], False
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.call(domain)

    def call(self, method: str, **params) -> dict:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                assert "error" not in msg, msg
                return msg["result"]
            self._note(msg)

    def _note(self, msg: dict) -> None:
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            self.problems.append(f"console.{p['type']}: {p['args']}")
        elif method == "Runtime.exceptionThrown":
            self.problems.append(f"exception: {p['exceptionDetails']}")
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            self.problems.append(f"log: {p['entry']['text']}")
        elif method == "Page.loadEventFired":
            self.loaded = True

    def wait_loaded(self) -> None:
        """Until the page's load event (the socket's timeout bounds each read)."""
        while not self.loaded:
            self._note(json.loads(self.ws.recv()))

    def settle(self, quiet_s: float = 0.5) -> None:
        """Take in the events that come within ``quiet_s`` of the last one (late console
        messages, if any)."""
        timeout = self.ws.gettimeout()
        self.ws.settimeout(quiet_s)
        try:
            while True:
                self._note(json.loads(self.ws.recv()))
        except websocket.WebSocketTimeoutException:
            pass
        finally:
            self.ws.settimeout(timeout)

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait(self, expression: str, what: str, timeout: float = 15):
        deadline = time.monotonic() + timeout
        guarded = f"(() => {{ try {{ return ({expression}); }} catch (e) {{ return null; }} }})()"
        while not (value := self.js(guarded)):
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.problems}"
            time.sleep(0.1)
        return value

    def press(self, key: str, *, shift: bool = False) -> None:
        """One key, as the keyboard sends it (keydown with its text, then keyup)."""
        named = {"Enter": ("Enter", 13, "\r")}
        code, vk, text = named.get(key) or (f"Key{key.upper()}" if key.isalpha()
                                            else f"Digit{key}", ord(key.upper()), key)
        base = {"key": key, "code": code, "windowsVirtualKeyCode": vk,
                "modifiers": 8 if shift else 0}
        self.call("Input.dispatchKeyEvent", type="keyDown", text=text, **base)
        self.call("Input.dispatchKeyEvent", type="keyUp", **base)


@contextlib.contextmanager
def browser(chromium: str, timeout: float = 30) -> Iterator[Callable[[str], Page]]:
    """A Chromium of its own throwaway profile; yields ``open_page(url) -> Page`` (its one tab,
    navigated to ``url``). ``timeout`` bounds its start and each DevTools read. Chromium runs in
    its own process group, stopped whole on exit."""
    # Chromium's helper processes can still write to the profile while it is removed: scratch
    # data, so a cleanup error is not the test's failure
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        log = Path(profile) / "chromium.log"  # a file, not a pipe: Chromium never blocks on it
        with log.open("w") as err:
            proc = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}/data",
                                     "about:blank"], stderr=err, start_new_session=True)
        try:
            deadline, port = time.monotonic() + max(timeout, 60), None
            while port is None:
                found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/",
                                  log.read_text())
                port = int(found.group(1)) if found else None
                assert proc.poll() is None, f"Chromium exited: {log.read_text()[-2000:]}"
                assert time.monotonic() < deadline, "Chromium did not open its DevTools port"
                time.sleep(0.1)
            target = next(t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json()
                          if t["type"] == "page")
            ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=timeout)

            def open_page(url: str) -> Page:
                page = Page(ws)
                page.call("Page.navigate", url=url)
                return page

            try:
                yield open_page
            finally:
                ws.close()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
