"""Per rule kind, per segment: read the closed windows and decide each one's Observation.

A check holds the rule's state for one segment (the baseline detector, the pooled windows, the
rate history). ``observe(window, firing)`` decides; ``commit(condition)`` is told the final
decision after the FDR control, so a rate baseline keeps only clean windows. ``to_state()`` is
the check's state as versioned JSON; ``from_state(rule, state)`` restores it for the same rule.
Window types live in :mod:`~parrotwatch.detectors.alerting.windows`, the checks on pooled
counts in :mod:`~parrotwatch.detectors.alerting.count_checks`.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from datetime import timedelta
from typing import Any, Self

from parrotwatch.detectors.alerting.baselines import BASELINES, Cusum, EwmaZScore
from parrotwatch.detectors.alerting.count_checks import (
    RateCounts,
    RateDropCheck,
    RateRatioCheck,
    epoch_minutes,
)
from parrotwatch.detectors.alerting.lifecycle import Observation
from parrotwatch.detectors.alerting.pooling import Part, pooled_value, trailing_span, weight_metric
from parrotwatch.detectors.alerting.rules import (
    CusumRule,
    DriftRule,
    EwmaRule,
    PageHinkleyRule,
    RateDropRule,
    RateRatioRule,
    Rule,
    ThresholdRule,
    span_windows,
)
from parrotwatch.detectors.alerting.state import StateError, decode, encode_float, mapping, sequence, upgrade
from parrotwatch.detectors.alerting.stats import theil_sen_slope
from parrotwatch.detectors.alerting.windows import (
    MetricStats,
    WindowAggregate,
    as_window,
    number,
    times,
    too_small,
)

__all__ = ["BaselineCheck", "Check", "DriftCheck", "MetricStats", "RateCounts", "RateDropCheck",
           "RateRatioCheck", "ThresholdCheck", "WindowAggregate", "as_window", "check_from_state",
           "make_check", "number"]
def _expm1(x: float) -> float:
    """``exp(x) - 1``, ``inf`` past a float's range (a baseline learned from a 1e308 latency)."""
    try:
        return math.expm1(x)
    except OverflowError:
        return math.inf


_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_WINDOW = timedelta(minutes=1)


class _Stateless:
    """``to_state`` / ``from_state`` of a check with nothing to remember."""

    def forget_last(self) -> None:
        """Nothing kept, nothing to forget."""

    def to_state(self) -> dict[str, Any]:
        """Only the version."""
        return {"version": 1}

    @classmethod
    def from_state(cls, rule: Any, state: Any, where: str = "check") -> Self:
        """A fresh check for ``rule`` once ``state`` is a known version."""
        mapping(upgrade(state, where, 1, {}), where, {"version"})
        return cls(rule)


class ThresholdCheck(_Stateless):
    """``value op threshold``; while firing, ``value op resolve_value`` (hysteresis) when given."""

    def __init__(self, rule: ThresholdRule) -> None:
        self.rule = rule

    def observe(self, window: WindowAggregate, firing: bool) -> Observation:
        """Compare the window's metric with the rule's limit."""
        x, rule = number(window.value(self.rule.metric)), self.rule
        if x is None or too_small(rule, window):
            return Observation(*times(window), None, x, threshold=rule.value)
        limit = rule.resolve_value if firing and rule.resolve_value is not None else rule.value
        return Observation(*times(window), _OPS[rule.op](x, limit), x, threshold=rule.value)

    def commit(self, condition: bool | None) -> None:
        """Stateless: nothing to learn."""


class BaselineCheck:
    """The metric (or log(1 + metric)) fed to its EWMA, CUSUM or Page-Hinkley detector.

    Without ``pool_until`` each window's value is one update. With it (sparse segments), a
    window is judged on the shortest trailing span holding ``min_count`` requests
    (:mod:`~parrotwatch.detectors.alerting.pooling`), and the detector learns once per *block*:
    when the windows since its last update hold a full span. Between blocks, an EWMA still
    judges every window's span against its baseline (``EwmaZScore.peek``: a spike is seen in the
    window it starts) while a CUSUM, whose sums must not count a window twice, repeats its last
    decision. While the alert fires, a CUSUM block of several windows whose value keeps pushing
    the sum up (``Cusum.rising``) stays bad, so a lasting shift is one alert rather than a train
    of them (blocks of one window rely on the rule's ``resolve_after`` to bridge the restarts).
    ``trend_span`` keeps the blocks' values of that span and states their Theil-Sen slope
    (``slope_pct_per_10m`` on a log scale, ``slope_per_10m`` otherwise) since the change began:
    for a CUSUM, from the last block at which its sum was 0 (Page's estimate of the change
    point; Montgomery §9.1.2), within ``trend_span``.
    """

    STATE_VERSION = 2

    def __init__(self, rule: EwmaRule | CusumRule | PageHinkleyRule, window: timedelta = _WINDOW) -> None:
        self.rule, self.window_minutes = rule, window / timedelta(minutes=1)
        params = rule.model_dump(include=_DETECTOR_PARAMS[rule.kind])
        self.detector = BASELINES[rule.kind](**params)
        self.pool = span_windows(rule.pool_until, window) if rule.pool_until is not None else None
        self.trend = span_windows(rule.trend_span, window) if rule.trend_span is not None else None
        self._parts: deque[Part] = deque(maxlen=self.pool or 1)
        self._points: deque[tuple[float, float]] = deque(maxlen=self.trend or 1)
        self._open, self._last, self._since = 0, False, -math.inf

    def _reference(self) -> tuple[float, float | None]:
        """The baseline before the update and, for EWMA, the level that would alarm."""
        d = self.detector
        if isinstance(d, EwmaZScore):
            scale = max(d.sigma, d.min_sigma, d.min_rel_sigma * abs(d.mean))
            edge = d.mean - d.threshold * scale if d.direction == "down" else d.mean + d.threshold * scale
            return d.mean, edge
        return (d.mu0 if isinstance(d, Cusum) else d.mean), None

    def _pooled(self, window: WindowAggregate, x: float | None) -> tuple[float | None, dict[str, Any]]:
        """Add the window to the pool; the value of the shortest trailing span with enough requests."""
        rule, weight_key = self.rule, weight_metric(self.rule.metric)
        count = number(window.count) or 0.0
        weight = (number(window.value(weight_key)) or 0.0) if weight_key else count
        self._parts.append(Part(count, weight, x))
        self._open = min(self._open + 1, len(self._parts))
        span = trailing_span([q.count for q in self._parts], max(rule.min_count, 1), len(self._parts))
        if span is None:
            return None, {}
        parts = list(self._parts)[-span:]
        info = {"span_windows": span, "span_minutes": span * self.window_minutes,
                "span_requests": sum(q.count for q in parts)}
        return pooled_value(rule.metric, parts), info

    def observe(self, window: WindowAggregate, firing: bool) -> Observation:
        """Update the detector with this window's (pooled) value; its ``alarm`` is the condition."""
        x, rule = number(window.value(self.rule.metric)), self.rule
        log = rule.transform == "log"
        info: dict[str, Any] = {}
        if self.pool is not None:
            x, info = self._pooled(window, x)
        elif too_small(rule, window):
            x = None
        # log1p, not log: a segment whose traffic fell to 0 requests must still be seen.
        if x is None or (log and x < 0):
            return Observation(*times(window), None, x, evidence=info)
        y = math.log1p(x) if log else x
        baseline, edge = self._reference()
        ready = self.detector.ready
        if self.pool is None or self._open >= info["span_windows"]:
            self._open = 0
            self.detector.update(y)
            condition, statistic = self.detector.alarm, self.detector.statistic
            if self.pool is not None and isinstance(self.detector, Cusum) and info["span_windows"] > 1:
                condition = condition or (firing and self.detector.rising)
            self._last = condition
            if self.trend is not None:
                self._points.append((epoch_minutes(window.window_end), y))
                if isinstance(self.detector, Cusum) and self.detector.statistic == 0:
                    self._since = epoch_minutes(window.window_end)  # the sum's last zero
        elif isinstance(self.detector, EwmaZScore):
            statistic, condition = self.detector.peek(y)
        else:
            condition, statistic = self._last, self.detector.statistic
        if log:
            baseline, edge = _expm1(baseline), (_expm1(edge) if edge is not None else None)
        evidence = {"detector": rule.kind, "statistic": statistic, **info,
                    **self._slope(epoch_minutes(window.window_end), log)}
        return Observation(*times(window), condition, x, baseline if ready else None,
                           edge if ready else None, evidence=evidence)

    def _slope(self, now: float, log: bool) -> dict[str, Any]:
        """The Theil-Sen slope of the blocks in the trend span, per 10 minutes (empty without one)."""
        if self.trend is None:
            return {}
        start = max(now - self.trend * self.window_minutes, self._since - self.window_minutes)
        pts = [(t, y) for t, y in self._points if t > start]
        slope = theil_sen_slope([t for t, _ in pts], [y for _, y in pts])
        if slope is None:
            return {}
        out = {"slope_per_10m": 10 * slope, "trend_minutes": now - pts[0][0] + self.window_minutes}
        if log:
            out["slope_pct_per_10m"] = 100 * math.expm1(10 * slope)
        return out

    def forget_last(self) -> None:
        """The window just observed is explained by another incident: its value leaves the pool
        (its requests still count towards a span)."""
        if self.pool is not None and self._parts:
            self._parts[-1] = self._parts[-1]._replace(weight=0.0, value=None)

    def commit(self, condition: bool | None) -> None:
        """The detector learned in ``observe`` (it keeps outliers out by itself)."""

    def to_state(self) -> dict[str, Any]:
        """The detector's state (its hyperparameters included), the pool and the trend points."""
        f = encode_float
        return {"version": self.STATE_VERSION, "detector": self.detector.to_state(),
                "parts": [[f(q.count), f(q.weight), None if q.value is None else f(q.value)]
                          for q in self._parts],
                "points": [[f(t), f(y)] for t, y in self._points],
                "open": self._open, "last": self._last, "since": f(self._since)}

    @classmethod
    def from_state(cls, rule: EwmaRule | CusumRule | PageHinkleyRule, state: Any,
                   where: str = "check", window: timedelta = _WINDOW) -> BaselineCheck:
        """The check of ``rule`` with its stored detector; hyperparameters other than the rule's
        (a changed default) are a :class:`StateError`. Version 1 had no pool: it starts empty."""
        fresh = {"parts": [], "points": [], "open": 0, "last": False, "since": "-inf"}
        state = upgrade(state, where, cls.STATE_VERSION, {1: lambda s: {**s, **fresh}})
        state = mapping(state, where, {"version", "detector", *fresh})
        check = cls(rule, window)
        kind = type(check.detector)
        detector = kind.from_state(state["detector"], f"{where}.detector")
        if detector.to_state()["params"] != check.detector.to_state()["params"]:
            raise StateError(f"{where}.detector: parameters differ from rule {rule.name!r}'s")
        check.detector = detector
        parts = sequence(state["parts"], f"{where}.parts")
        for i, row in enumerate(parts[max(0, len(parts) - (check._parts.maxlen or 1)):]):
            at = f"{where}.parts[{i}]"
            if len(sequence(row, at)) != 3:
                raise StateError(f"{at}: expected [count, weight, value]")
            check._parts.append(Part(decode("float", row[0], at), decode("float", row[1], at),
                                     decode("float?", row[2], at)))
        points = sequence(state["points"], f"{where}.points")
        for i, row in enumerate(points[max(0, len(points) - (check._points.maxlen or 1)):]):
            at = f"{where}.points[{i}]"
            if len(sequence(row, at)) != 2:
                raise StateError(f"{at}: expected [t, y]")
            check._points.append((decode("float", row[0], at), decode("float", row[1], at)))
        check._open = min(decode("count", state["open"], f"{where}.open"), len(check._parts))
        check._last = decode("bool", state["last"], f"{where}.last")
        check._since = decode("float", state["since"], f"{where}.since")
        return check


_DETECTOR_PARAMS = {
    "ewma": {"alpha", "threshold", "warmup", "direction", "min_sigma", "min_rel_sigma", "relearn_after"},
    "cusum": {"k", "h", "warmup", "direction", "target", "sigma", "min_sigma", "min_rel_sigma", "fir",
              "freeze_after", "relearn_after"},
    "page_hinkley": {"delta", "threshold", "alpha", "min_instances", "direction"},
}


class DriftCheck(_Stateless):
    """``drift_p_value < p_value``; the p-value takes part in the FDR control."""

    def __init__(self, rule: DriftRule) -> None:
        self.rule = rule

    def observe(self, window: WindowAggregate, firing: bool) -> Observation:
        """Read the drift detector's p-value of the window."""
        p = number(window.value(self.rule.metric))
        if p is None or too_small(self.rule, window):
            return Observation(*times(window), None, p, threshold=self.rule.p_value)
        return Observation(*times(window), p < self.rule.p_value, p, None, self.rule.p_value, p)

    def commit(self, condition: bool | None) -> None:
        """Stateless: nothing to learn."""


Check = ThresholdCheck | BaselineCheck | RateRatioCheck | RateDropCheck | DriftCheck


def check_from_state(rule: Rule, state: Any, where: str = "check", window: timedelta = _WINDOW) -> Check:
    """The check of ``rule`` restored from its ``to_state()``; :class:`StateError` if it cannot be."""
    kind = type(make_check(rule, window))
    if kind in (ThresholdCheck, DriftCheck):
        return kind.from_state(rule, state, where)
    return kind.from_state(rule, state, where, window)


def make_check(rule: Rule, window: timedelta = _WINDOW) -> Check:
    """A fresh check for one segment of ``rule``, over windows of length ``window``."""
    if isinstance(rule, ThresholdRule):
        return ThresholdCheck(rule)
    if isinstance(rule, RateRatioRule):
        return RateRatioCheck(rule, window)
    if isinstance(rule, RateDropRule):
        return RateDropCheck(rule, window)
    if isinstance(rule, DriftRule):
        return DriftCheck(rule)
    return BaselineCheck(rule, window)
