"""The sampling attack of Carlini et al. 2021 ("Extracting Training Data from Large Language Models",
Sections 4-5): draw ``n_samples`` generations of ``tokens`` tokens from the model's start token with top-k
sampling (k = 40 in the paper), score each by perplexity, zlib, lowercase and, with a reference model,
reference ratio (:func:`parrotwatch.detectors.audits.extraction.generation_scores`), and check the
``top_n`` of each
ranking against the training data the audit knows (members and canaries): a generation is *memorised*
when it shares a verbatim run of >= ``min_overlap_tokens`` word tokens with it
(:func:`parrotwatch.detectors.audits.regurgitation.longest_overlap` over an exact n-gram index).

Reported per metric: ``precision_at_top_n`` (memorised share of the top n) against ``memorised_rate`` over
all samples, the baseline a useless ranking would reach.
"""

from __future__ import annotations

import numpy as np

from parrotwatch.audits.inputs import AuditInputs, score_texts
from parrotwatch.audits.results import Metric, Sample
from parrotwatch.audits.spec import SamplingAudit
from parrotwatch.detectors.audits.extraction import generation_scores, rank_generations
from parrotwatch.detectors.audits.ngram_index import ExactIndex
from parrotwatch.detectors.audits.regurgitation import longest_overlap

AUDIT = "extraction"
_MAX_STORED_CHARS = 1000


def sample_generations(lm, n: int, tokens: int, top_k: int, seed: int, advance, batch: int = 32) -> list[str]:
    """``n`` top-k samples of up to ``tokens`` tokens from the BOS (or EOS) token, decoded; seeded with
    ``torch.random.fork_rng`` so the process's global RNG is left as it was."""
    import torch
    from transformers import GenerationConfig

    tok = lm.tokenizer
    start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    if start is None:
        raise ValueError("sampling needs a BOS or EOS token to start generations from")
    config = GenerationConfig(max_new_tokens=tokens, do_sample=True, top_k=top_k, top_p=1.0, temperature=1.0,
                              pad_token_id=lm.pad_id, eos_token_id=tok.eos_token_id)
    texts = []
    devices = [torch.device(lm.device).index or 0] if lm.device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for s in range(0, n, batch):
            b = min(batch, n - s)
            ids = torch.full((b, 1), start, dtype=torch.long, device=lm.device)
            with torch.inference_mode(), lm._autocast():
                out = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                        generation_config=config)
            for row in out[:, 1:].tolist():
                if tok.eos_token_id in row:
                    row = row[:row.index(tok.eos_token_id)]
                texts.append(tok.decode(row))
            advance(b)
    return texts


def run_sampling(inputs: AuditInputs, cfg: SamplingAudit, bar) -> tuple[list[Metric], list[Sample]]:
    lm = inputs.lm
    with bar(cfg.n_samples, "extraction: sampling") as b:
        texts = sample_generations(lm, cfg.n_samples, cfg.tokens, cfg.top_k, cfg.seed, b.update)
    keep = [i for i, t in enumerate(texts) if t.strip()]
    texts = [texts[i] for i in keep]
    if not texts:
        raise ValueError("sampling: every generation was empty (the model ends at once)")
    passes = 2 + (inputs.reference_lm is not None)
    with bar(passes * len(texts), "extraction: scoring samples") as b:
        target = score_texts(lm, texts, advance=b.update)
        lower = score_texts(lm, [t.lower() for t in texts], advance=b.update)
        ref = score_texts(inputs.reference_lm, texts, advance=b.update) if inputs.reference_lm else None
    ok = [i for i in range(len(texts)) if len(target[i].logprobs) and len(lower[i].logprobs)
          and (ref is None or len(ref[i].logprobs))]
    texts = [texts[i] for i in ok]
    scores = generation_scores([target[i].logprobs for i in ok], texts, [lower[i].logprobs for i in ok],
                               [ref[i].logprobs for i in ok] if ref else None)
    corpus = [t.text for t in inputs.members]
    corpus += [c.text for c in inputs.canaries.items] if inputs.canaries else []
    index = ExactIndex.from_documents(corpus, n=cfg.min_overlap_tokens)
    overlap = np.array([longest_overlap(t, index).tokens for t in texts])
    memorised = overlap >= cfg.min_overlap_tokens
    top_n = min(cfg.top_n, len(texts))
    metrics = [Metric(AUDIT, "samples", len(texts), labels={"attack": "sampling"}),
               Metric(AUDIT, "memorised_rate", float(memorised.mean()),
                      labels={"attack": "sampling", "min_overlap_tokens": str(cfg.min_overlap_tokens)})]
    for metric, top in rank_generations(scores, top_n).items():
        metrics.append(Metric(AUDIT, "precision_at_top_n", float(memorised[top].mean()),
                              labels={"attack": "sampling", "metric": metric, "top_n": str(top_n)}))
    samples = [Sample(AUDIT, f"sample-{i}", "generation", float(scores["perplexity"][i]),
                      {"text": texts[i][:_MAX_STORED_CHARS], "overlap_tokens": int(overlap[i]),
                       "memorised": bool(memorised[i]),
                       "scores": {k: float(v[i]) for k, v in scores.items()}})
               for i in range(len(texts))]
    return metrics, samples
