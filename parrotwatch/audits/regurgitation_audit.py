"""The regurgitation audit job: scan logged model outputs for verbatim overlaps of >= ``min_tokens`` tokens
with the training corpus (:func:`parrotwatch.detectors.audits.regurgitation.scan`), then attribute each
flagged output
to the corpus document that holds it (:func:`~parrotwatch.detectors.audits.regurgitation.top_documents`).

Outputs come from a JSONL file (inference events v1: ``request_id`` + ``response``; or ``id`` + ``text``):
the ``inference_scores`` table keeps scores, not response texts. The index is ``parrotwatch index build``'s
file, or, when the spec names none, an exact index of the members and canaries built here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from parrotwatch.audits.inputs import AuditInputs
from parrotwatch.audits.results import AuditResult, Metric, Sample
from parrotwatch.audits.spec import RegurgitationAudit
from parrotwatch.detectors.audits.ngram_index import ExactIndex, load_index
from parrotwatch.detectors.audits.regurgitation import scan, top_documents

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
    verified = dict(attribution.outputs)
    samples = tuple(
        Sample(AUDIT, str(oid), "output", float(ov.tokens),
               {"start": ov.start, "end": ov.end, "doc_id": None if verified[oid].doc_id is None
                else str(verified[oid].doc_id), "verified_tokens": verified[oid].tokens})
        for oid, ov in report.flagged)
    return AuditResult(AUDIT, tuple(metrics), samples, time.perf_counter() - t0, None)
