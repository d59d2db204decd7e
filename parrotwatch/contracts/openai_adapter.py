"""Map an OpenAI chat-completion request/response pair onto an inference event v1.

The layout is the OpenAI Chat Completions API (``POST /v1/chat/completions``,
https://platform.openai.com/docs/api-reference/chat): the request body carries ``model`` and
``messages`` (``[{role, content}, ...]``); the response body carries ``id``, ``created`` (Unix
seconds), ``model``, ``choices[i].message.content``, ``choices[i].finish_reason``,
``choices[i].logprobs.content`` (``[{token, logprob, bytes, top_logprobs: [{token, logprob,
bytes}]}]``, present when the request set ``logprobs: true``) and ``usage.prompt_tokens`` /
``usage.completion_tokens``, renamed here to the OTel ``gen_ai.usage.input_tokens`` /
``output_tokens``.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from parrotwatch.contracts.events import InferenceEventV1


def _message_text(choice: Any, index: int) -> str:
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise ValueError(f"response choices[{index}] has no 'message' object")
    content = message.get("content")
    if content is None:  # a tool call or a refusal: the call happened, its text may be empty
        content = message.get("refusal") or ""
    if not isinstance(content, str):
        raise ValueError(
            f"response choices[{index}].message.content must be a string, "
            f"got {type(content).__name__}"
        )
    return content


def from_openai_chat(
    request: dict[str, Any],
    response: dict[str, Any],
    *,
    latency_ms: float | None = None,
    timestamp: datetime | None = None,
    app: str = "default",
    request_id: str | None = None,
) -> InferenceEventV1:
    """Build the :class:`InferenceEventV1` of one chat completion.

    ``request_id`` defaults to the response ``id``; ``timestamp`` (timezone-aware) to the
    response ``created`` in UTC; ``model`` to the response ``model`` (the resolved snapshot),
    else the request's. ``choices[0]`` is the response; further choices (``n > 1``) become
    ``samples``. Raises ``ValueError`` naming what is missing; a field that breaks the contract
    raises pydantic's ``ValidationError`` (also a ``ValueError``) naming the field.
    """
    if not isinstance(request, dict) or not isinstance(response, dict):
        raise ValueError("request and response must be the decoded JSON objects (dicts)")
    messages = request.get("messages")
    if not isinstance(messages, list):
        raise ValueError("request has no 'messages' list (is it a Chat Completions request?)")
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ValueError("response has no choices (empty or missing 'choices')")
    request_id = request_id or response.get("id")
    if not request_id:
        raise ValueError("response has no 'id'; pass request_id=...")
    if timestamp is None:
        created = response.get("created")
        if not isinstance(created, int | float) or isinstance(created, bool):
            raise ValueError("response has no numeric 'created'; pass timestamp=...")
        timestamp = datetime.fromtimestamp(created, tz=UTC)
    model = response.get("model") or request.get("model")
    if not model:
        raise ValueError("neither the response nor the request names a 'model'")

    first = choices[0]
    text = _message_text(first, 0)
    logprobs = (first.get("logprobs") or {}).get("content")
    usage = response.get("usage") or {}
    event: dict[str, Any] = {
        "request_id": request_id,
        "timestamp": timestamp,
        "model": model,
        "app": app,
        "messages": copy.deepcopy(messages),
        "response": text,
        "logprobs": copy.deepcopy(logprobs) if logprobs else None,
        "latency_ms": latency_ms,
        "finish_reason": first.get("finish_reason"),
        "usage": {
            "input_tokens": usage.get("prompt_tokens"),
            "output_tokens": usage.get("completion_tokens"),
        }
        if usage
        else None,
    }
    if len(choices) > 1:
        event["samples"] = [_message_text(c, i) for i, c in enumerate(choices[1:], start=1)]
    return InferenceEventV1.model_validate(event)
