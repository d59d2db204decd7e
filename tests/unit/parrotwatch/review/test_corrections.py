"""A correction that cannot be scored is stored with null metrics and its reason, never stops
the review jobs: not even when the metric libraries are missing."""

from __future__ import annotations

import builtins

from parrotwatch.review.corrections import metrics_of


def test_identical_texts_score_one():
    rouge, bleu, reason = metrics_of("the cat sat on the mat", "the cat sat on the mat")
    assert reason is None and rouge == 1.0 and abs(bleu - 1.0) < 1e-9


def test_missing_metric_libraries_give_a_reason_not_an_error(monkeypatch):
    real_import = builtins.__import__

    def no_rouge(name, *args, **kwargs):
        if name.startswith(("rouge_score", "sacrebleu")):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    from parrotwatch.detectors import task_metrics

    task_metrics._rouge.cache_clear()  # a cached scorer would hide the missing module
    monkeypatch.setattr(builtins, "__import__", no_rouge)
    rouge, bleu, reason = metrics_of("a response", "a correction")
    assert (rouge, bleu) == (None, None) and "rouge-score" in reason
