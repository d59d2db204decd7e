"""Token-likelihood metrics from the log-probabilities l_1..l_N of the response tokens (nats).

Surprisal -log p (Shannon 1948, "A Mathematical Theory of Communication"; Hale 2001 for
per-token surprisal of language), perplexity exp(mean surprisal) (Jelinek et al. 1977), the
mean next-token entropy as an uncertainty signal (Malinin & Gales 2021, "Uncertainty Estimation
in Autoregressive Structured Prediction") and Min-K% Prob (Shi et al. 2023)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np


@dataclass(frozen=True)
class LikelihoodScores:
    """Surprisal statistics of one response, in nats per token."""

    surprisal_mean: float
    surprisal_max: float
    perplexity: float
    min_k_prob: float


def min_k_prob(logprobs: Sequence[float], k: float = 0.2) -> float:
    """Min-K% Prob (Shi et al. 2023, "Detecting Pretraining Data from Large Language Models"):

        MinK(x) = (1 / |S|) * sum_{i in S} l_i,  S = the floor(k N) smallest l_i (at least one).

    Higher (closer to 0) means the text's least likely tokens are still likely: more likely a
    member of the training data. Raises ``ValueError`` on an empty sequence.

    The floor(0.5 x 4) = 2 smallest of four log-probabilities are -2.3 and -0.5:

    >>> min_k_prob([-0.1, -2.3, -0.5, -0.05], k=0.5)
    -1.4
    >>> min_k_prob([-1.0, -3.0], k=0.2)  # floor(0.4) = 0, but at least one token
    -3.0
    """
    if not 0 < k <= 1:
        raise ValueError(f"k must be in (0, 1], got {k}")
    values = np.asarray(logprobs, dtype=np.float64)
    if values.size == 0:
        raise ValueError("min_k_prob needs at least one log-probability")
    m = max(1, math.floor(k * values.size))
    return float(np.partition(values, m - 1)[:m].mean())


def likelihood_scores(logprobs: Sequence[float], k: float = 0.2) -> LikelihoodScores | None:
    """Surprisal -l_i (Shannon 1948; "surprisal" in Hale 2001) over the response tokens:

        surprisal_mean = -(1/N) sum_i l_i      surprisal_max = max_i -l_i
        perplexity     = exp(surprisal_mean)   min_k_prob    = Min-K% Prob with k = 0.2

    ``None`` when there is no token.

    >>> s = likelihood_scores([-1.0, -3.0])
    >>> s.surprisal_mean, s.surprisal_max, s.min_k_prob
    (2.0, 3.0, -3.0)
    >>> round(s.perplexity, 6)  # e^2
    7.389056
    >>> likelihood_scores([]) is None
    True
    """
    values = np.asarray(logprobs, dtype=np.float64)
    if values.size == 0:
        return None
    mean = float(-values.mean())
    return LikelihoodScores(
        surprisal_mean=mean,
        surprisal_max=float(-values.min()),
        perplexity=math.exp(mean) if mean < 700 else math.inf,
        min_k_prob=min_k_prob(values, k),
    )


def token_entropy(top_logprobs: Sequence[Sequence[float]]) -> float | None:
    """Mean next-token entropy in nats, H_t = -sum_v p_t(v) log p_t(v), over the positions.

    Only the top-k alternatives are logged, so each position's distribution is renormalised over
    them: p_t(v) = exp(l_v) / sum_u exp(l_u) (a lower bound on the full entropy when k is small).
    Positions with no alternatives are skipped; ``None`` when none has any.

    Two equally likely alternatives give ln 2, four give ln 4 = 2 ln 2; the mean is 1.5 ln 2. The
    alternatives are renormalised, so two at -5.0 also give ln 2:

    >>> round(token_entropy([[math.log(0.5)] * 2, [math.log(0.25)] * 4]), 6)  # 1.5 x 0.693147
    1.039721
    >>> round(token_entropy([[-5.0, -5.0], []]), 6)
    0.693147
    >>> token_entropy([[], []]) is None
    True
    """
    rows = [alts for alts in top_logprobs if len(alts)]
    if not rows:
        return None
    try:  # the common case: the same number of alternatives at every position
        lp = np.array(rows, dtype=np.float64)
    except ValueError:  # ragged: pad with -inf (probability 0)
        lp = np.full((len(rows), max(len(r) for r in rows)), -np.inf)
        for i, alts in enumerate(rows):
            lp[i, : len(alts)] = alts
    lp -= np.logaddexp.reduce(lp, axis=1, keepdims=True)  # renormalise in log space
    p = np.exp(lp)
    with np.errstate(invalid="ignore"):  # 0 x -inf at a padded position: where() drops it
        h = -np.where(p > 0, p * lp, 0.0).sum(axis=1)
    return float(h.mean())


def _segments(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start offsets of the non-empty segments and, per value, the index of its segment."""
    keep = lengths > 0
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[keep]
    seg = np.repeat(np.arange(starts.size), lengths[keep])
    return starts, seg


def likelihood_scores_many(texts: Sequence[Sequence[float] | None],
                           k: float = 0.2) -> list[LikelihoodScores | None]:
    """:func:`likelihood_scores` of many texts at once: the same definitions (Shannon 1948; Hale
    2001; Jelinek et al. 1977; Min-K% Prob of Shi et al. 2023), as array operations over all the
    texts' log-probabilities (one numpy pass instead of ten calls per text). Equal to the per-text
    function up to float rounding of the sums (tests/unit/detectors/test_likelihood.py).

    >>> [s and s.surprisal_mean for s in likelihood_scores_many([[-1.0, -3.0], None, [], [-0.5]])]
    [2.0, None, None, 0.5]
    """
    if not 0 < k <= 1:
        raise ValueError(f"k must be in (0, 1], got {k}")
    lengths = np.fromiter((len(t) if t is not None else 0 for t in texts), np.int64, len(texts))
    out: list[LikelihoodScores | None] = [None] * len(texts)
    if not lengths.any():
        return out
    values = np.fromiter(chain.from_iterable(t for t in texts if t), np.float64, int(lengths.sum()))
    starts, seg = _segments(lengths)
    n = lengths[lengths > 0]
    mean = -np.add.reduceat(values, starts) / n
    worst = -np.minimum.reduceat(values, starts)
    m = np.maximum(1, np.floor(k * n)).astype(np.int64)  # the floor(k N) smallest, at least one
    ordered = values[np.lexsort((values, seg))]  # by text, then by value
    rank = np.arange(values.size) - starts[seg]
    min_k = np.add.reduceat(np.where(rank < m[seg], ordered, 0.0), starts) / m
    with np.errstate(over="ignore"):
        ppl = np.where(mean < 700, np.exp(np.minimum(mean, 700)), np.inf)
    for j, i in enumerate(np.flatnonzero(lengths)):
        out[i] = LikelihoodScores(surprisal_mean=float(mean[j]), surprisal_max=float(worst[j]),
                                  perplexity=float(ppl[j]), min_k_prob=float(min_k[j]))
    return out


def token_entropy_many(texts: Sequence[Sequence[Sequence[float]] | None]) -> list[float | None]:
    """:func:`token_entropy` of many texts at once (Malinin & Gales 2021; same renormalisation over
    the logged top-k): every position of every text in one padded matrix.

    >>> [h if h is None else round(h, 6) for h in token_entropy_many([[[-5.0, -5.0]], None, [[]]])]
    [0.693147, None, None]
    """
    rows = [[alts for alts in t if len(alts)] if t else [] for t in texts]
    per_text = np.fromiter(map(len, rows), np.int64, len(rows))
    out: list[float | None] = [None] * len(texts)
    if not per_text.any():
        return out
    widths = np.fromiter(map(len, chain.from_iterable(rows)), np.int64, int(per_text.sum()))
    flat = np.fromiter(chain.from_iterable(chain.from_iterable(rows)), np.float64, int(widths.sum()))
    width = int(widths.max())
    if (widths == width).all():  # the common case: the same number of alternatives everywhere
        lp = flat.reshape(-1, width)
    else:  # ragged: pad with -inf (probability 0)
        lp = np.full((widths.size, width), -np.inf)
        row = np.repeat(np.arange(widths.size), widths)
        lp[row, np.arange(flat.size) - np.repeat(np.cumsum(widths) - widths, widths)] = flat
    lp = lp - np.logaddexp.reduce(lp, axis=1, keepdims=True)
    p = np.exp(lp)
    with np.errstate(invalid="ignore"):  # 0 x -inf at a padded position: where() drops it
        h = -np.where(p > 0, p * lp, 0.0).sum(axis=1)
    starts, _ = _segments(per_text)
    means = np.add.reduceat(h, starts) / per_text[per_text > 0]
    for j, i in enumerate(np.flatnonzero(per_text)):
        out[i] = float(means[j])
    return out


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


class LikelihoodScorer:
    """The likelihood family (Shannon 1948; Hale 2001; Jelinek et al. 1977; Shi et al. 2023) as a
    ``protocols.RequestScorer``: ``scores(batch)`` of one sequence of response-token
    log-probabilities per request, with :func:`likelihood_scores_many`.

    A request without tokens (``None`` or empty) gets ``None`` everywhere; a value that is not
    finite (a perplexity past exp(700), a -inf log-probability) is ``None`` too, as the contract
    wants finite scores.

    >>> LikelihoodScorer().scores([[-1.0, -3.0], None])[1]
    {'surprisal_mean': None, 'surprisal_max': None, 'perplexity': None, 'min_k_prob': None}
    >>> LikelihoodScorer(k=0.5).scores([[-1.0, -3.0]])[0]["min_k_prob"]
    -3.0
    """

    score_names: tuple[str, ...] = ("surprisal_mean", "surprisal_max", "perplexity", "min_k_prob")

    def __init__(self, k: float = 0.2) -> None:
        if not 0 < k <= 1:
            raise ValueError(f"k must be in (0, 1], got {k}")
        self.k = k

    def scores(self, batch: Sequence[Sequence[float] | None]) -> list[dict[str, float | None]]:
        """``{name: value}`` of :data:`score_names` per item of ``batch``."""
        return [dict.fromkeys(self.score_names) if s is None else
                {name: _finite(getattr(s, name)) for name in self.score_names}
                for s in likelihood_scores_many(batch, self.k)]

    @classmethod
    def _unit_test_batch(cls) -> list[list[float] | None]:
        return [[-0.1, -2.3, -0.5, -0.05], None, [], [-1200.0, -900.0], [-0.7]]


class EntropyScorer:
    """Mean next-token entropy (Malinin & Gales 2021) as a ``protocols.RequestScorer``:
    ``scores(batch)`` of one request's logged top-k alternatives per position, with
    :func:`token_entropy_many` (renormalised over the logged alternatives).

    >>> [round(s["entropy_mean"], 6) for s in EntropyScorer().scores([[[-5.0, -5.0]]])]
    [0.693147]
    >>> EntropyScorer().scores([None, [[]]])
    [{'entropy_mean': None}, {'entropy_mean': None}]
    """

    score_names: tuple[str, ...] = ("entropy_mean",)

    def scores(self, batch: Sequence[Sequence[Sequence[float]] | None]) -> list[dict[str, float | None]]:
        """``{"entropy_mean": value}`` per item of ``batch``."""
        return [{"entropy_mean": h if h is None else _finite(h)} for h in token_entropy_many(batch)]

    @classmethod
    def _unit_test_batch(cls) -> list[list[list[float]] | None]:
        return [[[-0.1, -2.5, -3.0], [-0.7, -0.7]], None, [], [[-0.01, -5.0, -6.0]], [[]]]
