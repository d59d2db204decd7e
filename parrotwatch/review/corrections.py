"""Task metrics of a response against a user's correction (issue 14, part 6).

For every ``feedback`` row with a non-empty ``correction`` whose request's response was kept for
review (``review_texts``), ROUGE-L F1 (Lin 2004, longest common subsequence) and sentence BLEU
(Papineni et al. 2002, sacrebleu's smoothed sentence score, scaled to [0, 1]) of the response
against the correction, from :func:`parrotwatch.detectors.task_metrics.task_metrics`, upserted into
``correction_scores``. A row that cannot be scored (a text over :data:`MAX_CHARS`: ROUGE-L's
LCS is quadratic in the tokens; or a metric that fails) is stored with null metrics and its
reason logged, so it is not tried again on every run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

log = logging.getLogger(__name__)

#: Longest response or correction scored (characters); longer ones get null metrics.
MAX_CHARS = 20_000

_PENDING = """
SELECT f.feedback_id, f.request_id, t.event_time, t.model, t.app,
       left(t.response, %(cap)s), length(t.response), left(f.correction, %(cap)s), length(f.correction)
FROM feedback f JOIN review_texts t ON t.request_id = f.request_id
WHERE f.correction IS NOT NULL AND btrim(f.correction) <> ''
  AND NOT EXISTS (SELECT 1 FROM correction_scores c WHERE c.feedback_id = f.feedback_id)
  AND (%(ids)s::text[] IS NULL OR f.request_id = ANY(%(ids)s::text[]))
ORDER BY f.feedback_id
"""

_UPSERT = """
INSERT INTO correction_scores (feedback_id, request_id, event_time, model, app, rouge_l_f, bleu)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (feedback_id) DO UPDATE SET rouge_l_f = EXCLUDED.rouge_l_f, bleu = EXCLUDED.bleu,
    computed_at = clock_timestamp()
"""


@dataclass(frozen=True)
class CorrectionOutcome:
    scored: int
    skipped: int


def metrics_of(response: str, correction: str) -> tuple[float | None, float | None, str | None]:
    """(ROUGE-L F, BLEU, None) of ``response`` against ``correction``; (None, None, reason) when
    they cannot be scored."""
    from parrotwatch.detectors.task_metrics import task_metrics

    try:
        scores = task_metrics(response, correction)
    except ImportError as exc:  # a slimmed install: say what is missing, do not stop the job
        return None, None, f"task metrics need rouge-score and sacrebleu ({exc})"
    except Exception as exc:  # noqa: BLE001 (one odd text must not stop the job)
        return None, None, f"{type(exc).__name__}: {str(exc)[:200]}"
    return scores["rouge_l_f"], scores["bleu"], None


def score_corrections(conn: psycopg.Connection,
                      request_ids: Sequence[str] | None = None) -> CorrectionOutcome:
    """Score the corrections not yet scored (of ``request_ids`` only, when given); the caller
    owns the transaction."""
    rows = conn.execute(_PENDING, {"cap": MAX_CHARS + 1,
                                   "ids": list(request_ids) if request_ids is not None else None}
                        ).fetchall()
    scored = skipped = 0
    for feedback_id, request_id, event_time, model, app, response, n_resp, correction, n_corr in rows:
        if n_resp > MAX_CHARS or n_corr > MAX_CHARS:
            rouge = bleu = None
            reason = (f"response of {n_resp} or correction of {n_corr} characters is over the "
                      f"{MAX_CHARS}-character limit")
        else:
            rouge, bleu, reason = metrics_of(response, correction)
        if reason:
            skipped += 1
            log.warning("correction %r of request %r not scored (stored with null metrics): %s",
                        feedback_id[:80], request_id[:80], reason)
        else:
            scored += 1
        conn.execute(_UPSERT, (feedback_id, request_id, event_time, model, app, rouge, bleu))
    if rows:
        log.info("correction scores: %d scored, %d skipped", scored, skipped)
    return CorrectionOutcome(scored, skipped)
