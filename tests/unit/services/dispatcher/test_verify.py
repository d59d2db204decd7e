"""Webhook signatures: round trip, tampering, replay window (no network)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from parrotwatch.services.dispatcher.verify import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    sign,
    verify_signature,
)

SECRET = "s3cret-shared-key"
BODY = b'{"alert_id":"a1","status":"firing","summary":"p99 latency 3x baseline"}'
NOW = 1_767_225_600.0


def test_round_trip_and_documented_formula():
    headers = sign(SECRET, BODY, now=NOW)
    assert headers[TIMESTAMP_HEADER] == "1767225600"
    expected = hmac.new(SECRET.encode(), b"1767225600." + BODY, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == f"v1={expected}"
    verify_signature(SECRET, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], BODY, now=NOW + 10)


@pytest.mark.parametrize("tamper", [
    lambda b: b.replace(b"firing", b"resolvd"),
    lambda b: b + b" ",
    lambda b: b[:-1],
])
def test_tampered_body_is_rejected(tamper):
    headers = sign(SECRET, BODY, now=NOW)
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify_signature(SECRET, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], tamper(BODY), now=NOW)


def test_wrong_secret_and_refreshed_timestamp_are_rejected():
    headers = sign(SECRET, BODY, now=NOW)
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify_signature("other", headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], BODY, now=NOW)
    # A replayer cannot move the timestamp into the window: it is part of the signed text.
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify_signature(SECRET, str(int(NOW) + 3600), headers[SIGNATURE_HEADER], BODY, now=NOW + 3600)


def test_old_and_future_timestamps_are_rejected():
    headers = sign(SECRET, BODY, now=NOW)
    args = (SECRET, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], BODY)
    verify_signature(*args, now=NOW + 299)
    with pytest.raises(SignatureError, match="outside the 300 s replay window"):
        verify_signature(*args, now=NOW + 301)
    with pytest.raises(SignatureError, match="replay window"):
        verify_signature(*args, now=NOW - 400)
    with pytest.raises(SignatureError, match="outside the 30 s"):
        verify_signature(*args, tolerance_s=30, now=NOW + 31)


def test_rotation_any_v1_value_may_match():
    good = sign(SECRET, BODY, now=NOW)[SIGNATURE_HEADER]
    old = sign("old-secret", BODY, now=NOW)[SIGNATURE_HEADER]
    verify_signature(SECRET, str(int(NOW)), f"{old}, {good}", BODY, now=NOW)
    with pytest.raises(SignatureError):
        verify_signature(SECRET, str(int(NOW)), old, BODY, now=NOW)


@pytest.mark.parametrize(("timestamp", "signature", "message"), [
    (None, "v1=00", "missing X-Parrotwatch-Timestamp"),
    ("1767225600", "", "missing X-Parrotwatch-Signature"),
    ("yesterday", "v1=00", "integer Unix seconds"),
    ("1767225600", "v0=abc", "no 'v1=<hex>' value"),
    ("1767225600", "v1=not-hex-\u00e9", "signature mismatch"),
])
def test_malformed_headers_name_the_problem(timestamp, signature, message):
    with pytest.raises(SignatureError, match=message):
        verify_signature(SECRET, timestamp, signature, BODY, now=NOW)


def test_bytes_secret_equals_str_secret():
    headers = sign(SECRET.encode(), BODY, now=NOW)
    verify_signature(SECRET, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], BODY, now=NOW)
