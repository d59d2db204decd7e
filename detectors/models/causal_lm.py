"""A causal language model as a scorer: per-token log-probabilities of texts, and continuations.

Used by the membership, exposure and extraction audits and as the reference LM when an inference event
logs no ``logprobs``. The model is a local Hugging Face checkpoint (``save_pretrained`` layout, e.g. the
project's testbed from :mod:`parrotwatch.testbed`); nothing is fetched from a hub.

Scoring (Radford et al. 2019 convention, and the Hugging Face guide "Perplexity of fixed-length models"):
a text is tokenised without special tokens, the BOS token is put in front when the tokenizer has one (so
every text token gets a probability), and l_t = log p(x_t | x_<t) in nats comes from a log-softmax of the
logits in float32, in chunks of at most ``_CHUNK_ROWS`` scored positions. A sequence longer than the
window W is scored with overlapping windows moved by the stride S < W, each token scored exactly once, in
the first window that contains it beyond the previous window's end, so every token after the first window
has at least W - S tokens of context (S = 1 gives every token the full W - 1). Windows of all texts are
sorted by length and batched with right padding under an attention mask, so padding changes no score. For
the architectures in ``_PLAIN_HEAD`` (logits = LM head of the last hidden state) the head runs on the
scored positions only: padding and the context-only positions of overlapping windows never reach the
vocabulary-wide matmul and log-softmax, and the logits held at once stay bounded whatever the vocabulary
(other architectures run the whole forward, whose logits cover every position). GPT-2's ``gelu_new``
activation is loaded as ``gelu_pytorch_tanh``, the same tanh approximation in one fused kernel (Hugging
Face ``activations.py``; log-probabilities move by ~1e-6).

One :class:`CausalLMScorer` per spec and process: :func:`get_causal_lm` caches it and counts loads in
:data:`LOADS`; it pickles by spec. On CUDA the forward runs under autocast (fp16 by default, bf16 when
asked) and a CUDA out-of-memory error splits the batch in two and retries
(:mod:`parrotwatch.detectors.models.batching`). The GPU paths are written to
the same pattern as :mod:`parrotwatch.detectors.models.encoder` and are untested on a GPU so far.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from parrotwatch.detectors.models import generation
from parrotwatch.detectors.models.batching import run_halving_on_oom
from parrotwatch.detectors.models.encoder import MissingModelError, default_device

Precision = Literal["auto", "fp32", "fp16", "bf16"]

#: loads per :class:`CausalLMSpec` in this process
LOADS: Counter[CausalLMSpec] = Counter()
_CACHE: dict[CausalLMSpec, CausalLMScorer] = {}
_LOCK = threading.Lock()
#: architectures whose logits are exactly ``get_output_embeddings()(last hidden state)`` (no softcapping or
#: logit scale): only their scored positions go through the LM head
_PLAIN_HEAD = frozenset({"GPT2LMHeadModel", "GPTNeoForCausalLM", "GPTNeoXForCausalLM", "LlamaForCausalLM",
                         "MistralForCausalLM", "Qwen2ForCausalLM"})
#: positions per log-softmax chunk: float32 logits of at most this many positions exist at once
_CHUNK_ROWS = 1024


@dataclass(frozen=True)
class CausalLMSpec:
    """What to load and how to run it.

    ``model``: a local directory with a causal LM and its tokenizer (``save_pretrained``).
    ``device``: None picks CUDA when present. ``precision``: auto is fp16 on CUDA and fp32 on the CPU.
    ``batch_size``: sequences (windows) per forward pass. ``max_length``: the window W in tokens, the
    BOS included (None: the model's context size). ``stride``: S, 1 <= S < W (None: W // 2).
    ``prepend_bos``: put the tokenizer's BOS token in front of each text, so its first token is scored.
    """

    model: str
    device: str | None = None
    precision: Precision = "auto"
    batch_size: int = 16
    max_length: int | None = None
    stride: int | None = None
    prepend_bos: bool = True


@dataclass(frozen=True)
class TokenScores:
    """The scored tokens of one text: ``tokens`` (decoded strings) and ``token_ids``; ``logprobs``
    l_t = log p(x_t | x_<t) in nats; with ``with_distribution``, ``mu`` and ``sigma2``, the mean and
    variance of log p(z) for z ~ p(. | x_<t) (Min-K%++), else None. All arrays have one entry per token.
    Without a BOS token the text's first token has no context and is not among the scored tokens.
    ``tokens`` decode one id each, so a character split over byte-level tokens shows as U+FFFD pieces."""

    tokens: tuple[str, ...]
    token_ids: np.ndarray
    logprobs: np.ndarray
    mu: np.ndarray | None = None
    sigma2: np.ndarray | None = None


@dataclass(frozen=True)
class _Window:
    """Tokens ``ids`` of one window of text ``text``; positions ``first``.. of the window are scored
    and go to ``out`` onwards in that text's score arrays."""

    text: int
    ids: list[int]
    first: int
    out: int


def plan_windows(n_tokens: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """Windows ``(begin, end, first)`` over a sequence of ``n_tokens`` (Hugging Face perplexity guide):

        begin = 0, S, 2S, ...;  end = min(begin + W, n);  positions max(prev_end, 1)..end-1 are scored,

    ``first`` being that first scored position relative to ``begin``. Every position 1..n-1 is scored
    exactly once, with at least min(position, W - S) tokens of context.
    """
    if window < 2 or not 1 <= stride < window:
        raise ValueError(f"need window >= 2 and 1 <= stride < window, got window={window}, stride={stride}")
    if n_tokens <= window:
        return [(0, n_tokens, 1)] if n_tokens > 1 else []
    plan, prev_end = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + window, n_tokens)
        plan.append((begin, end, max(prev_end, 1) - begin))
        prev_end = end
        if end == n_tokens:
            break
    return plan


class CausalLMScorer:
    """Per-token log-probabilities of texts and greedy / beam continuations under one causal LM."""

    def __init__(self, spec: CausalLMSpec):
        try:
            import torch
            from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise MissingModelError(
                "the causal LM needs torch and transformers: pip install -e '.[models]'") from exc
        path = Path(spec.model).expanduser()
        if not (path / "config.json").is_file():
            raise MissingModelError(
                f"causal LM {spec.model!r} is not a local model directory (no config.json); models are never "
                "downloaded at run time: save one with save_pretrained(), or build the testbed with "
                "'parrotwatch testbed build --out DIR'")
        if spec.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {spec.batch_size}")
        self.spec = spec
        self.device = spec.device or default_device()
        precision = spec.precision
        if precision == "auto":
            precision = "fp16" if self.device.startswith("cuda") else "fp32"
        self.precision = precision
        self._autocast_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
        if getattr(config, "activation_function", None) == "gelu_new":
            config.activation_function = "gelu_pytorch_tanh"
        model = AutoModelForCausalLM.from_pretrained(str(path), config=config, local_files_only=True,
                                                     dtype=torch.float32)
        self.model = model.to(self.device).eval()
        plain = type(model).__name__ in _PLAIN_HEAD and model.get_output_embeddings() is not None
        #: (body, head) when the head can run on chosen positions only, else None (full forward)
        self._split = (model.base_model, model.get_output_embeddings()) if plain else None
        #: the model's context size in tokens
        self.context = int(getattr(model.config, "n_positions", None) or model.config.max_position_embeddings)
        self.window = spec.max_length or self.context
        if self.window > self.context:
            raise ValueError(f"max_length {self.window} exceeds the model's context of {self.context} tokens")
        self.stride = spec.stride or max(1, self.window // 2)
        plan_windows(0, self.window, self.stride)  # validates window and stride
        self.bos_id = self.tokenizer.bos_token_id if spec.prepend_bos else None
        eos = self.tokenizer.eos_token_id
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos or 0
        self._piece_cache: dict[int, str] = {}

    def __reduce__(self):
        # Pickles as "load (or reuse) the same model on the other side", never as weights.
        return get_causal_lm, (self.spec,)

    def _autocast(self):
        """``torch.autocast`` to the spec's fp16 / bf16 (matmuls in half precision, softmax and reductions in
        float32; PyTorch automatic mixed precision), disabled for fp32."""
        import torch

        device_type = "cuda" if self.device.startswith("cuda") else "cpu"
        return torch.autocast(device_type, dtype=self._autocast_dtype or torch.float32,
                              enabled=self._autocast_dtype is not None)

    def encode(self, text: str) -> list[int]:
        """The text's token ids by the model's own tokenizer, without special tokens and of any length (the
        windows of :func:`plan_windows` handle texts longer than the context)."""
        return self.encode_many([text])[0]

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        """:meth:`encode` of each text, in one tokenizer call."""
        if not texts:
            return []
        return [list(ids) for ids in
                self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]]

    def score_texts(self, texts: Sequence[str], with_distribution: bool = False) -> list[TokenScores]:
        """Scores of ``texts`` in order: l_t = log softmax(logits_{t-1})[x_t] in nats for every token
        (the first too, when a BOS is prepended), by the sliding windows of :func:`plan_windows`.

        ``with_distribution`` adds, per position, the moments Min-K%++ needs (Zhang et al. 2024):
        mu_t = sum_v p_v log p_v and sigma2_t = sum_v p_v (log p_v)^2 - mu_t^2 (clamped at 0), over the
        whole vocabulary of the next-token distribution p = p(. | x_<t).
        """
        return self.score_token_ids(self.encode_many(texts), with_distribution)

    def score_token_ids(self, texts_ids: Sequence[Sequence[int]],
                        with_distribution: bool = False) -> list[TokenScores]:
        """:meth:`score_texts` of texts given as token ids of this model (without the BOS)."""
        token_ids, windows = [], []
        for i, ids in enumerate(texts_ids):
            full = ([self.bos_id] if self.bos_id is not None else []) + [int(t) for t in ids]
            token_ids.append(full[1:])
            for begin, end, first in plan_windows(len(full), self.window, self.stride):
                windows.append(_Window(i, full[begin:end], first, begin + first - 1))
        n = [len(ids) for ids in token_ids]
        logprobs = [np.zeros(k, dtype=np.float64) for k in n]
        mu = [np.zeros(k, dtype=np.float64) for k in n] if with_distribution else None
        sigma2 = [np.zeros(k, dtype=np.float64) for k in n] if with_distribution else None
        windows.sort(key=lambda w: len(w.ids), reverse=True)  # longest first: an OOM shows up at once
        results = run_halving_on_oom(lambda b: self._score_batch(b, with_distribution), windows,
                                     self.spec.batch_size)
        for w, (lp, m, s2) in zip(windows, results, strict=True):
            logprobs[w.text][w.out:w.out + len(lp)] = lp
            if with_distribution:
                mu[w.text][w.out:w.out + len(lp)] = m
                sigma2[w.text][w.out:w.out + len(lp)] = s2
        decoded = self._pieces(token_ids)
        return [
            TokenScores(decoded[i], np.asarray(token_ids[i], dtype=np.int64), logprobs[i],
                        mu[i] if with_distribution else None, sigma2[i] if with_distribution else None)
            for i in range(len(token_ids))
        ]

    def _pieces(self, token_ids: list[list[int]]) -> list[tuple[str, ...]]:
        """Each id decoded alone (context-free, so memoised per id: decoding every token of every text
        again cost about as much as the forward pass of a small model)."""
        missing = sorted({t for ids in token_ids for t in ids} - self._piece_cache.keys())
        if missing:
            self._piece_cache.update(zip(missing, self.tokenizer.batch_decode([[t] for t in missing]),
                                         strict=True))
        return [tuple(self._piece_cache[t] for t in ids) for ids in token_ids]

    def _score_batch(self, batch: list[_Window], with_distribution: bool) -> list[tuple]:
        """One forward pass over right-padded windows; per window the scored positions' (l, mu, sigma2)."""
        import torch

        width = max(len(w.ids) for w in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, w in enumerate(batch):
            ids[r, :len(w.ids)] = torch.tensor(w.ids)
            mask[r, :len(w.ids)] = 1
        # the state at position t-1 predicts token t: window r scores its tokens first..len-1
        counts = [len(w.ids) - w.first for w in batch]
        rows = torch.from_numpy(np.repeat(np.arange(len(batch)), counts))
        cols = torch.from_numpy(np.concatenate([np.arange(w.first - 1, len(w.ids) - 1) for w in batch]))
        targets = ids[rows, cols + 1].to(self.device)
        ids, mask = ids.to(self.device), mask.to(self.device)
        rows, cols = rows.to(self.device), cols.to(self.device)
        logps, mus, sigma2s = [], [], []
        with torch.inference_mode(), self._autocast():
            if self._split is not None:
                body, head = self._split
                states = body(input_ids=ids, attention_mask=mask)[0][rows, cols]
            else:
                head = None
                states = self.model(input_ids=ids, attention_mask=mask).logits[rows, cols]
            for start in range(0, len(states), _CHUNK_ROWS):
                chunk = states[start:start + _CHUNK_ROWS]
                logp = torch.log_softmax((head(chunk) if head is not None else chunk).float(), dim=-1)
                logps.append(logp.gather(-1, targets[start:start + _CHUNK_ROWS, None])[:, 0])
                if with_distribution:
                    p = logp.exp()
                    lp0 = torch.where(p > 0, logp, 0.0)  # p log p -> 0 as p -> 0
                    m = (p * lp0).sum(-1)
                    mus.append(m)
                    sigma2s.append(torch.clamp((p * lp0 * lp0).sum(-1) - m * m, min=0.0))
        cuts = np.cumsum(counts)[:-1]

        def per_window(chunks: list) -> list:
            return np.split(torch.cat(chunks).double().cpu().numpy(), cuts)

        if not with_distribution:
            return [(lp, None, None) for lp in per_window(logps)]
        return list(zip(per_window(logps), per_window(mus), per_window(sigma2s), strict=True))

    def continue_greedy(self, prefix_ids_batch: Sequence[Sequence[int]], n_tokens: int) -> list[list[int]]:
        """Greedy continuations x_{t+1} = argmax_v p(v | x_<=t) of up to ``n_tokens`` tokens per prefix,
        as in the extraction test of Carlini et al. 2021 / 2023 ("Quantifying Memorization Across Neural
        Language Models"); see :func:`parrotwatch.detectors.models.generation.continue_batch`."""
        return generation.continue_batch(self, prefix_ids_batch, n_tokens, num_beams=1)

    def continue_beam(self, prefix_ids_batch: Sequence[Sequence[int]], n_tokens: int,
                      num_beams: int = 4) -> list[list[int]]:
        """Beam-search continuations (the best of ``num_beams`` beams by sum log p / length, Hugging Face
        ``generate``) of up to ``n_tokens`` tokens per prefix; see
        :func:`parrotwatch.detectors.models.generation.continue_batch`."""
        if num_beams < 2:
            raise ValueError(f"beam search needs num_beams >= 2, got {num_beams}: use continue_greedy")
        return generation.continue_batch(self, prefix_ids_batch, n_tokens, num_beams=num_beams)


def get_causal_lm(spec: CausalLMSpec) -> CausalLMScorer:
    """The process-wide scorer for ``spec`` (loaded on first use)."""
    with _LOCK:
        if spec not in _CACHE:
            _CACHE[spec] = CausalLMScorer(spec)
            LOADS[spec] += 1
        return _CACHE[spec]
