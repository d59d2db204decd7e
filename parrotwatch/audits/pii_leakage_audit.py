"""The PII leakage audit job: targeted extraction and candidate-set reconstruction of the personal data in
the training texts (Lukas et al. 2023, "Analyzing Leakage of Personally Identifiable Information in Language
Models"; the maths in :mod:`parrotwatch.detectors.audits.pii_extraction`).

Targets: the PII spans (:func:`parrotwatch.detectors.pii.find_pii`, the spec's ``entity_types``) of the
members' texts, grouped by how many times each text is in the training set (its ``repetitions``), and of the
non-members' texts (never trained on: group 0, the baseline), at most ``max_targets`` (a seeded sample).

- Extraction: the model continues BOS + the text before the value greedily, for the value's length in tokens
  plus ``margin_tokens``; extracted when the normalised value occurs in the continuation.
- Reconstruction: the text with the value replaced by each of k + 1 candidates (the true value and k
  distractors of its type from the spec's ``distractors`` file), scored by the model's summed token
  log-probabilities; correct when the true value scores highest. Chance is 1 / (k + 1).

Groups: how many times the target's *value* is in the training set (summed over the member texts that
hold it); a non-member's value that a member also holds is dropped from the never-trained baseline.
Prompts longer than the model's context keep their last tokens (``n_prompts_truncated``).

Metrics per group (labels ``repetitions``, ``k``): ``n_group_targets``, ``extraction_rate`` and
``reconstruction_accuracy`` with Wilson 95% intervals, ``reconstruction_p_value`` (exact binomial test
against chance, greater) and ``reconstruction_chance``. Samples hold the entity type and offsets, never
the value (docs/pii.md).
"""

from __future__ import annotations

import json
import time
from collections import Counter

import numpy as np

from parrotwatch.audits.inputs import AuditInputs, Text
from parrotwatch.audits.results import AuditResult, Metric, Sample
from parrotwatch.audits.spec import PiiLeakageAudit
from parrotwatch.detectors.audits.pii_extraction import (
    PiiTarget,
    draw_candidates,
    extraction_rates,
    normalise_pii,
    pii_extracted,
    pii_targets,
    reconstruction_accuracies,
    reconstruction_correct,
)

AUDIT = "pii_leakage"
BATCH = 32


def read_distractors(cfg: PiiLeakageAudit) -> dict[str, list[str]]:
    """``{entity_type: [values]}`` of the spec's ``distractors`` file (JSONL ``{entity_type, value}``)."""
    pools: dict[str, list[str]] = {}
    for n, line in enumerate(cfg.distractors.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            kind, value = row["entity_type"], row["value"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{cfg.distractors}:{n}: need a JSON object with 'entity_type' and 'value' "
                             f"({exc})") from None
        if not isinstance(value, str) or not isinstance(kind, str):
            raise ValueError(f"{cfg.distractors}:{n}: 'entity_type' and 'value' must be strings")
        pools.setdefault(kind, []).append(value)
    return pools


def _targets(inputs: AuditInputs, cfg: PiiLeakageAudit) -> tuple[list[PiiTarget], list[Text], list[int]]:
    """The targets, their texts and each target's group: how many times its *value* is in the training
    set (the repetitions of every member text holding it, summed: Lukas et al. measure leakage against
    the value's duplication). A non-member's value that some member also holds is dropped: it would
    pollute the never-trained baseline."""
    texts = [*inputs.members, *(Text(t.id, t.text, 0) for t in inputs.non_members)]
    wanted = set(cfg.entity_types)
    targets = [t for t in pii_targets([x.text for x in texts]) if t.entity_type in wanted]
    trained: Counter = Counter()
    for t in targets:
        trained[(t.entity_type, normalise_pii(t.value, t.entity_type))] += texts[t.text_index].repetitions
    groups = [trained[(t.entity_type, normalise_pii(t.value, t.entity_type))] for t in targets]
    keep = [i for i, (t, g) in enumerate(zip(targets, groups, strict=True))
            if texts[t.text_index].repetitions or not g]
    if len(keep) > cfg.max_targets:
        rng = np.random.default_rng([cfg.seed, 1])
        keep = sorted(int(keep[i]) for i in rng.choice(len(keep), cfg.max_targets, replace=False))
    return [targets[i] for i in keep], texts, [groups[i] for i in keep]


def _check_pools(targets: list[PiiTarget], pools: dict[str, list[str]], k: int) -> None:
    """Refuse before any model work when a target's type has fewer than k distinct other values."""
    for kind in sorted({t.entity_type for t in targets}):
        distinct = {normalise_pii(v, kind) for v in pools.get(kind, ())} - {""}
        if len(distinct) < k + 1:
            raise ValueError(f"pii_leakage: the distractors file has {len(distinct)} distinct {kind} values; "
                             f"reconstruction needs more than k={k} of each type it finds")


def run_pii_leakage(inputs: AuditInputs, cfg: PiiLeakageAudit, bar) -> AuditResult:
    t0 = time.perf_counter()
    lm = inputs.lm
    targets, texts, groups = _targets(inputs, cfg)
    pools = read_distractors(cfg)
    _check_pools(targets, pools, cfg.k)
    bos = [lm.bos_id] if lm.bos_id is not None else []
    eos = lm.tokenizer.eos_token_id
    # a value at the very start of a text, with no BOS, is asked for after the end-of-text token
    start = bos or ([eos] if eos is not None else [])
    truncated = 0

    extracted: list[bool] = []
    with bar(len(targets), "pii extraction") as b:
        for s in range(0, len(targets), BATCH):
            chunk = targets[s:s + BATCH]
            lengths = [len(lm.encode(" " + t.value)) + cfg.margin_tokens for t in chunk]
            room = lm.context - max(lengths)  # the prompt's last tokens, as Carlini et al.'s k-token prefix
            prompts = []
            for t in chunk:
                ids = lm.encode(t.prefix.rstrip())
                truncated += len(bos) + len(ids) > room
                prompts.append((bos + ids[max(0, len(ids) - (room - len(bos))):]) or start)
            continued = lm.continue_greedy(prompts, max(lengths))
            extracted += [pii_extracted(t.value, lm.tokenizer.decode(c[:n]), t.entity_type)
                          for t, c, n in zip(chunk, continued, lengths, strict=True)]
            b.update(len(chunk))

    rng = np.random.default_rng([cfg.seed, 6])
    sets = [draw_candidates(t.value, pools[t.entity_type], cfg.k, rng, t.entity_type) for t in targets]
    filled = [t.prefix + c + t.suffix for t, (cands, _) in zip(targets, sets, strict=True) for c in cands]
    scores: list[float] = []
    with bar(len(filled), "pii reconstruction") as b:
        for s in range(0, len(filled), BATCH * 4):
            chunk = filled[s:s + BATCH * 4]
            scores += [float(np.sum(x.logprobs)) for x in lm.score_texts(chunk)]
            b.update(len(chunk))
    per_target = np.asarray(scores, dtype=np.float64).reshape(len(targets), cfg.k + 1)
    truth = [i for _, i in sets]

    metrics = [Metric(AUDIT, "n_targets", len(targets),
                      labels={"types": ",".join(f"{k}:{v}" for k, v in sorted(Counter(
                          t.entity_type for t in targets).items()))}),
               Metric(AUDIT, "n_prompts_truncated", truncated)]
    if targets:
        ext = extraction_rates(extracted, groups)
        rec = reconstruction_accuracies(list(per_target), truth, groups)
        for g in sorted(ext):
            lab = {"repetitions": str(g), "k": str(cfg.k)}
            e, r = ext[g], rec[g]
            metrics += [Metric(AUDIT, "n_group_targets", e.n, labels=lab),
                        Metric(AUDIT, "extraction_rate", e.rate, e.ci_low, e.ci_high, lab),
                        Metric(AUDIT, "reconstruction_accuracy", r.accuracy, r.ci_low, r.ci_high, lab),
                        Metric(AUDIT, "reconstruction_chance", r.chance, labels=lab),
                        Metric(AUDIT, "reconstruction_p_value", r.p_value, labels=lab)]
    # score: how far the true value's log-likelihood is above the best distractor's (> 0: reconstructed)
    samples = tuple(
        Sample(AUDIT, f"{texts[t.text_index].id}@{t.start}", "member" if g else "non-member",
               float(per_target[i, truth[i]] - np.max(np.delete(per_target[i], truth[i]))),
               {"entity_type": t.entity_type, "start": t.start, "end": t.end, "repetitions": g,
                "extracted": bool(extracted[i]),
                "reconstructed": reconstruction_correct(per_target[i], truth[i])})
        for i, (t, g) in enumerate(zip(targets, groups, strict=True)))
    return AuditResult(AUDIT, tuple(metrics), samples, time.perf_counter() - t0)
