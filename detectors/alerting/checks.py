"""Per rule kind, per segment: read one window aggregate and decide its Observation.

A window aggregate is a :class:`WindowAggregate`: the segment's request ``count``, feedback
counts, the drift p-value and, per score, its :class:`MetricStats` (``n``, ``mean``, quantiles,
``flagged``). A rule names what it reads as ``count``-like window keys or ``{score}_{stat}``
(``latency_ms_p99``): :meth:`WindowAggregate.value` resolves that name.

A check holds the rule's state for one segment (the baseline detector, the rate history).
``observe(window, firing)`` decides; ``commit(condition)`` is told the final decision after
the FDR control, so a rate baseline keeps only clean windows. ``to_state()`` is the check's
state as versioned JSON; ``from_state(rule, state)`` restores it for the same rule.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Self

from parrotwatch.detectors.alerting.baselines import BASELINES, Cusum, EwmaZScore
from parrotwatch.detectors.alerting.lifecycle import Observation
from parrotwatch.detectors.alerting.rules import (
    SCORE_STATS,
    WINDOW_KEYS,
    CusumRule,
    DriftRule,
    EwmaRule,
    PageHinkleyRule,
    RateRatioRule,
    Rule,
    ThresholdRule,
)
from parrotwatch.detectors.alerting.state import StateError, decode, encode_float, mapping, sequence, upgrade
from parrotwatch.detectors.alerting.stats import rate_ratio_test

_MAX_WINDOW_COUNT = 2**31 - 1  # a window's counts are 32-bit integer columns
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
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


def _times(window: WindowAggregate) -> tuple[datetime, datetime]:
    return window.window_start, window.window_end


def _too_small(rule: Rule, window: WindowAggregate) -> bool:
    return rule.min_count > 0 and (number(window.count) or 0) < rule.min_count


class _Stateless:
    """``to_state`` / ``from_state`` of a check with nothing to remember."""

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
        if x is None or _too_small(rule, window):
            return Observation(*_times(window), None, x, threshold=rule.value)
        limit = rule.resolve_value if firing and rule.resolve_value is not None else rule.value
        return Observation(*_times(window), _OPS[rule.op](x, limit), x, threshold=rule.value)

    def commit(self, condition: bool | None) -> None:
        """Stateless: nothing to learn."""


class BaselineCheck:
    """The metric (or its log) fed to its EWMA, CUSUM or Page-Hinkley detector."""

    def __init__(self, rule: EwmaRule | CusumRule | PageHinkleyRule) -> None:
        self.rule = rule
        params = rule.model_dump(include=_DETECTOR_PARAMS[rule.kind])
        self.detector = BASELINES[rule.kind](**params)

    def _reference(self) -> tuple[float, float | None]:
        """The baseline before the update and, for EWMA, the level that would alarm."""
        d = self.detector
        if isinstance(d, EwmaZScore):
            scale = max(d.sigma, d.min_sigma, d.min_rel_sigma * abs(d.mean))
            edge = d.mean - d.threshold * scale if d.direction == "down" else d.mean + d.threshold * scale
            return d.mean, edge
        return (d.mu0 if isinstance(d, Cusum) else d.mean), None

    def observe(self, window: WindowAggregate, firing: bool) -> Observation:
        """Update the detector with this window's value; its ``alarm`` is the condition."""
        x, rule = number(window.value(self.rule.metric)), self.rule
        log = rule.transform == "log"
        # log1p, not log: a segment whose traffic fell to 0 requests must still be seen.
        if x is None or _too_small(rule, window) or (log and x < 0):
            return Observation(*_times(window), None, x)
        baseline, edge = self._reference()
        ready = self.detector.ready
        self.detector.update(math.log1p(x) if log else x)
        if log:
            baseline, edge = math.expm1(baseline), (math.expm1(edge) if edge is not None else None)
        evidence = {"detector": rule.kind, "statistic": self.detector.statistic}
        return Observation(
            *_times(window),
            self.detector.alarm,
            x,
            baseline if ready else None,
            edge if ready else None,
            evidence=evidence,
        )

    def commit(self, condition: bool | None) -> None:
        """The detector learned in ``observe`` (it keeps outliers out by itself)."""

    def to_state(self) -> dict[str, Any]:
        """The detector's state (its hyperparameters included)."""
        return {"version": 1, "detector": self.detector.to_state()}

    @classmethod
    def from_state(cls, rule: EwmaRule | CusumRule | PageHinkleyRule, state: Any,
                   where: str = "check") -> BaselineCheck:
        """The check of ``rule`` with its stored detector; hyperparameters other than the rule's
        (a changed default) are a :class:`StateError`."""
        state = mapping(upgrade(state, where, 1, {}), where, {"version", "detector"})
        check = cls(rule)
        kind = type(check.detector)
        detector = kind.from_state(state["detector"], f"{where}.detector")
        if detector.to_state()["params"] != check.detector.to_state()["params"]:
            raise StateError(f"{where}.detector: parameters differ from rule {rule.name!r}'s")
        check.detector = detector
        return check


_DETECTOR_PARAMS = {
    "ewma": {"alpha", "threshold", "warmup", "direction", "min_sigma", "min_rel_sigma", "relearn_after"},
    "cusum": {"k", "h", "warmup", "direction", "target", "sigma", "min_sigma", "min_rel_sigma", "fir"},
    "page_hinkley": {"delta", "threshold", "alpha", "min_instances", "direction"},
}


class RateCounts(NamedTuple):
    """One window of a rate rule: ``k`` events of ``n`` trials; ``clean`` until its window is bad
    (a bad window never enters the baseline)."""

    k: float
    n: float
    clean: bool = True


class RateRatioCheck:
    """Share numerator/denominator over the last ``current_windows`` windows against the share
    over the previous ``baseline_windows`` clean windows (``stats.rate_ratio_test``)."""

    def __init__(self, rule: RateRatioRule) -> None:
        self.rule = rule
        self._recent: deque[RateCounts] = deque()
        self._baseline: deque[RateCounts] = deque(maxlen=rule.baseline_windows)
        self._added = False

    def observe(self, window: WindowAggregate, firing: bool) -> Observation:
        """Test this window's share (with the recent ones) against the clean baseline."""
        rule = self.rule
        k, n = number(window.value(rule.numerator)), number(window.value(rule.denominator))
        self._added = k is not None and n is not None and not _too_small(rule, window)
        if not self._added:
            return Observation(*_times(window), None)
        if len(self._recent) == rule.current_windows:
            old = self._recent.popleft()
            if old.clean:
                self._baseline.append(old)
        self._recent.append(RateCounts(k, n))
        cur_k, cur_n = int(sum(r.k for r in self._recent)), int(sum(r.n for r in self._recent))
        base_k, base_n = int(sum(b.k for b in self._baseline)), int(sum(b.n for b in self._baseline))
        res = rate_ratio_test(cur_k, cur_n, base_k, base_n, min_n=rule.min_samples)
        bad = None
        if not res.insufficient:
            bad = cur_k >= rule.min_events
            bad = bad and (rule.max_ratio is None or (res.ratio is not None and res.ratio > rule.max_ratio))
            bad = bad and (rule.p_value is None or res.p_value < rule.p_value)
        evidence = {
            "ratio": res.ratio,
            "current_share": res.current_share,
            "baseline_share": res.baseline_share,
            "current_counts": [cur_k, cur_n],
            "baseline_counts": [base_k, base_n],
            "max_ratio": rule.max_ratio,
            "p_limit": rule.p_value,
        }
        p_test = res.p_value if rule.p_value is not None else None
        base = res.baseline_share
        edge = rule.max_ratio * base if rule.max_ratio is not None and base is not None else None
        return Observation(*_times(window), bad, res.current_share, base, edge, p_test, evidence)

    def commit(self, condition: bool | None) -> None:
        """Mark the window just observed bad, so it never enters the baseline."""
        if self._added and condition is True:
            self._recent[-1] = self._recent[-1]._replace(clean=False)

    def to_state(self) -> dict[str, Any]:
        """Recent windows ``[k, n, clean]``, clean baseline windows ``[k, n]``, the last add."""
        f = encode_float
        return {"version": 1, "recent": [[f(r.k), f(r.n), r.clean] for r in self._recent],
                "baseline": [[f(b.k), f(b.n)] for b in self._baseline], "added": self._added}

    @classmethod
    def from_state(cls, rule: RateRatioRule, state: Any, where: str = "check") -> RateRatioCheck:
        """The check of ``rule`` with its stored windows (no more than the rule keeps)."""
        state = mapping(upgrade(state, where, 1, {}), where, {"version", "recent", "baseline", "added"})
        check = cls(rule)
        limits = (("recent", 3, rule.current_windows), ("baseline", 2, rule.baseline_windows))
        for name, size, limit in limits:
            rows = sequence(state[name], f"{where}.{name}")
            if len(rows) > limit:
                raise StateError(f"{where}.{name}: {len(rows)} windows, the rule keeps {limit}")
            for i, row in enumerate(rows):
                at = f"{where}.{name}[{i}]"
                if len(sequence(row, at)) != size:
                    raise StateError(f"{at}: expected {size} items")
                k, n = (decode("float", x, at) for x in row[:2])
                if not 0 <= k <= n <= _MAX_WINDOW_COUNT:
                    raise StateError(f"{at}: need counts 0 <= k <= n <= 2**31 - 1, got {row[:2]}")
                if name == "recent":
                    check._recent.append(RateCounts(k, n, decode("bool", row[2], at)))
                else:
                    check._baseline.append(RateCounts(k, n))
        check._added = decode("bool", state["added"], f"{where}.added")
        if check._added and not check._recent:
            raise StateError(f"{where}.added: true with no recent window")
        return check


class DriftCheck(_Stateless):
    """``drift_p_value < p_value``; the p-value takes part in the FDR control."""

    def __init__(self, rule: DriftRule) -> None:
        self.rule = rule

    def observe(self, window: WindowAggregate, firing: bool) -> Observation:
        """Read the drift detector's p-value of the window."""
        p = number(window.value(self.rule.metric))
        if p is None or _too_small(self.rule, window):
            return Observation(*_times(window), None, p, threshold=self.rule.p_value)
        return Observation(*_times(window), p < self.rule.p_value, p, None, self.rule.p_value, p)

    def commit(self, condition: bool | None) -> None:
        """Stateless: nothing to learn."""


Check = ThresholdCheck | BaselineCheck | RateRatioCheck | DriftCheck


def check_from_state(rule: Rule, state: Any, where: str = "check") -> Check:
    """The check of ``rule`` restored from its ``to_state()``; :class:`StateError` if it cannot be."""
    return type(make_check(rule)).from_state(rule, state, where)


def make_check(rule: Rule) -> Check:
    """A fresh check for one segment of ``rule``."""
    if isinstance(rule, ThresholdRule):
        return ThresholdCheck(rule)
    if isinstance(rule, RateRatioRule):
        return RateRatioCheck(rule)
    if isinstance(rule, DriftRule):
        return DriftCheck(rule)
    return BaselineCheck(rule)
