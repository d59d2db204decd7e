"""A causal LM behind an OpenAI-compatible completions endpoint, as a scorer of per-token log-probabilities.

Prompt log-probabilities come from the legacy completions API's ``echo`` (vLLM, llama.cpp server, the
OpenAI API of 2022 and the project's own ``parrotwatch testbed serve``): ``POST {url}/completions`` with
``{"model", "prompt": [texts], "echo": true, "logprobs": 0, "max_tokens": 1, "temperature": 0}`` answers,
per prompt, the echoed prompt tokens and their ``token_logprobs`` l_t = log p(x_t | x_<t), followed by the
one generated token (the lm-evaluation-harness loglikelihood request; ``max_tokens: 0`` is refused by
several servers). Prompt tokens are those whose ``text_offset`` lies inside the prompt; the leading
tokens without a log-probability (a BOS the server prepends, or the first token when it prepends none)
are dropped, as :class:`~parrotwatch.detectors.models.causal_lm.TokenScores` documents for a model without
BOS.

What the endpoint cannot give, and the audits that therefore refuse it:

* the whole next-token distribution: only the top ``logprobs`` (at most 5 at OpenAI, 20 in vLLM)
  alternatives come back, so the moments mu_t, sigma2_t of Min-K%++ (Zhang et al. 2024) cannot be
  computed (``with_distribution=True`` raises :class:`UnsupportedByEndpoint`);
* token ids and the tokenizer: the k-extractable test (Carlini et al. 2023) needs a k-token prefix and
  a 50-token suffix in the model's own tokens, and the sampling attack its own decoding loop, so
  extraction and sampling audits need a local model;
* whether the server scores in the same precision, window and BOS convention as a local run: scores of
  one model through two servers (vLLM in bf16 against transformers in fp32) differ in their last digits.

Texts are sent ``batch_size`` at a time; connection errors, 429 and 5xx answers are retried with
exponential backoff and full jitter (tenacity) up to ``max_attempts`` times; any other non-2xx answer is an
:class:`EndpointError` quoting the server's message.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import numpy as np
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential

from parrotwatch.detectors.models.causal_lm import TokenScores


class EndpointError(RuntimeError):
    """The endpoint answered something other than prompt log-probabilities."""


class UnsupportedByEndpoint(NotImplementedError):
    """What an OpenAI-compatible endpoint cannot give (see the module docstring)."""


@dataclass(frozen=True)
class OpenAICompletionsSpec:
    """``url``: the API base, e.g. ``http://127.0.0.1:8000/v1``; ``model``: the served model's name;
    ``api_key_env``: the environment variable holding a bearer token (never the key itself, so specs and
    logs carry no secret); ``batch_size``: prompts per request."""

    url: str
    model: str
    api_key_env: str | None = None
    batch_size: int = 16
    timeout_s: float = 120.0
    max_attempts: int = 5


def _retryable_status(code: int) -> bool:
    return code == 429 or code >= 500


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError) or (
        isinstance(exc, httpx.HTTPStatusError) and _retryable_status(exc.response.status_code))


class OpenAICompletionsScorer:
    """``score_texts`` of :class:`~parrotwatch.detectors.models.causal_lm.CausalLMScorer`, through an
    endpoint."""

    device = "remote"

    def __init__(self, spec: OpenAICompletionsSpec):
        if spec.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {spec.batch_size}")
        headers = {}
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env)
            if not key:
                raise ValueError(f"the endpoint's API key variable {spec.api_key_env} is not set")
            headers["Authorization"] = f"Bearer {key}"
        self.spec = spec
        self._client = httpx.Client(base_url=spec.url.rstrip("/") + "/", headers=headers,
                                    timeout=spec.timeout_s)
        self._post = retry(retry=retry_if_exception(_retryable), reraise=True,
                           stop=stop_after_attempt(spec.max_attempts),
                           wait=wait_random_exponential(multiplier=0.5, max=30))(self._post_once)

    def __reduce__(self):
        return OpenAICompletionsScorer, (self.spec,)

    def close(self) -> None:
        self._client.close()

    def _post_once(self, body: dict) -> dict:
        response = self._client.post("completions", json=body)
        if response.status_code >= 400 and not _retryable_status(response.status_code):
            raise EndpointError(f"{self.spec.url}/completions answered {response.status_code}: "
                                f"{response.text[:500]}")
        response.raise_for_status()
        return response.json()

    def score_texts(self, texts: Sequence[str], with_distribution: bool = False) -> list[TokenScores]:
        """Per-token log-probabilities of ``texts`` in order (nats), from the echoed prompts."""
        if with_distribution:
            raise UnsupportedByEndpoint(
                "an OpenAI-compatible endpoint returns at most the top-k alternatives per token, not the "
                "whole next-token distribution that Min-K%++ needs; use a local model for it")
        out: list[TokenScores] = []
        for start in range(0, len(texts), self.spec.batch_size):
            part = list(texts[start:start + self.spec.batch_size])
            body = {"model": self.spec.model, "prompt": part, "echo": True, "logprobs": 0,
                    "max_tokens": 1, "temperature": 0}
            choices = sorted(self._post(body).get("choices") or [], key=lambda c: c.get("index", 0))
            if len(choices) != len(part):
                raise EndpointError(f"asked {len(part)} prompts, got {len(choices)} choices")
            out += [prompt_scores(text, c) for text, c in zip(part, choices, strict=True)]
        return out


def prompt_scores(prompt: str, choice: dict) -> TokenScores:
    """The prompt's scored tokens from one echoed completion choice (``logprobs.tokens``,
    ``token_logprobs`` and ``text_offset``); ``token_ids`` are -1, the endpoint does not return ids."""
    lp = choice.get("logprobs") or {}
    tokens, logprobs, offsets = lp.get("tokens"), lp.get("token_logprobs"), lp.get("text_offset")
    if tokens is None or logprobs is None or offsets is None:
        raise EndpointError("the choice has no logprobs.tokens/token_logprobs/text_offset: does the "
                            "server support 'echo' with 'logprobs' on /completions?")
    # prompt tokens start before the prompt's end in the echoed text (which may put a BOS string first)
    shift = max((choice.get("text") or "").find(prompt), 0) if prompt else 0
    n = sum(1 for o in offsets if o < shift + len(prompt))
    first = 0
    while first < n and logprobs[first] is None:
        first += 1
    if any(v is None for v in logprobs[first:n]):
        raise EndpointError("a prompt token after the first has no log-probability")
    return TokenScores(tuple(tokens[first:n]), np.full(n - first, -1, dtype=np.int64),
                       np.asarray(logprobs[first:n], dtype=np.float64))
