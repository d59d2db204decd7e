"""The regurgitation audit job: scan logged model outputs for verbatim overlaps of >= ``min_tokens`` tokens
with the training corpus (:func:`parrotwatch.detectors.audits.regurgitation.scan`), then attribute each
flagged output
to the corpus document that holds it (:func:`~parrotwatch.detectors.audits.regurgitation.top_documents`);
and for near-verbatim copies (ALL CAPS, re-spaced, lightly edited; Ippolito et al. 2022) of >=
``min_tokens`` tokens at edit similarity >= ``near_verbatim_min_similarity``, verified against the corpus
text (:func:`parrotwatch.detectors.audits.near_verbatim.near_verbatim_scan`, with an exact index of n =
``near_verbatim_n`` built here from the same corpus); spec keys of ``RegurgitationAudit``, defaults
8, 0.8 and a gap of 16 words.

Outputs come from a JSONL file (inference events v1: ``request_id`` + ``response``; or ``id`` + ``text``):
the ``inference_scores`` table keeps scores, not response texts. The index is ``parrotwatch index build``'s
file, or, when the spec names none, an exact index of the members and canaries built here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Hashable
from pathlib import Path

from parrotwatch.audits.inputs import AuditInputs
from parrotwatch.audits.results import AuditResult, Metric, Sample
from parrotwatch.audits.spec import RegurgitationAudit
from parrotwatch.detectors.audits.near_verbatim import (
    NO_MATCH,
    NearVerbatimMatch,
    near_verbatim_scan,
)
from parrotwatch.detectors.audits.ngram_index import ExactIndex, load_index
from parrotwatch.detectors.audits.regurgitation import Overlap, scan, top_documents

AUDIT = "regurgitation"


def read_outputs(path: Path) -> dict[str, str]:
    """``{id: text}`` of a JSONL file of inference events v1 (``request_id``, ``response``) or of
    ``{"id", "text"}`` rows (ids default to the line number)."""
    out = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text = row["response"] if "response" in row else row["text"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path}:{n}: expected an inference event with 'response' or an object with "
                             "'text'") from None
        out[str(row.get("request_id", row.get("id", n)))] = text
    return out


def run_regurgitation(inputs: AuditInputs, cfg: RegurgitationAudit, bar) -> AuditResult:
    t0 = time.perf_counter()
    outputs = read_outputs(cfg.outputs)
    corpus = {t.id: t.text for t in inputs.members}
    if inputs.canaries is not None:
        corpus.update({c.id: c.text for c in inputs.canaries.items})
    with bar(len(outputs), "regurgitation: scanning") as b:
        index = (load_index(cfg.index) if cfg.index
                 else ExactIndex.from_documents(corpus.values(), n=cfg.min_tokens))
        report = scan(outputs, index, min_tokens=cfg.min_tokens)
        attribution = top_documents(report, outputs, corpus, index, k=cfg.top_documents)
        near_n = min(cfg.near_verbatim_n, cfg.min_tokens)
        near = near_verbatim_scan(outputs, corpus, ExactIndex.from_documents(corpus.values(), n=near_n),
                                  min_tokens=cfg.min_tokens,
                                  min_similarity=cfg.near_verbatim_min_similarity,
                                  max_gap=cfg.near_verbatim_max_gap)
        b.update(len(outputs))
    lab = {"min_tokens": str(cfg.min_tokens), "n": str(index.n)}
    metrics = [Metric(AUDIT, "n_outputs", report.n_outputs, labels=lab),
               Metric(AUDIT, "n_flagged", report.n_flagged, labels=lab),
               Metric(AUDIT, "rate", report.rate, labels=lab),
               Metric(AUDIT, "expected_false_flags", report.expected_false_flags, labels=lab),
               Metric(AUDIT, "ngram_false_positive_rate", report.ngram_fpr, labels=lab),
               Metric(AUDIT, "n_unverified", len(attribution.unverified), labels=lab)]
    metrics += [Metric(AUDIT, "document_outputs", d.n_outputs, labels={"doc_id": str(d.doc_id),
                                                                        "max_tokens": str(d.max_tokens)})
                for d in attribution.documents]
    near_lab = {"min_tokens": str(cfg.min_tokens), "n": str(near_n),
                "min_similarity": str(near.min_similarity), "max_gap": str(near.max_gap)}
    metrics += [Metric(AUDIT, "near_verbatim_rate", near.hit_rate, labels=near_lab),
                Metric(AUDIT, "near_verbatim_n_hits", near.n_hits, labels=near_lab),
                Metric(AUDIT, "near_verbatim_n_candidates", near.n_candidates, labels=near_lab),
                Metric(AUDIT, "near_verbatim_n_unverified", near.n_unverified, labels=near_lab)]
    return AuditResult(AUDIT, tuple(metrics), _samples(report.flagged, dict(attribution.outputs),
                                                       dict(near.matches)),
                       time.perf_counter() - t0, None)


def _samples(flagged: tuple[tuple[Hashable, Overlap], ...], verified: dict[Hashable, Overlap],
             near: dict[Hashable, NearVerbatimMatch]) -> tuple[Sample, ...]:
    """One sample per output flagged verbatim or a near-verbatim hit, in output order of the scan then
    of the hits; score: the longer of its verbatim overlap and its near-verbatim match, tokens."""
    overlaps = dict(flagged)
    out = []
    for oid in [*overlaps, *(o for o in near if o not in overlaps)]:
        ov, nv = overlaps.get(oid), near.get(oid, NO_MATCH)
        extra = {"near_verbatim_tokens": nv.tokens, "near_verbatim_similarity": nv.similarity,
                 "near_verbatim_corpus_count": nv.corpus_count,
                 "near_verbatim_doc_id": None if nv.doc_id is None else str(nv.doc_id),
                 "near_verbatim_start": nv.start, "near_verbatim_end": nv.end}
        if ov is not None:
            doc = verified[oid].doc_id
            extra |= {"start": ov.start, "end": ov.end, "doc_id": None if doc is None else str(doc),
                      "verified_tokens": verified[oid].tokens}
        out.append(Sample(AUDIT, str(oid), "output", float(max(ov.tokens if ov else 0, nv.tokens)), extra))
    return tuple(out)
