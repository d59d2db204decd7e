"""One delivery attempt: a claimed outbox row -> an :class:`Outcome`. Never raises.

Whatever goes wrong in one attempt becomes that attempt's outcome, with its reason:

- the stored row cannot be turned into a request (an event that no longer validates, a
  receiver's secret gone from the environment, a payload bug): ``dead`` at once, since the same
  row would fail the same way on every retry and after every restart;
- no answer within ``timeout_s`` (the whole attempt: connect, send, the full answer, enforced by
  :func:`asyncio.timeout`, so neither a blackhole nor a receiver trickling bytes can hold a slot
  longer), a refused connection, a 5xx, 408/425/429: ``retry`` after the backoff, or after the
  receiver's ``Retry-After`` (RFC 9110, :func:`parrotwatch.services.dispatcher.retry.retry_after_s`) within
  the
  backoff cap;
- any other 4xx, or an unexpected error while sending: ``dead``.

Error texts are cut, made storable (:func:`~parrotwatch.services.dispatcher.redact.storable_text`) and
cleared of the receiver's URL secrets and HMAC secret before they are logged or stored.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import traceback
from dataclasses import dataclass

import httpx

from parrotwatch.contracts.events import AlertEventV1
from parrotwatch.services.dispatcher.config import DeliveryPolicy, Receiver, WebhookReceiver
from parrotwatch.services.dispatcher.outbox import Claimed
from parrotwatch.services.dispatcher.payloads import build_request
from parrotwatch.services.dispatcher.redact import redact_text, storable_text
from parrotwatch.services.dispatcher.retry import is_retryable, is_success, next_delay, retry_after_s

log = logging.getLogger(__name__)
MAX_ANSWER_BYTES = 64 * 1024  # read at most this much of an answer (for the error text)


@dataclass(frozen=True)
class Outcome:
    outcome: str  # delivered | retry | dead
    status_code: int | None
    error: str | None
    latency_ms: float
    delay_s: float | None = None
    why_dead: str = ""


def _secrets(receiver: Receiver) -> list[str]:
    if isinstance(receiver, WebhookReceiver):
        try:
            return [receiver.secret_value()]
        except Exception:  # noqa: BLE001 (a missing secret is reported by build_request)
            return []
    return []


def clean_error(text: str, receiver: Receiver, limit: int = 1000) -> str:
    """An error text fit for logs and the database: no URL secret, no HMAC secret, storable."""
    return storable_text(redact_text(text, [receiver.url], _secrets(receiver)), limit)


async def attempt(client: httpx.AsyncClient, receiver: Receiver, row: Claimed,
                  policy: DeliveryPolicy, rng: random.Random) -> Outcome:
    """Send ``row`` to ``receiver`` once and say what happened (see the module docstring)."""
    number = row.attempts + 1
    try:
        event = AlertEventV1.model_validate(row.event)
        request = build_request(receiver, event, row.key)
    except Exception as exc:  # noqa: BLE001 (a row we cannot send is dead, never a crash)
        error = clean_error(f"cannot build the request: {type(exc).__name__}: {exc}", receiver)
        return Outcome("dead", None, error, 0.0, why_dead="cannot build the request")
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    started = time.perf_counter()
    try:
        async with asyncio.timeout(receiver.timeout_s):
            async with client.stream(
                    "POST", request.url, content=request.body,
                    headers=request.headers | {"X-Parrotwatch-Delivery-Attempt": str(number)},
                    timeout=httpx.Timeout(receiver.timeout_s, connect=receiver.connect_timeout_s),
            ) as response:
                status = response.status_code
                if not is_success(status):
                    answer = await _head(response)
                    error = f"HTTP {status}: {answer.decode('utf-8', 'replace')[:500]}"
                    retry_after = retry_after_s(response.headers.get("Retry-After"))
    except TimeoutError:
        status, error = None, f"Timeout: no complete answer within {receiver.timeout_s:g} s"
    except httpx.HTTPError as exc:
        status, error = None, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 (a bug or an odd answer must not stop the dispatcher)
        latency_ms = (time.perf_counter() - started) * 1000
        error = clean_error(f"unexpected error while sending: {type(exc).__name__}: {exc}", receiver)
        frame = traceback.extract_tb(exc.__traceback__)[-1]  # where, without a message to leak
        log.error("delivery %s to %s: %s (at %s:%d)", row.key, receiver.name, error,
                  frame.filename, frame.lineno)
        return Outcome("dead", status, error, latency_ms, why_dead="unexpected error")
    latency_ms = (time.perf_counter() - started) * 1000
    if status is not None and is_success(status):
        return Outcome("delivered", status, None, latency_ms)
    error = clean_error(error or "", receiver)
    if not is_retryable(status):
        return Outcome("dead", status, error, latency_ms, why_dead="rejected, not retryable")
    if number >= policy.max_attempts:
        return Outcome("dead", status, error, latency_ms, why_dead="out of attempts")
    delay = next_delay(number, policy.backoff_base_s, policy.backoff_cap_s, retry_after, rng)
    return Outcome("retry", status, error, latency_ms, delay_s=delay)


async def _head(response: httpx.Response) -> bytes:
    """The first :data:`MAX_ANSWER_BYTES` of an answer's body (the rest is never read)."""
    data = b""
    async for chunk in response.aiter_raw():
        data += chunk
        if len(data) >= MAX_ANSWER_BYTES:
            break
    return data[:MAX_ANSWER_BYTES]
