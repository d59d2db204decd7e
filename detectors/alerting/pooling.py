"""Evidence pooled over trailing windows until it suffices, for sparse segments.

A segment with 5 requests a minute never fills a one-minute window with the 20 requests a p99
or a share needs. Instead of judging each window alone, a rule judges the shortest trailing
span of closed windows that holds enough (requests, trials, or expected requests), up to a
limit such as 60 minutes: a sparse segment is judged later rather than never. The detection
delay is then about the time the segment takes to gather that much evidence (``need / rate``
windows), and every alert states the span it was judged over.

How one metric pools over a span (:func:`pooled_value`): counts (``count``, ``{score}_n``,
``{score}_flagged``, feedback) as their mean per window; a ``{score}_mean`` as the mean weighted
by the windows' ``{score}_n``, exactly the mean over the span's requests; a quantile as the
largest of the windows' quantiles, an upper bound of the span's quantile (a window holds no
sketch to merge); a p-value by Bonferroni, min(1, m * min p).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

_PER_WINDOW = ("count", "feedback_count", "thumbs_down")
_QUANTILES = ("p50", "p95", "p99")


class Part(NamedTuple):
    """One window of a pooled metric: its requests, the metric's weight (a mean's ``n``), the value."""

    count: float
    weight: float
    value: float | None


def trailing_span(amounts: Sequence[float], need: float, limit: int) -> int | None:
    """The number of trailing items whose ``amounts`` first add up to ``need``, looking at no
    more than the last ``limit``; ``None`` when even those fall short.

    >>> trailing_span([9, 1, 3, 2, 5], need=11, limit=5), trailing_span([9, 1, 3], 20, 3)
    (4, None)
    >>> trailing_span([9, 1, 3, 2, 5], need=11, limit=3) is None
    True
    """
    total = 0.0
    for i, amount in enumerate(reversed(amounts[len(amounts) - limit:] if limit < len(amounts) else amounts)):
        total += amount
        if total >= need:
            return i + 1
    return None


def pooled_value(metric: str, parts: Sequence[Part]) -> float | None:
    """The value of ``metric`` over the windows ``parts`` (see the module docstring); ``None``
    when no window has a value.

    >>> parts = [Part(10, 10, 100.0), Part(30, 30, 200.0)]
    >>> pooled_value("latency_ms_mean", parts), pooled_value("latency_ms_p99", parts)
    (175.0, 200.0)
    >>> pooled_value("count", [Part(3, 3, 3.0), Part(0, 0, 0.0)])
    1.5
    """
    valued = [p for p in parts if p.value is not None]
    if not valued:
        return None
    stat = metric.rpartition("_")[2]
    if metric in _PER_WINDOW or stat in ("n", "flagged"):
        return sum(p.value for p in valued) / len(parts)
    if stat == "mean":
        weight = sum(p.weight for p in valued)
        if weight <= 0:
            return sum(p.value for p in valued) / len(valued)
        return sum(p.value * p.weight for p in valued) / weight
    if stat in _QUANTILES:
        return max(p.value for p in valued)
    return min(1.0, len(valued) * min(p.value for p in valued))


def weight_metric(metric: str) -> str | None:
    """The window key whose value weighs ``metric`` when pooled: a mean's ``{score}_n``.

    >>> weight_metric("surprisal_mean_mean"), weight_metric("latency_ms_p99")
    ('surprisal_mean_n', None)
    """
    score, _, stat = metric.rpartition("_")
    return f"{score}_n" if score and stat == "mean" else None
