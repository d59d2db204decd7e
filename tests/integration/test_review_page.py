"""The review page in headless Chromium (Debian's package, scripts/install_chromium.sh), driven
through the DevTools protocol against the API served by uvicorn on a free port: the reviewer
enters a key, labels with the keyboard shortcuts and submits; the label lands in PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from parrotwatch.stack.processes import free_port
from tests.integration.chromium import browser, chromium_fixture  # noqa: F401 (the chromium fixture)
from tests.integration.test_review_api import Queue, make_client, reviewer_key

pytestmark = pytest.mark.integration
XSS = '<img src=x id=injected onerror="document.title=\'owned\'">'


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
        page.call("Input.insertText", text=reviewer_key("alice"))
        page.press("Enter")
        page.wait("!document.getElementById('item').hidden", "the first item")
        assert page.js("document.getElementById('prompt').textContent") == XSS
        assert page.js("document.getElementById('injected') === null && document.title") \
            == "Parrotwatch review"  # shown as text: no element made from the prompt
        assert page.js("[...document.querySelectorAll('#sources li')].map(li => li.textContent)") \
            == ["source of 1"]
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
