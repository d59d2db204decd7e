"""Reference-based task metrics of one prediction against one reference answer.

All scores are in 0..1, higher is closer to the reference:

- ``rouge_l_f``: ROUGE-L F-measure (Lin 2004, "ROUGE: A Package for Automatic Evaluation of
  Summaries"), via Google's ``rouge-score``: with LCS the longest common word subsequence,
  P = LCS/|pred|, R = LCS/|ref|, F = 2PR/(P+R) (beta = 1; lower-cased alphanumeric tokens, no
  stemming).
- ``bleu``: sentence BLEU (Papineni et al. 2002) from ``sacrebleu`` (Post 2018), divided by 100:
  BP * exp(sum_{n=1..4} log(p_n) / 4), BP = min(1, exp(1 - |ref|/|pred|)), 13a tokenisation,
  ``exp`` smoothing of zero n-gram counts (Chen & Cherry 2014).
- ``chrf``: chrF (Popovic 2015) from ``sacrebleu``, divided by 100: character n-grams n = 1..6,
  whitespace ignored, F-beta with beta = 2 (recall weighted twice as much as precision).
- ``exact_match`` and ``token_f1``: the SQuAD v1.1 metrics (Rajpurkar et al. 2016, official
  evaluation script): both texts normalised (lower case, punctuation and the articles a/an/the
  removed, white space collapsed); EM = 1 if equal; token F1 = 2PR/(P+R) over the multiset of
  shared tokens, 0 when none is shared (1 when both are empty, the SQuAD 2.0 convention).
"""

from __future__ import annotations

import functools
import re
import string
from collections import Counter

TASK_METRIC_NAMES = ("rouge_l_f", "bleu", "chrf", "exact_match", "token_f1")
_PUNCT = set(string.punctuation)


def squad_normalize(text: str) -> str:
    """SQuAD answer normalisation: lower, drop punctuation, drop articles, collapse spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    return float(squad_normalize(prediction) == squad_normalize(reference))


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = squad_normalize(prediction).split(), squad_normalize(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    shared = sum((Counter(pred) & Counter(ref)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(pred), shared / len(ref)
    return 2 * precision * recall / (precision + recall)


@functools.cache
def _rouge():
    try:
        from rouge_score import rouge_scorer
    except ImportError as exc:
        raise ImportError("ROUGE-L needs rouge-score (a parrotwatch dependency): "
                          "pip install rouge-score") from exc
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def _sacrebleu():
    try:
        import sacrebleu
    except ImportError as exc:
        raise ImportError("BLEU and chrF need sacrebleu (a parrotwatch dependency): "
                          "pip install sacrebleu") from exc
    return sacrebleu


def task_metrics(prediction: str, reference: str) -> dict[str, float]:
    """Every metric of :data:`TASK_METRIC_NAMES` for ``prediction`` against ``reference``."""
    sacrebleu = _sacrebleu()
    return {
        "rouge_l_f": float(_rouge().score(reference, prediction)["rougeL"].fmeasure),
        "bleu": sacrebleu.sentence_bleu(prediction, [reference]).score / 100.0,
        "chrf": sacrebleu.sentence_chrf(prediction, [reference]).score / 100.0,
        "exact_match": exact_match(prediction, reference),
        "token_f1": token_f1(prediction, reference),
    }
