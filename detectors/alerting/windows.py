"""What a rule reads: the aggregates of one closed window of one segment.

A window aggregate is a :class:`WindowAggregate`: the segment's request ``count``, feedback
counts, the drift p-value and, per score, its :class:`MetricStats` (``n``, ``mean``, quantiles,
``flagged``). A rule names what it reads as ``count``-like window keys or ``{score}_{stat}``
(``latency_ms_p99``): :meth:`WindowAggregate.value` resolves that name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from parrotwatch.detectors.alerting.rules import SCORE_STATS, WINDOW_KEYS, Rule

MAX_WINDOW_COUNT = 2**31 - 1  # a window's counts are 32-bit integer columns
_FIELDS = ("model", "app", "window_start", "window_end", *WINDOW_KEYS, "examples")


class MetricStats(NamedTuple):
    """One score's aggregates over the requests of one window (a ``window_metrics`` row):
    ``n`` scored requests, their ``mean`` and quantiles, and how many were ``flagged``."""

    n: int | None = None
    mean: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    flagged: int | None = None


if MetricStats._fields != SCORE_STATS:  # the rules name a score's stats; a window holds the same ones
    raise ImportError(f"MetricStats fields {MetricStats._fields} differ from rules.SCORE_STATS {SCORE_STATS}")


@dataclass(frozen=True)
class WindowAggregate:
    """The aggregates of one closed window of one segment (``model`` x ``app``), the evaluator's input.

    ``metrics`` maps a score name to its :class:`MetricStats`; a score nobody computed is absent
    (or all ``None``), which a rule over it sees as "no data". ``labels`` holds further segment
    labels for a ``segment_by`` beyond model and app. Values are kept as given (a database driver's
    ``Decimal``, ``pd.NA``): :func:`number` reads them.
    """

    window_start: datetime
    window_end: datetime
    model: str | None = None
    app: str | None = None
    count: int | None = None
    feedback_count: int | None = None
    thumbs_down: int | None = None
    drift_p_value: float | None = None
    metrics: Mapping[str, MetricStats] = field(default_factory=dict)
    examples: Sequence[Any] = ()
    labels: Mapping[str, Any] = field(default_factory=dict)

    def value(self, name: str) -> Any:
        """What a rule named ``name`` reads: a window key (``count``, ``drift_p_value``, a label)
        or ``{score}_{stat}`` with stat in ``n, mean, p50, p95, p99, flagged``; ``None`` if absent.

        >>> from datetime import UTC
        >>> t = datetime(2026, 1, 1, tzinfo=UTC)
        >>> w = WindowAggregate(t, t, count=7, metrics={"latency_ms": MetricStats(n=7, p99=812.0)})
        >>> w.value("latency_ms_p99"), w.value("count"), w.value("toxicity_n")
        (812.0, 7, None)
        """
        if name in _FIELDS:
            return getattr(self, name)
        score, _, stat = name.rpartition("_")
        if score and stat in SCORE_STATS:
            stats = self.metrics.get(score)
            if stats is not None:
                return getattr(stats, stat)
        return self.labels.get(name)

    @classmethod
    def from_flat(cls, window: Mapping[str, Any]) -> WindowAggregate:
        """From the flat layout: ``{"model", "app", "window_start", ..., "{score}_{stat}": value}``
        (``window_start`` and ``window_end`` required; other keys become ``labels``)."""
        known: dict[str, Any] = {k: window.get(k) for k in _FIELDS if k in window}
        metrics: dict[str, dict[str, Any]] = {}
        labels: dict[str, Any] = {}
        for key, val in window.items():
            if key in _FIELDS:
                continue
            score, _, stat = key.rpartition("_")
            if score and stat in SCORE_STATS:
                metrics.setdefault(score, {})[stat] = val
            else:
                labels[key] = val
        known["examples"] = list(known.get("examples") or ())
        return cls(**{"window_start": window["window_start"], "window_end": window["window_end"], **known,
                      "metrics": {k: MetricStats(**v) for k, v in metrics.items()}, "labels": labels})

    def as_flat(self) -> dict[str, Any]:
        """The flat layout :meth:`from_flat` reads (every score's six stats, ``None`` where absent)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in _FIELDS}
        out["examples"] = list(self.examples)
        for score, stats in self.metrics.items():
            out.update({f"{score}_{stat}": v for stat, v in zip(SCORE_STATS, stats, strict=True)})
        return {**out, **self.labels}


def as_window(window: WindowAggregate | Mapping[str, Any]) -> WindowAggregate:
    """``window`` itself, or a flat mapping read with :meth:`WindowAggregate.from_flat`."""
    return window if isinstance(window, WindowAggregate) else WindowAggregate.from_flat(window)


def number(value: Any) -> float | None:
    """``value`` as a float; ``None`` when null, NaN or not a number (``pd.NA``).

    >>> number(3), number("nan"), number(None), number("x")
    (3.0, None, None, None)
    """
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def times(window: WindowAggregate) -> tuple[datetime, datetime]:
    """``(window_start, window_end)``: the first two fields of an Observation."""
    return window.window_start, window.window_end


def too_small(rule: Rule, window: WindowAggregate) -> bool:
    """Whether the window has fewer requests than the rule's ``min_count`` (then: no data)."""
    return rule.min_count > 0 and (number(window.count) or 0) < rule.min_count
