"""Batched greedy and beam-search continuations of token-id prefixes (Hugging Face ``generate``).

The extraction audits prompt the model with a training text's first k tokens and compare its greedy (or
beam) continuation with the true suffix (Carlini et al. 2021, "Extracting Training Data from Large
Language Models"; Carlini et al. 2023, "Quantifying Memorization Across Neural Language Models", where a
suffix is "extractable with k tokens of context" when greedy decoding reproduces it exactly).

Prefixes are sorted by length, batched and left-padded under an attention mask (decoder-only models
generate from the right end), so a batched continuation equals the one-by-one continuation. A
continuation stops after the end-of-sequence token (kept) or after ``n_tokens`` tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from parrotwatch.detectors.models.batching import run_halving_on_oom


class CausalLMScorer(Protocol):
    """What generation needs of a :class:`parrotwatch.detectors.models.causal_lm.CausalLMScorer` (which
    calls this module; typed here so the two modules do not import each other)."""

    model: Any
    tokenizer: Any
    spec: Any
    context: int
    device: str
    pad_id: int

    def _autocast(self) -> AbstractContextManager: ...


def continue_batch(lm: CausalLMScorer, prefix_ids_batch: Sequence[Sequence[int]], n_tokens: int,
                   num_beams: int = 1) -> list[list[int]]:
    """Continuations of each prefix, in input order, of at most ``n_tokens`` token ids each.

    Greedy (``num_beams == 1``): x_{t+1} = argmax_v log p(v | x_<=t). Beam search (Hugging Face
    ``generate``): keep the ``num_beams`` best partial sequences by sum_t log p(x_t | x_<t), and return
    the finished one with the best sum / (generated length ** 1.0), stopping early once ``num_beams``
    hypotheses are done. A CUDA out-of-memory error splits the batch
    (:func:`parrotwatch.detectors.models.batching.run_halving_on_oom`).
    """

    prefixes = [[int(t) for t in p] for p in prefix_ids_batch]
    if n_tokens < 1:
        raise ValueError(f"n_tokens must be >= 1, got {n_tokens}")
    if any(not p for p in prefixes):
        raise ValueError("every prefix needs at least one token id (e.g. the tokenizer's BOS id)")
    vocab = lm.model.config.vocab_size
    if any(not 0 <= t < vocab for p in prefixes for t in p):
        raise ValueError(f"token ids must be in [0, {vocab})")
    longest = max((len(p) for p in prefixes), default=0)
    if longest + n_tokens > lm.context:
        raise ValueError(f"prefix of {longest} tokens + {n_tokens} new tokens exceeds the model's context of "
                         f"{lm.context} tokens: shorten the prefixes or ask for fewer tokens")
    order = sorted(range(len(prefixes)), key=lambda i: len(prefixes[i]), reverse=True)
    out: list[list[int]] = [[] for _ in prefixes]
    results = run_halving_on_oom(lambda b: _generate(lm, b, n_tokens, num_beams),
                                 [prefixes[i] for i in order], lm.spec.batch_size)
    for i, cont in zip(order, results, strict=True):
        out[i] = cont
    return out


def _generate(lm: CausalLMScorer, prefixes: list[list[int]], n_tokens: int,
              num_beams: int) -> list[list[int]]:
    """One ``generate`` call over left-padded prefixes; the new tokens of each, cut after the first EOS."""
    import torch
    from transformers import GenerationConfig

    width = max(len(p) for p in prefixes)
    ids = torch.full((len(prefixes), width), lm.pad_id, dtype=torch.long)
    mask = torch.zeros((len(prefixes), width), dtype=torch.long)
    for r, p in enumerate(prefixes):
        ids[r, width - len(p):] = torch.tensor(p)
        mask[r, width - len(p):] = 1
    eos = lm.tokenizer.eos_token_id
    config = GenerationConfig(max_new_tokens=n_tokens, do_sample=False, num_beams=num_beams,
                              num_return_sequences=1, early_stopping=num_beams > 1,
                              pad_token_id=lm.pad_id, eos_token_id=eos,
                              bos_token_id=lm.tokenizer.bos_token_id)
    with torch.inference_mode(), lm._autocast():
        generated = lm.model.generate(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device),
                                      generation_config=config)
    out = []
    for row in generated[:, width:].tolist():
        if eos is not None and eos in row:
            row = row[:row.index(eos) + 1]
        out.append(row)
    return out
