"""Evaluate a rule set on closed window aggregates: checks, FDR control, alert lifecycle.

``Evaluator(ruleset).evaluate(windows)`` takes the window aggregates that just closed
(:class:`~parrotwatch.detectors.alerting.checks.WindowAggregate`, or the flat dicts of
``WindowAggregate.as_flat()``), processes them in ``window_end`` order and returns the
AlertEventV1 dicts they cause; ``last_observations`` keeps what each rule saw
(:class:`RuleObservation`).
All state (detectors, rate baselines, trackers) is saved between micro-batches as versioned
JSON: ``evaluator.to_state()``, and ``Evaluator.from_state(ruleset, state)`` to restore it
(``parrotwatch.detectors.alerting.state``; a state it cannot restore is a ``StateError`` with the reason).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, NamedTuple

from parrotwatch.detectors.alerting.checks import (
    Check,
    MetricStats,
    WindowAggregate,
    as_window,
    check_from_state,
    make_check,
)
from parrotwatch.detectors.alerting.count_checks import RateRatioCheck
from parrotwatch.detectors.alerting.lifecycle import AlertTracker, Observation
from parrotwatch.detectors.alerting.rules import RateRatioRule, Rule, RuleSet, parse_duration
from parrotwatch.detectors.alerting.state import Migration, StateError, mapping, sequence, upgrade
from parrotwatch.detectors.alerting.stats import BetaPrior, benjamini_hochberg, fit_beta_prior

#: Version of ``Evaluator.to_state()``. Version 0 was a pickle, which no code reads back.
STATE_VERSION = 1
#: ``{v: f}``: ``f`` turns an evaluator state of version ``v`` into one of version ``v + 1``.
MIGRATIONS: dict[int, Migration] = {}
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError)

__all__ = ["STATE_VERSION", "Evaluator", "MetricStats", "RuleObservation", "SeriesKey", "SeriesPoint",
           "WindowAggregate", "merge_windows"]


class SeriesKey(NamedTuple):
    """One alert series: a rule and the values of its ``segment_by`` labels."""

    rule: str
    segment: tuple[str, ...]


class SeriesPoint(NamedTuple):
    """One series at one window_end: its check, its tracker and what the check observed."""

    key: SeriesKey
    check: Check
    tracker: AlertTracker
    observation: Observation


class RuleObservation(NamedTuple):
    """What a rule saw on one segment (``Evaluator.last_observations``), for drill-down."""

    rule: str
    labels: dict[str, str]
    observation: Observation


def _present(values: Iterable[Any]) -> list[Any]:
    return [v for v in values if v is not None]


def _sum(values: Iterable[Any]) -> Any:
    vals = _present(values)
    return sum(vals) if vals else None


def _same(values: Iterable[Any]) -> Any:
    vals = _present(values)
    return (vals[0] if all(v == vals[0] for v in vals) else "*") if vals else None


def _pooled_stats(parts: list[MetricStats]) -> MetricStats:
    means = [(p.mean, p.n or 0) for p in parts if p.mean is not None]
    weight = sum(w for _, w in means)
    mean = (sum(v * w for v, w in means) / weight if weight else sum(v for v, _ in means) / len(means)
            ) if means else None
    top = [max(_present(q), default=None) for q in ((p.p50 for p in parts), (p.p95 for p in parts),
                                                  (p.p99 for p in parts))]
    return MetricStats(_sum(p.n for p in parts), mean, *top, _sum(p.flagged for p in parts))


def merge_windows(parts: Sequence[WindowAggregate | Mapping[str, Any]]) -> WindowAggregate:
    """Pool aggregates of one window that fall into one segment (``segment_by`` coarser than
    model x app). Counts (``count``, ``n``, ``flagged``, feedback) add up; ``mean`` is the
    ``n``-weighted mean; a quantile is the largest of the parts (an upper bound of the pooled
    quantile); ``drift_p_value`` is Bonferroni's min(1, m * min p); labels that differ become "*".
    """
    ws = [as_window(p) for p in parts]
    drift = _present(w.drift_p_value for w in ws)
    names = dict.fromkeys(name for w in ws for name in w.metrics)
    labels = dict.fromkeys(key for w in ws for key in w.labels)
    return WindowAggregate(
        window_start=ws[0].window_start,
        window_end=ws[0].window_end,
        model=_same(w.model for w in ws),
        app=_same(w.app for w in ws),
        count=_sum(w.count for w in ws),
        feedback_count=_sum(w.feedback_count for w in ws),
        thumbs_down=_sum(w.thumbs_down for w in ws),
        drift_p_value=min(1.0, len(drift) * min(drift)) if drift else None,
        metrics={m: _pooled_stats([w.metrics[m] for w in ws if m in w.metrics]) for m in names},
        examples=[x for w in ws for x in w.examples],
        labels={k: _same(w.labels.get(k) for w in ws) for k in labels},
    )


class Evaluator:
    """Stateful evaluation of a ``RuleSet``: one check and one tracker per rule and segment.

    Per ``window_end``: every rule reads every segment's window; if ``ruleset.fdr_q`` is set,
    the p-values of that window_end (rate-ratio and drift tests, all rules x segments) go
    through Benjamini-Hochberg and a test that is not rejected is clear; then the trackers
    advance. With ``absent_is_clear``, an alert that is pending or firing for a segment with
    no window at that window_end gets a clear (no data) window, so silence resolves it.
    Windows at or before the last window_end a tracker saw are skipped (replays are no-ops).
    """

    def __init__(self, ruleset: RuleSet, absent_is_clear: bool = True, max_examples: int = 5) -> None:
        self.ruleset, self.absent_is_clear, self.max_examples = ruleset, absent_is_clear, max_examples
        self.reset()

    def reset(self) -> None:
        """Forget all detectors, baselines and alerts."""
        self._checks: dict[SeriesKey, Check] = {}
        self._trackers: dict[SeriesKey, AlertTracker] = {}
        self.last_observations: list[RuleObservation] = []

    def to_state(self) -> dict[str, Any]:
        """Every check and tracker with its rule name and segment, as versioned JSON. Lists in
        creation order, not objects: jsonb reorders keys, and the trackers' order is that of
        the events a silent segment gets."""
        def entries(items: dict) -> list[dict[str, Any]]:
            return [{"rule": r, "segment": list(seg), "state": x.to_state()} for (r, seg), x in items.items()]

        return {"version": STATE_VERSION, "checks": entries(self._checks),
                "trackers": entries(self._trackers)}

    @classmethod
    def from_state(cls, ruleset: RuleSet, state: Any, absent_is_clear: bool = True,
                   max_examples: int = 5) -> Evaluator:
        """The evaluator whose ``to_state()`` gave ``state``, for the same ``ruleset``; an older
        version goes through ``MIGRATIONS``. Anything it cannot restore (an unknown version, a
        malformed state, a check or tracker that does not match the rules) raises
        :class:`StateError` with the reason, never another exception."""
        try:
            return cls._restore(ruleset, state, absent_is_clear, max_examples)
        except StateError:
            raise
        except _MALFORMED as exc:
            raise StateError(f"evaluator: malformed state ({type(exc).__name__}: {exc})") from None

    @classmethod
    def _restore(cls, ruleset: RuleSet, state: Any, absent_is_clear: bool, max_examples: int) -> Evaluator:
        state = upgrade(state, "evaluator", STATE_VERSION, MIGRATIONS)
        state = mapping(state, "evaluator", {"version", "checks", "trackers"})
        ev, rules = cls(ruleset, absent_is_clear, max_examples), {r.name: r for r in ruleset.rules}
        for part in ("trackers", "checks"):
            restored: dict = {}
            for i, entry in enumerate(sequence(state[part], f"evaluator.{part}")):
                where = f"evaluator.{part}[{i}]"
                entry = mapping(entry, where, {"rule", "segment", "state"})
                rule = rules.get(entry["rule"]) if isinstance(entry["rule"], str) else None
                seg = sequence(entry["segment"], f"{where}.segment")
                if rule is None:
                    raise StateError(f"{where}: rule {entry['rule']!r:.80} is not in the rule set")
                if len(seg) != len(rule.segment_by) or not all(isinstance(v, str) for v in seg):
                    raise StateError(f"{where}.segment: expected {len(rule.segment_by)} strings "
                                     f"({', '.join(rule.segment_by)}), got {seg!r:.80}")
                key = SeriesKey(rule.name, tuple(seg))
                if key in restored:
                    raise StateError(f"{where}: a second entry for rule {rule.name!r} segment {seg}")
                restored[key] = ev._restore_one(part, rule, key, entry["state"], f"{where}.state")
            setattr(ev, f"_{part}", restored)
        return ev

    def _restore_one(self, part: str, rule: Rule, key: SeriesKey, state: Any,
                     where: str) -> Check | AlertTracker:
        """One stored check, or one tracker checked against the tracker the rule makes now."""
        if part == "checks":
            return check_from_state(rule, state, where, parse_duration(self.ruleset.window))
        tracker = AlertTracker.from_state(state, where)
        fresh = self._tracker(rule, key)
        if tracker.to_state()["params"] != fresh.to_state()["params"]:
            raise StateError(f"{where}.params: differ from what rule {rule.name!r} sets now")
        return tracker

    def active(self) -> list[AlertTracker]:
        """Trackers of alerts that are pending or firing now."""
        return [t for t in self._trackers.values() if t.state != "inactive"]

    @staticmethod
    def segment(rule: Rule, window: WindowAggregate) -> tuple[str, ...]:
        """The values of the rule's ``segment_by`` labels in ``window``, as strings."""
        return tuple(str(window.value(k)) for k in rule.segment_by)

    def labels(self, rule: Rule, segment: Sequence[str]) -> dict[str, str]:
        """Alert labels: the rule's static labels, the segment, ``metric``; model/app "*" if pooled."""
        seg = dict(zip(rule.segment_by, segment, strict=True))
        return {**rule.labels, "model": "*", "app": "*", **seg, "metric": rule.metric}

    def _tracker(self, rule: Rule, key: SeriesKey) -> AlertTracker:
        if key not in self._trackers:
            rs = self.ruleset
            self._trackers[key] = AlertTracker(
                rule.name,
                self.labels(rule, key.segment),
                rule.severity,
                rs.windows(rule.for_),
                rs.windows(rule.resolve_after),
                parse_duration(rule.renotify) if rule.renotify else None,
                rule.summary or rule.default_summary(),
            )
        return self._trackers[key]

    def evaluate(self, windows: Iterable[WindowAggregate | Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Process closed windows in ``window_end`` order; return the alert events (dicts).

        A window is a :class:`WindowAggregate`; a flat mapping (``WindowAggregate.as_flat()``'s
        layout) is read with ``WindowAggregate.from_flat``."""
        by_end: dict[datetime, list[WindowAggregate]] = defaultdict(list)
        for window in map(as_window, windows):
            end = window.window_end
            if not isinstance(end, datetime) or end.tzinfo is None:
                raise ValueError(f"window_start/window_end must be timezone-aware datetimes, got {end!r}")
            by_end[end].append(window)
        self.last_observations = []
        events: list[dict[str, Any]] = []
        for end in sorted(by_end):
            events.extend(self._evaluate_one(end, by_end[end]))
        return events

    @staticmethod
    def _group(rule: RateRatioRule, segment: tuple[str, ...]) -> tuple[str, ...]:
        """The values of the rule's ``borrow_from`` labels in a segment: whom it borrows from."""
        return tuple(v for label, v in zip(rule.segment_by, segment, strict=True)
                     if label in (rule.borrow_from or ()))

    def _priors(self, rule: RateRatioRule) -> dict[tuple[str, ...], BetaPrior]:
        """Per group of related segments (same ``borrow_from`` labels), the empirical-Bayes prior
        of their baseline shares (``stats.fit_beta_prior``), from each segment's clean windows."""
        counts: dict[tuple[str, ...], list[tuple[float, float]]] = defaultdict(list)
        for (name, segment), check in self._checks.items():
            if name == rule.name and isinstance(check, RateRatioCheck):
                counts[self._group(rule, segment)].append(check.baseline_counts())
        return {group: fit_beta_prior(rows) for group, rows in counts.items()}

    def _inhibit(self, seen: list[SeriesPoint]) -> list[SeriesPoint]:
        """A rule that is bad (or pending/firing) on a segment clears the rules it ``inhibits``
        on that segment, as Alertmanager's inhibit_rules do: one incident, one alert. The
        silenced checks then forget that window (``forget_last``): a pooled span must not fire
        later on the evidence another incident explains."""
        rules = {r.name: r for r in self.ruleset.rules}
        silenced = {
            SeriesKey(target, p.key.segment)
            for p in seen
            for target in rules[p.key.rule].inhibits
            if p.observation.condition or p.tracker.state != "inactive"
        }
        if not silenced:
            return seen
        return [
            p._replace(observation=replace(p.observation, condition=False,
                                           evidence={**p.observation.evidence, "inhibited": True}))
            if p.key in silenced and p.observation.condition is not None else p
            for p in seen
        ]

    def _fdr(self, seen: list[SeriesPoint]) -> list[SeriesPoint]:
        """Benjamini-Hochberg over the p-values of one window_end: a test not rejected is clear."""
        tested = [i for i, p in enumerate(seen)
                  if p.observation.p_value is not None and p.observation.condition is not None]
        if self.ruleset.fdr_q is None or not tested:
            return seen
        seen = list(seen)
        keep = benjamini_hochberg([seen[i].observation.p_value for i in tested], self.ruleset.fdr_q)
        for i, rejected in zip(tested, keep, strict=True):
            obs = seen[i].observation
            evidence = {**obs.evidence, "fdr_q": self.ruleset.fdr_q, "fdr_rejected": rejected}
            seen[i] = seen[i]._replace(
                observation=replace(obs, condition=obs.condition and rejected, evidence=evidence))
        return seen

    def _evaluate_one(self, end: datetime, batch: list[WindowAggregate]) -> list[dict[str, Any]]:
        """All rules x segments of one window_end, then BH over their p-values, then the trackers."""
        seen: list[SeriesPoint] = []
        for rule in self.ruleset.rules:
            priors = self._priors(rule) if isinstance(rule, RateRatioRule) and rule.borrow_from else {}
            segments: dict[tuple[str, ...], list[WindowAggregate]] = defaultdict(list)
            for window in batch:
                segments[self.segment(rule, window)].append(window)
            for seg, parts in segments.items():
                window = parts[0] if len(parts) == 1 else merge_windows(parts)
                key = SeriesKey(rule.name, seg)
                tracker = self._tracker(rule, key)
                if tracker.last_window_end is not None and end <= tracker.last_window_end:
                    continue
                if key not in self._checks:
                    self._checks[key] = make_check(rule, parse_duration(self.ruleset.window))
                check = self._checks[key]
                if isinstance(rule, RateRatioRule) and rule.borrow_from is not None:
                    check.prior = priors.get(self._group(rule, seg)) or check.prior
                obs = check.observe(window, tracker.state == "firing")
                examples = list(window.examples or ())[: self.max_examples]
                obs = replace(obs, evidence={**obs.evidence, "count": window.count, "examples": examples})
                seen.append(SeriesPoint(key, check, tracker, obs))
        seen = self._inhibit(self._fdr(seen))
        events: list[dict[str, Any]] = []
        for point in seen:
            point.check.commit(point.observation.condition)
            if point.observation.evidence.get("inhibited"):
                point.check.forget_last()  # explained by another incident: no evidence later on
            self.last_observations.append(
                RuleObservation(point.tracker.rule, point.tracker.labels, point.observation))
            events.extend(point.tracker.observe(point.observation))
        if self.absent_is_clear:
            observed = {p.key for p in seen}
            start = end - parse_duration(self.ruleset.window)
            for key, tracker in self._trackers.items():
                if key not in observed and tracker.state != "inactive":
                    events.extend(tracker.observe(Observation(start, end, None)))
        return events
