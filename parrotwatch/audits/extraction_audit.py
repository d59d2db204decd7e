"""The extraction audit job: the k-extractable rate of Carlini et al. 2023 over the training sequences,
by how many times each is in the training set, for greedy decoding and each beam width
(:mod:`parrotwatch.detectors.audits.extraction`), plus the optional Carlini et al. 2021 sampling attack
(:mod:`parrotwatch.audits.sampling`).

Sequences are tokenised as the model saw them in training: the tokenizer's BOS (when it has one) and the
text's tokens. Members (in the training set ``repetitions`` times, 1 unless the data file says otherwise)
and non-members (never, the baseline) use the first ``prefix_tokens`` tokens as the prompt and the next
``suffix_tokens`` as the target. A canary's prompt is its template up to the first slot (the tokens that
decode to it, BOS first) and its target the rest of the canary (the secret): the Secret Sharer's question
"does the model complete the template with the inserted secret?", under the same exact-match rule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from parrotwatch.audits.inputs import AuditInputs, Text
from parrotwatch.audits.results import AuditResult, Metric, Sample
from parrotwatch.audits.spec import ExtractionAudit
from parrotwatch.detectors.audits.extraction import (
    extraction_rates,
    is_extractable,
    matched_tokens,
    split_sequence,
)

AUDIT = "extraction"


@dataclass(frozen=True)
class _Target:
    item: Text
    label: str
    prefix: list[int]
    suffix: list[int]


@dataclass(frozen=True)
class ExtractionPlot:
    """Per beam width, per (label, repetitions): the extractable rate with its Wilson 95% CI and n."""

    rates: dict[int, dict[tuple[str, int], tuple[float, float, float, int]]]


def _canary_split(lm, text: str, head: str, bos: list[int]) -> tuple[list[int], list[int]] | None:
    """(BOS + the most tokens that decode to a prefix of the template ``head``, the remaining tokens); None
    when the prompt or the target would be empty."""
    ids = lm.encode(text)
    j = next(j for j in range(len(ids), -1, -1) if head.startswith(lm.tokenizer.decode(ids[:j])))
    return (bos + ids[:j], ids[j:]) if (bos or j) and j < len(ids) else None


def _targets(inputs: AuditInputs, cfg: ExtractionAudit) -> tuple[list[_Target], int]:
    lm = inputs.lm
    bos = [lm.bos_id] if lm.bos_id is not None else []
    out, skipped = [], 0
    for label, items in (("member", inputs.members), ("non-member", inputs.non_members)):
        for t in items[:cfg.max_sequences]:
            split = split_sequence(bos + lm.encode(t.text), cfg.prefix_tokens, cfg.suffix_tokens,
                                   cfg.min_suffix_tokens)
            if split is None:
                skipped += 1
            else:
                out.append(_Target(t, label, *split))
    if inputs.canaries is not None:
        head = inputs.canaries.space.template.split("{}")[0]
        for t in inputs.canaries.items:
            split = _canary_split(lm, t.text, head, bos)
            if split is None:
                skipped += 1
            else:
                out.append(_Target(t, "canary", split[0], split[1][:cfg.suffix_tokens]))
    return out, skipped


def _continue(lm, targets: list[_Target], beams: int, advance) -> list[list[int]]:
    """Continuations of every prompt, run per distinct target length (beam search depends on it)."""
    out: list[list[int]] = [[] for _ in targets]
    by_len: dict[int, list[int]] = {}
    for i, t in enumerate(targets):
        by_len.setdefault(len(t.suffix), []).append(i)
    for n, idx in sorted(by_len.items()):
        for start in range(0, len(idx), 64):
            part = idx[start:start + 64]
            prefixes = [targets[i].prefix for i in part]
            conts = (lm.continue_greedy(prefixes, n) if beams == 1 else lm.continue_beam(prefixes, n, beams))
            for i, c in zip(part, conts, strict=True):
                out[i] = c
            advance(len(part))
    return out


def run_extraction(inputs: AuditInputs, cfg: ExtractionAudit, bar) -> AuditResult:
    t0 = time.perf_counter()
    lm = inputs.lm
    if cfg.prefix_tokens + cfg.suffix_tokens > lm.context:
        raise ValueError(f"extraction: prefix_tokens + suffix_tokens = "
                         f"{cfg.prefix_tokens + cfg.suffix_tokens} exceeds the model's context of "
                         f"{lm.context} tokens")
    targets, skipped = _targets(inputs, cfg)
    if not targets:
        need = cfg.prefix_tokens + (cfg.min_suffix_tokens or cfg.suffix_tokens)
        raise ValueError(f"extraction: no sequence has {need} tokens; lower prefix_tokens or set "
                         "min_suffix_tokens")
    results: dict[int, tuple[list[bool], list[int]]] = {}
    with bar(len(targets) * len(cfg.num_beams), "extraction: decoding") as b:
        for beams in cfg.num_beams:
            conts = _continue(lm, targets, beams, b.update)
            results[beams] = ([is_extractable(c, t.suffix) for c, t in zip(conts, targets, strict=True)],
                              [matched_tokens(c, t.suffix) for c, t in zip(conts, targets, strict=True)])

    groups = [(t.label, t.item.repetitions) for t in targets]
    metrics = [Metric(AUDIT, "n_sequences", len(targets)), Metric(AUDIT, "n_skipped_short", skipped)]
    plot: dict[int, dict] = {}
    for beams, (hits, matched) in results.items():
        plot[beams] = {}
        rates = extraction_rates(hits, groups)
        for (label, reps), r in sorted(rates.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            lab = {"num_beams": str(beams), "kind": label, "repetitions": str(reps), "n": str(r.n)}
            mean_matched = float(np.mean([m for m, g in zip(matched, groups, strict=True)
                                          if g == (label, reps)]))
            metrics += [Metric(AUDIT, "extractable_rate", r.rate, r.ci_low, r.ci_high, lab),
                        Metric(AUDIT, "matched_tokens_mean", mean_matched, labels=lab)]
            plot[beams][(label, reps)] = (r.rate, r.ci_low, r.ci_high, r.n)
    first = cfg.num_beams[0]
    samples = [Sample(AUDIT, t.item.id, t.label, float(results[first][1][i]),
                      {"repetitions": t.item.repetitions, "prefix_tokens": len(t.prefix),
                       "suffix_tokens": len(t.suffix), "score": f"matched tokens, num_beams={first}",
                       "extracted": {str(b): bool(results[b][0][i]) for b in cfg.num_beams},
                       "matched_tokens": {str(b): int(results[b][1][i]) for b in cfg.num_beams}})
               for i, t in enumerate(targets)]
    if cfg.sampling is not None:
        from parrotwatch.audits.sampling import run_sampling

        more_metrics, more_samples = run_sampling(inputs, cfg.sampling, bar)
        metrics += more_metrics
        samples += more_samples
    return AuditResult(AUDIT, tuple(metrics), tuple(samples), time.perf_counter() - t0, ExtractionPlot(plot))
