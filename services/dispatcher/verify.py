"""Sign and verify Parrotwatch webhook deliveries (standard library only: receivers may copy it).

Every generic-webhook delivery carries two headers::

    X-Parrotwatch-Timestamp: 1767225600
    X-Parrotwatch-Signature: v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

``v1`` is the lowercase hex HMAC-SHA256, keyed with the receiver's shared secret (UTF-8), of
``f"{timestamp}.".encode() + body`` where ``body`` is the exact raw request body (bytes) and
``timestamp`` the header's decimal Unix seconds (the Stripe scheme). During a secret rotation the
header may carry several comma-separated ``v1=`` values; one valid value is enough.

A receiver should verify before parsing the body::

    from parrotwatch.services.dispatcher.verify import SignatureError, verify_signature
    try:
        verify_signature(SECRET, request.headers["X-Parrotwatch-Timestamp"],
                         request.headers["X-Parrotwatch-Signature"], raw_body)
    except SignatureError as exc:
        return 401, str(exc)

and then deduplicate on the ``Idempotency-Key`` header: a delivery is retried until the receiver
answers 2xx, so the same key can arrive more than once after a timeout or a crash.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Parrotwatch-Timestamp"
SIGNATURE_HEADER = "X-Parrotwatch-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300


class SignatureError(ValueError):
    """The delivery is not authentic or is outside the replay window; the message says which."""


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def compute_signature(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``b"<timestamp>." + body``."""
    return hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, now: float | None = None) -> dict[str, str]:
    """The two signature headers for ``body`` at ``now`` (Unix seconds; default: the clock)."""
    timestamp = int(time.time() if now is None else now)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{SCHEME}={compute_signature(secret, timestamp, body)}",
    }


def verify_signature(
    secret: str | bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Return if ``signature_header`` signs ``body`` at a timestamp within ``tolerance_s`` of
    ``now``; raise :class:`SignatureError` naming the problem otherwise.

    The timestamp is part of the signed text, so an attacker cannot refresh it on a captured
    request: the window bounds replays. Comparisons are constant-time.
    """
    if not timestamp_header:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} header")
    if not signature_header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    try:
        timestamp = int(timestamp_header.strip())
    except ValueError:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} must be integer Unix seconds, got {timestamp_header[:40]!r}"
        ) from None
    candidates = []
    for part in signature_header.split(","):
        scheme, sep, value = part.strip().partition("=")
        if sep and scheme == SCHEME:
            candidates.append(value.strip())
    if not candidates:
        raise SignatureError(f"{SIGNATURE_HEADER} has no '{SCHEME}=<hex>' value")
    expected = compute_signature(secret, timestamp, body)
    matched = False
    for value in candidates:  # check all, so timing does not reveal which one matched
        matched |= hmac.compare_digest(expected.encode(), value.lower().encode("ascii", "replace"))
    if not matched:
        raise SignatureError("signature mismatch: wrong secret, or the body or timestamp was altered")
    age = (time.time() if now is None else now) - timestamp
    if abs(age) > tolerance_s:
        raise SignatureError(
            f"timestamp {timestamp} is {age:+.0f} s from now, outside the {tolerance_s:g} s replay "
            "window (a replayed request, or the clocks disagree)"
        )
