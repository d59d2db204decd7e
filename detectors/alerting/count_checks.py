"""Checks on counts pooled over trailing windows: shares (``rate_ratio``) and request rates
(``rate_drop``), each tested exactly against the segment's previous clean windows.

Both keep a short history of windows, ``[k, n, clean, t]`` for shares and ``[count, clean, t]``
for rates (t: the window's end in minutes since the epoch). "Now" is the shortest trailing span
holding enough evidence (:mod:`parrotwatch.detectors.alerting.pooling`); the baseline is the
clean windows before it. A span judged bad marks all its windows unclean, so an incident never
enters its own baseline, even the part of it seen before there was evidence enough to fire.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from parrotwatch.detectors.alerting.lifecycle import Observation
from parrotwatch.detectors.alerting.pooling import trailing_span
from parrotwatch.detectors.alerting.rules import RateDropRule, RateRatioRule, span_windows
from parrotwatch.detectors.alerting.state import StateError, decode, encode_float, mapping, sequence, upgrade
from parrotwatch.detectors.alerting.stats import (
    JEFFREYS,
    BetaPrior,
    RateRatioResult,
    beta_binomial_test,
    rate_drop_test,
    rate_ratio_test,
)
from parrotwatch.detectors.alerting.windows import MAX_WINDOW_COUNT, WindowAggregate, number, times, too_small

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_minutes(moment: datetime) -> float:
    """``moment`` in minutes since the epoch (the ``t`` of a stored window)."""
    return (moment - _EPOCH).total_seconds() / 60.0


def _recent(ts: list[float], now: float, minutes: float) -> int:
    """How many trailing entries of ``ts`` end within ``minutes`` of ``now``."""
    n = 0
    for t in reversed(ts):
        if t <= now - minutes:
            break
        n += 1
    return n


class RateCounts(NamedTuple):
    """One window of a rate rule: ``k`` events of ``n`` trials; ``clean`` until a span holding
    it is judged bad; ``t`` its end (minutes since the epoch)."""

    k: float
    n: float
    clean: bool = True
    t: float = -math.inf


def _migrate_rate_ratio_v1(state: dict[str, Any]) -> dict[str, Any]:
    """Version 1 kept the clean baseline ``[k, n]`` and the recent ``[k, n, clean]`` apart, with
    no times: the windows become history entries at time -inf (baseline only, never "now")."""
    rows = [[*b, True] for b in state.get("baseline", [])] + list(state.get("recent", []))
    return {"history": [[*r, "-inf"] for r in rows], "added": False, "span": 0}


class RateRatioCheck:
    """Share numerator/denominator over the current span against the share over the clean windows
    before it: Fisher's exact test, or the beta-binomial predictive test with ``prior`` (set by
    the evaluator from related segments when the rule has ``borrow_from``)."""

    STATE_VERSION = 2

    def __init__(self, rule: RateRatioRule, window: timedelta = timedelta(minutes=1)) -> None:
        self.rule, self.window_minutes = rule, window / timedelta(minutes=1)
        self.pool = span_windows(rule.pool_until, window) if rule.pool_until is not None else None
        self._history: deque[RateCounts] = deque(
            maxlen=rule.baseline_windows + max(self.pool or 0, rule.current_windows))
        self._added, self._span = False, 0
        self.prior: BetaPrior = JEFFREYS

    def baseline_counts(self) -> tuple[float, float]:
        """Events and trials of the clean windows before the last span: what related segments borrow."""
        rows = list(self._history)[: len(self._history) - self._span]
        return sum(r.k for r in rows if r.clean), sum(r.n for r in rows if r.clean)

    def _spans(self, now: float) -> list[int]:
        """Candidate current spans in windows, shortest first: the last ``current_windows``; or,
        pooled, for j < ``scales`` the shortest trailing span within ``pool_until`` that holds
        ``min_samples * 2**j`` trials (those that exist)."""
        rows, rule = self._history, self.rule
        if self.pool is None:
            return [min(rule.current_windows, len(rows))]
        limit = _recent([r.t for r in rows], now, self.pool * self.window_minutes)
        trials, spans = [r.n for r in rows], []
        for j in range(rule.scales):
            span = trailing_span(trials, rule.min_samples * 2**j, limit)
            if span is None:
                break
            spans.append(min(max(span, rule.current_windows), limit))
        return spans

    def _weight(self, j: int) -> float:
        """Weighted Bonferroni over the scales: half the level to the shortest span (the fastest
        to fire), the other half shared by the longer ones; 1 with a single scale."""
        scales = self.rule.scales if self.pool is not None else 1
        return 1.0 if scales == 1 else (0.5 if j == 0 else 0.5 / (scales - 1))

    def _test(self, rows: list[RateCounts], span: int) -> tuple[RateRatioResult, list[int], list[int]]:
        """The rule's test of the last ``span`` windows against the clean ones before them."""
        rule = self.rule
        cur = rows[len(rows) - span:]
        base = [r for r in rows[: len(rows) - span] if r.clean][-rule.baseline_windows:]
        cur_k, cur_n = int(sum(r.k for r in cur)), int(sum(r.n for r in cur))
        base_k, base_n = int(sum(b.k for b in base)), int(sum(b.n for b in base))
        if rule.test == "fisher":
            res = rate_ratio_test(cur_k, cur_n, base_k, base_n, min_n=rule.min_samples)
        else:
            res = beta_binomial_test(cur_k, cur_n, base_k, base_n, self.prior)
            thin = base_n < rule.min_samples and self.prior is JEFFREYS  # nothing borrowed either
            if cur_n < rule.min_samples or thin:
                res = RateRatioResult(None, None, res.current_share, res.baseline_share, insufficient=True)
        return res, [cur_k, cur_n], [base_k, base_n]

    def _bad(self, res: RateRatioResult, cur_k: int, p: float | None) -> bool:
        rule = self.rule
        return (cur_k >= rule.min_events
                and (rule.max_ratio is None or (res.ratio is not None and res.ratio > rule.max_ratio))
                and (rule.p_value is None or (p is not None and p < rule.p_value)))

    def observe(self, window: WindowAggregate, firing: bool) -> Observation:
        """Test each candidate span's share against the clean baseline before it (``_spans``);
        the window is bad when one span passes every guard at its share of the level, and the
        reported p-value is that span's, divided by its weight (``_weight``)."""
        rule = self.rule
        k, n = number(window.value(rule.numerator)), number(window.value(rule.denominator))
        if self.pool is not None and (k is None or n is None) and number(window.count) == 0:
            k = n = 0.0  # a minute without requests: the span's evidence stands, judged again
        self._added = k is not None and n is not None and not too_small(rule, window)
        if not self._added:
            self._span = 0
            return Observation(*times(window), None)
        now = epoch_minutes(window.window_end)
        self._history.append(RateCounts(k, n, True, now))
        rows = list(self._history)
        tried = []
        for j, span in enumerate(self._spans(now)):
            res, cur, base = self._test(rows, span)
            if not res.insufficient:
                p = min(1.0, res.p_value / self._weight(j)) if res.p_value is not None else None
                clear = not self._bad(res, cur[0], p)
                tried.append((clear, p if p is not None else 1.0, span, res, cur, base))
        if not tried:
            self._span = 0
            return Observation(*times(window), None, evidence={"current_counts": [0, 0]})
        clear, p, span, res, cur, base = min(tried, key=lambda t: (t[0], t[1]))
        resolving = firing and rule.resolve_p_value is not None
        if resolving:
            # Hysteresis: while firing, one short span (twice min_samples trials, the second scale)
            # is judged at the looser level, so an incident that goes on stays one alert, and one
            # that ended resolves once that span is past it (a long span would hold it for as long
            # as the span lasts; the shortest, of 6 trials, clears by chance at 30 % toxic).
            _, p, span, res, cur, base = tried[min(1, len(tried) - 1)]
            clear = not (p < rule.resolve_p_value and res.ratio is not None and res.ratio > 1)
        self._span = span
        evidence = {
            "ratio": res.ratio,
            "current_share": res.current_share,
            "baseline_share": res.baseline_share,
            "current_counts": cur,
            "baseline_counts": base,
            "max_ratio": rule.max_ratio,
            "p_limit": rule.p_value,
            "test": rule.test,
            "span_windows": span,
            "span_minutes": now - rows[len(rows) - span].t + self.window_minutes,
            "spans_tested": len(tried),
        }
        if rule.test == "beta_binomial":
            evidence["prior_strength"] = self.prior.a + self.prior.b
        share = res.baseline_share
        edge = rule.max_ratio * share if rule.max_ratio is not None and share is not None else None
        p_test = p if rule.p_value is not None and not resolving else None
        if resolving:
            evidence["resolve_p_limit"] = rule.resolve_p_value
        return Observation(*times(window), not clear, res.current_share, share, edge, p_test, evidence)

    def forget_last(self) -> None:
        """The window just observed is explained by another incident: it counts neither in a
        later span nor in the baseline."""
        if self._added and self._history:
            self._history[-1] = RateCounts(0.0, 0.0, False, self._history[-1].t)

    def commit(self, condition: bool | None) -> None:
        """A bad span: mark all its windows unclean, so none enters the baseline."""
        if self._added and condition is True:
            for i in range(len(self._history) - self._span, len(self._history)):
                self._history[i] = self._history[i]._replace(clean=False)

    def to_state(self) -> dict[str, Any]:
        """The history ``[k, n, clean, t]``, whether the last window was added, the last span."""
        f = encode_float
        return {"version": self.STATE_VERSION, "added": self._added, "span": self._span,
                "history": [[f(r.k), f(r.n), r.clean, f(r.t)] for r in self._history]}

    @classmethod
    def from_state(cls, rule: RateRatioRule, state: Any, where: str = "check",
                   window: timedelta = timedelta(minutes=1)) -> RateRatioCheck:
        """The check of ``rule`` with its stored windows (no more than the rule keeps)."""
        state = upgrade(state, where, cls.STATE_VERSION, {1: _migrate_rate_ratio_v1})
        state = mapping(state, where, {"version", "history", "added", "span"})
        check = cls(rule, window)
        rows = sequence(state["history"], f"{where}.history")
        if len(rows) > (check._history.maxlen or 0):
            rows = rows[max(0, len(rows) - (check._history.maxlen or 0)):]  # a rule that now keeps fewer
        for i, row in enumerate(rows):
            at = f"{where}.history[{i}]"
            if len(sequence(row, at)) != 4:
                raise StateError(f"{at}: expected [k, n, clean, t]")
            k, n, t = (decode("float", x, at) for x in (row[0], row[1], row[3]))
            if not 0 <= k <= n <= MAX_WINDOW_COUNT:
                raise StateError(f"{at}: need counts 0 <= k <= n <= 2**31 - 1, got {row[:2]}")
            check._history.append(RateCounts(k, n, decode("bool", row[2], at), t))
        check._added = decode("bool", state["added"], f"{where}.added")
        check._span = decode("count", state["span"], f"{where}.span")
        if check._span > len(check._history) or (check._added and not check._history):
            raise StateError(f"{where}: span {check._span} or added beyond the {len(rows)} windows kept")
        return check


class RateDropCheck:
    """Requests per window over the current span against the clean windows before it
    (``stats.rate_drop_test``); the span is the shortest in which the baseline expects
    ``min_expected`` requests, up to ``pool_until``. After ``relearn_after`` bad windows in a row
    the history is forgotten: a segment whose traffic stays low learns its new level."""

    STATE_VERSION = 1

    def __init__(self, rule: RateDropRule, window: timedelta = timedelta(minutes=1)) -> None:
        self.rule, self.window_minutes = rule, window / timedelta(minutes=1)
        self.pool = span_windows(rule.pool_until, window)
        self._history: deque[RateCounts] = deque(maxlen=rule.baseline_windows + self.pool)
        self._span, self._bad_run = 0, 0

    def observe(self, window: WindowAggregate, firing: bool) -> Observation:
        """Test the span's request count against the baseline rate."""
        rule, count = self.rule, number(window.value(self.rule.metric))
        if count is None or count < 0:
            self._span = 0
            return Observation(*times(window), None, count)
        now = epoch_minutes(window.window_end)
        self._history.append(RateCounts(count, count, True, now))
        rows = list(self._history)
        before = [r.k for r in rows[:-1] if r.clean]
        rate = sum(before) / len(before) if before else 0.0
        limit = _recent([r.t for r in rows], now, self.pool * self.window_minutes)
        span = min(limit, max(1, math.ceil(rule.min_expected / rate))) if rate > 0 else limit
        base = [r.k for r in rows[: len(rows) - span] if r.clean][-rule.baseline_windows:]
        self._span = span
        cur = sum(r.k for r in rows[len(rows) - span:])
        base_rate = sum(base) / len(base) if base else None
        evidence = {"span_windows": span, "span_minutes": span * self.window_minutes,
                    "span_requests": cur, "baseline_windows": len(base), "max_ratio": rule.max_ratio,
                    "p_limit": rule.p_value}
        value = cur / span
        if len(base) < rule.warmup or not base_rate:
            return Observation(*times(window), None, value, base_rate, evidence=evidence)
        p = rate_drop_test(cur, span, sum(base), len(base))
        ratio = value / base_rate
        bad = p < rule.p_value and ratio <= rule.max_ratio
        evidence.update(ratio=ratio, expected=base_rate * span)
        return Observation(*times(window), bad, value, base_rate, rule.max_ratio * base_rate, p, evidence)

    def forget_last(self) -> None:
        """The window just observed is explained by another incident: keep it out of the baseline."""
        if self._span and self._history:
            self._history[-1] = self._history[-1]._replace(clean=False)

    def commit(self, condition: bool | None) -> None:
        """A bad span: mark its windows unclean; after ``relearn_after`` bad windows, forget all."""
        if condition is not True:
            self._bad_run = 0
            return
        for i in range(len(self._history) - self._span, len(self._history)):
            self._history[i] = self._history[i]._replace(clean=False)
        self._bad_run += 1
        if self.rule.relearn_after is not None and self._bad_run >= self.rule.relearn_after:
            self._history.clear()
            self._bad_run = self._span = 0

    def to_state(self) -> dict[str, Any]:
        """The history ``[count, clean, t]``, the last span and the bad windows in a row."""
        f = encode_float
        return {"version": self.STATE_VERSION, "span": self._span, "bad_run": self._bad_run,
                "history": [[f(r.k), r.clean, f(r.t)] for r in self._history]}

    @classmethod
    def from_state(cls, rule: RateDropRule, state: Any, where: str = "check",
                   window: timedelta = timedelta(minutes=1)) -> RateDropCheck:
        """The check of ``rule`` with its stored windows."""
        state = mapping(upgrade(state, where, cls.STATE_VERSION, {}), where,
                        {"version", "history", "span", "bad_run"})
        check = cls(rule, window)
        rows = sequence(state["history"], f"{where}.history")
        for i, row in enumerate(rows[max(0, len(rows) - (check._history.maxlen or 0)):]):
            at = f"{where}.history[{i}]"
            if len(sequence(row, at)) != 3:
                raise StateError(f"{at}: expected [count, clean, t]")
            count, t = decode("float", row[0], at), decode("float", row[2], at)
            if not 0 <= count <= MAX_WINDOW_COUNT:
                raise StateError(f"{at}: need 0 <= count <= 2**31 - 1, got {row[0]!r:.40}")
            check._history.append(RateCounts(count, count, decode("bool", row[1], at), t))
        check._span = decode("count", state["span"], f"{where}.span")
        check._bad_run = decode("count", state["bad_run"], f"{where}.bad_run")
        if check._span > len(check._history):
            raise StateError(f"{where}.span: {check._span} beyond the {len(check._history)} windows kept")
        return check
