"""Secrets out of logs (receiver URLs, HMAC secrets) and always-storable error texts."""

from __future__ import annotations

import logging
import threading

import pytest

from parrotwatch.services.dispatcher.attempt import clean_error
from parrotwatch.services.dispatcher.config import parse_receivers
from parrotwatch.services.dispatcher.redact import redact_text, redact_url, storable_text
from parrotwatch.settings import Settings

SLACK = "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/s3cr3tT0kenValue"


@pytest.mark.parametrize(("url", "shown"), [
    (SLACK, "https://hooks.slack.com/***"),
    ("https://user:pa55word@example.com:8443/hook?token=abcdef123", "https://example.com:8443/***"),
    ("https://example.com/?key=zzzzzzzz", "https://example.com/***"),
    ("http://127.0.0.1:9093", "http://127.0.0.1:9093"),
    ("http://127.0.0.1:9093/", "http://127.0.0.1:9093"),
    ("http://[::1]:80/x", "http://[::1]:80/***"),
    ("not a url", "<url>"),
])
def test_redact_url_keeps_the_host_only(url, shown):
    assert redact_url(url) == shown


def test_redact_text_removes_the_url_its_parts_and_secrets():
    text = (f"ConnectError for {SLACK}: path /services/T0AAAAAAA/B0BBBBBBB/s3cr3tT0kenValue, "
            "token s3cr3tT0kenValue, hmac super-secret-key")
    out = redact_text(text, [SLACK], ["super-secret-key"])
    assert "s3cr3tT0kenValue" not in out and "super-secret-key" not in out
    assert "B0BBBBBBB" not in out and "https://hooks.slack.com/***" in out


def test_storable_text_escapes_nul_and_lone_surrogates_and_cuts():
    out = storable_text("a\x00b\ud800c" + "x" * 5000, limit=100)
    assert "\x00" not in out and out.startswith("a\\x00b\\ud800c")
    out.encode("utf-8")  # no UnicodeEncodeError
    assert len(out) <= 100 + 12


def test_clean_error_hides_a_webhook_secret(monkeypatch):
    monkeypatch.setenv("PW_UNIT_SECRET", "hmac-secret-value-123")
    config = parse_receivers({"receivers": [
        {"name": "w", "kind": "webhook", "url": "https://example.com/hook/tok-123456789",
         "secret_env": "PW_UNIT_SECRET"}]})
    text = clean_error("echo hmac-secret-value-123 from https://example.com/hook/tok-123456789 \x00",
                       config.receivers[0])
    assert "hmac-secret-value-123" not in text and "tok-123456789" not in text and "\x00" not in text


def test_startup_log_shows_no_receiver_secret(caplog, tmp_path):
    from parrotwatch.services.dispatcher.service import Dispatcher  # noqa: PLC0415 (imports kafka)

    config = parse_receivers({"receivers": [
        {"name": "chat", "kind": "slack", "url": SLACK},
        {"name": "hook", "kind": "webhook", "url": "https://u:p4ssw0rd@example.com/h?token=qwertyuiop",
         "secret": "inline-hmac-secret"}]})
    dispatcher = Dispatcher(Settings(home=tmp_path), config, "postgresql://127.0.0.1:1/none")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(Exception):  # noqa: B017, PT011 (no database here: it fails after logging)
        dispatcher.start()
    text = caplog.text
    assert "receiver chat: slack https://hooks.slack.com/*** " in text
    for secret in ("s3cr3tT0kenValue", "p4ssw0rd", "qwertyuiop", "inline-hmac-secret", "/services/"):
        assert secret not in text
    assert isinstance(dispatcher.stop_event, threading.Event)
