"""The review page in headless Chromium (Debian's package, scripts/install_chromium.sh), driven
through the DevTools protocol against the API served by uvicorn on a free port: the reviewer
enters a key, labels with the keyboard shortcuts and submits; the label lands in PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
import websocket

from parrotwatch.stack.local import REPO_ROOT
from parrotwatch.stack.processes import free_port
from tests.integration.test_review_api import Queue, make_client

pytestmark = pytest.mark.integration
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0"]
XSS = '<img src=x id=injected onerror="document.title=\'owned\'">'


@pytest.fixture(scope="module")
def chromium() -> str:
    done = subprocess.run(["bash", str(REPO_ROOT / "scripts/install_chromium.sh")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture
def served(namespace) -> Iterator[str]:
    """The API (reviewers alice, bob, carol) under uvicorn in a thread; its base URL."""
    app = make_client(namespace).app
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(),
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(10)


class Page:
    """One Chromium tab over the DevTools protocol; ``problems`` gathers console errors,
    exceptions and error log entries (a CSP violation is one)."""

    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws, self.ids, self.problems = ws, iter(range(1, 10**6)), []
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
            method_in, p = msg.get("method"), msg.get("params", {})
            if method_in == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                self.problems.append(f"console.{p['type']}: {p['args']}")
            elif method_in == "Runtime.exceptionThrown":
                self.problems.append(f"exception: {p['exceptionDetails']}")
            elif method_in == "Log.entryAdded" and p["entry"]["level"] == "error":
                self.problems.append(f"log: {p['entry']['text']}")

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
def browser(chromium: str) -> Iterator[Callable[[str], Page]]:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        log = Path(profile) / "chromium.log"  # a file, not a pipe: Chromium never blocks on it
        with log.open("w") as err:
            proc = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}/data",
                                     "about:blank"], stderr=err, start_new_session=True)
        try:
            deadline, port = time.monotonic() + 60, None
            while port is None:
                found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/",
                                  log.read_text())
                port = int(found.group(1)) if found else None
                assert proc.poll() is None, f"Chromium exited: {log.read_text()[-2000:]}"
                assert time.monotonic() < deadline, "Chromium did not open its DevTools port"
                time.sleep(0.1)
            target = next(t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json()
                          if t["type"] == "page")
            ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=30)

            def open_page(url: str) -> Page:
                page = Page(ws)
                page.call("Page.navigate", url=url)
                return page

            yield open_page
            ws.close()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)


def test_a_label_entered_with_shortcuts_lands_in_postgres(chromium, served, namespace):
    queue = Queue(namespace)
    first = queue.add()
    namespace_sql = queue.execute
    namespace_sql("UPDATE review_texts SET prompt = %s WHERE request_id = 'req-1'", XSS)
    second = queue.add()

    with browser(chromium) as open_page:
        page = open_page(f"{served}/review")
        page.wait("!document.getElementById('key-form').hidden", "the key form")
        page.js("document.getElementById('key').focus()")
        page.call("Input.insertText", text="alice-key")
        page.press("Enter")
        page.wait("!document.getElementById('item').hidden", "the first item")
        assert page.js("document.getElementById('prompt').textContent") == XSS
        assert page.js("document.getElementById('injected') === null && document.title") \
            == "Parrotwatch review"  # shown as text: no element made from the prompt
        assert page.js("document.getElementById('sources').textContent") == "[doc-1] source of 1"
        assert page.js("document.getElementById('scores-section').hidden") is True
        assert page.js("document.getElementById('progress').textContent") \
            == "You labelled 0 · 2 left for you"

        page.js("document.activeElement.blur()")
        page.press("t")               # toxic: yes
        page.press("H", shift=True)   # hallucinated: no
        page.press("o")               # off topic: yes
        page.press("4")               # helpful: 4
        page.js("document.getElementById('comment').focus()")
        page.call("Input.insertText", text="fine but ")
        page.press("s")  # typed into the comment, not a skip
        page.press("Enter")  # a new line in the comment, not a submit
        assert page.js("document.getElementById('comment').value") == "fine but s\n"
        assert queue.labels() == []
        page.js("document.activeElement.blur()")
        page.press("Enter")

        page.wait(f"document.getElementById('meta').textContent.includes('item {second} ')",
                  "the next item")
        assert queue.labels() == [(first, "alice",
                                   {"toxic": True, "hallucinated": False, "off_topic": True,
                                    "helpful": 4}, "fine but s")]
        assert "You labelled 1" in page.js("document.getElementById('progress').textContent")

        page.press("t")
        page.press("Enter")  # three labels missing: the server's refusal is shown
        message = page.wait("document.getElementById('message').className !== 'ok' && "
                            "document.getElementById('message').textContent", "the refusal")
        assert "label 'hallucinated' is missing" in message
        assert not page.js("document.getElementById('message').hidden")
        assert len(queue.labels()) == 1

        page.press("s")
        page.wait("!document.getElementById('empty').hidden", "the end of the queue")
        assert namespace.scalar("SELECT reviewer FROM review_skips WHERE item_id = %s",
                                second) == "alice"
        # no script error, no CSP violation; Chromium logs the refused submit itself
        assert [p for p in page.problems if "status of 422" not in p] == []
