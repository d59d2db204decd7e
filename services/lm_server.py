"""A local causal LM behind the OpenAI-compatible legacy completions API (``parrotwatch testbed serve``).

It answers the requests :mod:`parrotwatch.audits.endpoint_lm` makes of vLLM or a llama.cpp server,
so audits
of a model "behind an endpoint" run end to end here without a GPU serving stack:

* ``POST /v1/completions`` with ``prompt`` (a string or a list), ``max_tokens`` (greedy decoding only:
  ``temperature`` must be 0 when ``max_tokens`` > 0; a prompt longer than the context leaves the
  generation its last context - max_tokens tokens, while its echo is scored whole in sliding windows),
  ``echo`` and ``logprobs`` (0: the chosen tokens'
  log-probabilities, no alternatives). With ``echo`` the prompt's tokens come first; the BOS token the
  model prepends is echoed as an empty string with a null log-probability, as vLLM echoes the BOS of
  Llama models. ``text_offset`` holds each token's start in the prompt (tokenizer offsets) and, for
  generated tokens, in prompt + completion text;
* ``POST /v1/chat/completions`` (the API the official OpenAI client and its instrumentations call):
  ``messages`` are rendered as one prompt (the tokenizer's chat template when it has one, else
  ``role: content`` lines and ``assistant:``), continued greedily for ``max_tokens`` (or
  ``max_completion_tokens``); ``n`` 1; ``logprobs`` true gives the chosen tokens' log-probabilities
  (``top_logprobs`` 0); ``stream`` true answers server-sent events, one chunk per token, then
  ``[DONE]``, with a usage chunk when ``stream_options.include_usage`` (the OpenAI streaming
  format);
* ``GET /v1/models``.

Scores are :meth:`parrotwatch.detectors.models.causal_lm.CausalLMScorer.score_token_ids` of the prompt's
ids (plus the
generated ids): a scorer of the same model and spec reads the same numbers locally.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Annotated, Literal

import orjson
from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    prompt: str | Annotated[list[str], Field(min_length=1, max_length=256)]
    max_tokens: int = Field(default=16, ge=0, le=512)
    echo: bool = False
    logprobs: Literal[0] | None = Field(
        default=None, description="0 returns the chosen tokens' log-probabilities; alternatives (top-k) "
                                  "are not served")
    temperature: float = Field(default=1.0, ge=0)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str
    content: str | list[dict] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=256)]
    max_tokens: int | None = Field(default=None, ge=1, le=512)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=512)
    n: Literal[1] = 1
    logprobs: bool = False
    top_logprobs: Literal[0] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float = Field(default=1.0, ge=0)


def _text(content) -> str:
    """A message's text: a string, or the text parts of an OpenAI content list."""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return content or ""


def chat_prompt(tokenizer, messages: list[ChatMessage]) -> str:
    """The prompt of a chat: the tokenizer's chat template, else ``role: content`` lines."""
    plain = [{"role": m.role, "content": _text(m.content)} for m in messages]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=True)
    return "".join(f"{m['role']}: {m['content']}\n" for m in plain) + "assistant:"


def create_app(scorer, model_name: str) -> FastAPI:
    """The app serving ``scorer`` (a :class:`~parrotwatch.detectors.models.causal_lm.CausalLMScorer`) as
    ``model_name``."""
    app = FastAPI(title="Parrotwatch local LM server", description=__doc__)
    lock = threading.Lock()  # one forward pass at a time: torch on the CPU uses every core already
    tok = scorer.tokenizer

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "parrotwatch"}]}

    @app.post("/v1/completions")
    def completions(req: CompletionRequest) -> dict:
        if req.model != model_name:
            raise HTTPException(404, f"model {req.model!r} is not served here; this server has "
                                     f"{model_name!r}")
        if req.max_tokens > 0 and req.temperature != 0:
            raise HTTPException(400, "this server decodes greedily only: send temperature 0")
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        encoded = [tok(p, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
                   for p in prompts]
        prompt_ids = [list(e["input_ids"]) for e in encoded]
        if req.max_tokens >= scorer.context:
            raise HTTPException(400, f"max_tokens must be below the model's context of {scorer.context} "
                                     "tokens")
        # generation sees the last context - max_tokens prompt tokens (a prompt is scored whole, in windows)
        keep = scorer.context - req.max_tokens - (scorer.bos_id is not None)
        bos = [scorer.bos_id] if scorer.bos_id is not None else []
        if req.max_tokens > 0 and not bos and not all(prompt_ids):
            raise HTTPException(400, "an empty prompt cannot be continued by a model without a BOS token")
        with lock:
            generated = (scorer.continue_greedy([bos + p[-keep:] for p in prompt_ids], req.max_tokens)
                         if req.max_tokens > 0 else [[] for _ in prompts])
            scores = (scorer.score_token_ids([p + g for p, g in zip(prompt_ids, generated, strict=True)])
                      if req.logprobs is not None else None)
        choices = []
        for i, (prompt, enc, gen) in enumerate(zip(prompts, encoded, generated, strict=True)):
            completion = tok.decode(gen) if gen else ""
            choice = {"index": i, "text": (prompt if req.echo else "") + completion,
                      "finish_reason": "length", "logprobs": None}
            if scores is not None:
                choice["logprobs"] = _logprobs(scorer, prompt, prompt_ids[i], enc["offset_mapping"], gen,
                                               scores[i], req.echo)
            choices.append(choice)
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                "model": model_name, "choices": choices}

    @app.post("/v1/chat/completions", response_model=None)
    def chat_completions(req: ChatRequest) -> dict | StreamingResponse:
        if req.model != model_name:
            raise HTTPException(404, f"model {req.model!r} is not served here; this server has "
                                     f"{model_name!r}")
        limit = req.max_completion_tokens or req.max_tokens or 16
        if limit >= scorer.context:
            raise HTTPException(400, f"max_tokens must be below the model's context of {scorer.context} "
                                     "tokens")
        prompt_ids = list(tok(chat_prompt(tok, req.messages), add_special_tokens=False,
                              verbose=False)["input_ids"])
        keep = scorer.context - limit - (scorer.bos_id is not None)
        bos = [scorer.bos_id] if scorer.bos_id is not None else []
        with lock:
            (generated,) = scorer.continue_greedy([bos + prompt_ids[-keep:]], limit)
            scored = scorer.score_token_ids([prompt_ids + generated])[0] if req.logprobs else None
        pieces = [tok.decode([t]) for t in generated]
        values = None
        if scored is not None:  # without a BOS, logprobs[i] is of token i + 1 (the first has no context)
            start = len(prompt_ids) - (scorer.bos_id is None)
            values = [float(v) for v in scored.logprobs[start:start + len(generated)]]
        finish = "length" if len(generated) >= limit else "stop"
        usage = {"prompt_tokens": len(prompt_ids), "completion_tokens": len(generated),
                 "total_tokens": len(prompt_ids) + len(generated)}
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

        def logprob_items(at: slice) -> list[dict]:
            return [{"token": p, "logprob": v, "bytes": list(p.encode()), "top_logprobs": []}
                    for p, v in zip(pieces[at], values[at], strict=True)]

        if not req.stream:
            message = {"role": "assistant", "content": tok.decode(generated)}
            choice = {"index": 0, "message": message, "finish_reason": finish,
                      "logprobs": {"content": logprob_items(slice(None))} if values is not None else None}
            return {"id": ident, "object": "chat.completion", "created": created, "model": model_name,
                    "choices": [choice], "usage": usage}

        def events():
            def chunk(delta: dict, finish_reason=None, logprobs=None, usage_=None, choices=True) -> bytes:
                body = {"id": ident, "object": "chat.completion.chunk", "created": created,
                        "model": model_name,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason,
                                     "logprobs": logprobs}] if choices else []}
                if usage_ is not None:
                    body["usage"] = usage_
                return b"data: " + orjson.dumps(body) + b"\n\n"

            yield chunk({"role": "assistant", "content": ""})
            for i, piece in enumerate(pieces):
                lp = {"content": logprob_items(slice(i, i + 1))} if values is not None else None
                yield chunk({"content": piece}, logprobs=lp)
            yield chunk({}, finish_reason=finish)
            if req.stream_options is not None and req.stream_options.include_usage:
                yield chunk({}, usage_=usage, choices=False)
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def _logprobs(scorer, prompt: str, prompt_ids: list[int], offsets, generated: list[int], scored,
              echo: bool) -> dict:
    """The OpenAI ``logprobs`` object of one choice from the scores of prompt + generated tokens."""
    ids = prompt_ids + generated
    pieces = [scorer.tokenizer.decode([t]) for t in ids]
    values: list[float | None] = [float(v) for v in scored.logprobs]
    if scorer.bos_id is None:  # without a BOS the first token has no context: null, as the API shows it
        values = [None, *values][:len(ids)]
    starts = [int(a) for a, _ in offsets]
    position = len(prompt)
    for piece in pieces[len(prompt_ids):]:
        starts.append(position)
        position += len(piece)
    if not echo:
        return {"tokens": pieces[len(prompt_ids):], "token_logprobs": values[len(prompt_ids):],
                "text_offset": starts[len(prompt_ids):], "top_logprobs": None}
    if scorer.bos_id is not None:
        pieces, values, starts = ["", *pieces], [None, *values], [0, *starts]
    return {"tokens": pieces, "token_logprobs": values, "text_offset": starts, "top_logprobs": None}
