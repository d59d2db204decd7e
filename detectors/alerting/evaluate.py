"""Evaluate a rule set on closed window aggregates: checks, FDR control, alert lifecycle.

``Evaluator(ruleset).evaluate(windows)`` takes the window aggregates that just closed (plain
dicts: ``model``, ``app``, ``window_start``, ``window_end``, ``count``, ``{metric}_{stat}``,
...), processes them in ``window_end`` order and returns the AlertEventV1 dicts they cause.
All state (detectors, rate baselines, trackers) is saved between micro-batches as versioned
JSON: ``evaluator.to_state()``, and ``Evaluator.from_state(ruleset, state)`` to restore it
(``parrotwatch.detectors.alerting.state``; a state it cannot restore is a ``StateError`` with the reason).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from parrotwatch.detectors.alerting.checks import Check, check_from_state, make_check
from parrotwatch.detectors.alerting.lifecycle import AlertTracker, Observation
from parrotwatch.detectors.alerting.rules import Rule, RuleSet, parse_duration
from parrotwatch.detectors.alerting.state import Migration, StateError, mapping, sequence, upgrade
from parrotwatch.detectors.alerting.stats import benjamini_hochberg

#: Version of ``Evaluator.to_state()``. Version 0 was a pickle, which no code reads back.
STATE_VERSION = 1
#: ``{v: f}``: ``f`` turns an evaluator state of version ``v`` into one of version ``v + 1``.
MIGRATIONS: dict[int, Migration] = {}
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError)

_SUMMED = ("count", "feedback_count", "thumbs_down")
_QUANTILES = ("_p50", "_p95", "_p99")


def merge_windows(parts: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Pool aggregates of one window that fall into one segment (``segment_by`` coarser than
    model x app). Counts (``count``, ``*_n``, ``*_flagged``, feedback) add up; ``*_mean`` is the
    ``*_n``-weighted mean; a quantile is the largest of the parts (an upper bound of the pooled
    quantile); ``drift_p_value`` is Bonferroni's min(1, m * min p); labels that differ become "*".
    """
    out: dict[str, Any] = {"window_start": parts[0]["window_start"], "window_end": parts[0]["window_end"]}
    for key in dict.fromkeys(k for p in parts for k in p):
        if key in out:
            continue
        vals = [p.get(key) for p in parts if p.get(key) is not None]
        if key == "examples":
            out[key] = [x for v in vals for x in v]
        elif not vals:
            out[key] = None
        elif key in _SUMMED or key.endswith(("_n", "_flagged")):
            out[key] = sum(vals)
        elif key.endswith("_mean"):
            pairs = [
                (p[key], p.get(key[: -len("_mean")] + "_n") or 0) for p in parts if p.get(key) is not None
            ]
            weight = sum(w for _, w in pairs)
            out[key] = sum(v * w for v, w in pairs) / weight if weight else sum(vals) / len(vals)
        elif key.endswith(_QUANTILES):
            out[key] = max(vals)
        elif key == "drift_p_value":
            out[key] = min(1.0, len(vals) * min(vals))
        else:
            out[key] = vals[0] if all(v == vals[0] for v in vals) else "*"
    return out


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
        self._checks: dict[tuple[str, tuple[str, ...]], Check] = {}
        self._trackers: dict[tuple[str, tuple[str, ...]], AlertTracker] = {}
        self.last_observations: list[tuple[str, dict[str, str], Observation]] = []

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
                key = (rule.name, tuple(seg))
                if key in restored:
                    raise StateError(f"{where}: a second entry for rule {rule.name!r} segment {seg}")
                restored[key] = ev._restore_one(part, rule, key, entry["state"], f"{where}.state")
            setattr(ev, f"_{part}", restored)
        return ev

    def _restore_one(self, part: str, rule: Rule, key: tuple[str, tuple[str, ...]], state: Any,
                     where: str) -> Check | AlertTracker:
        """One stored check, or one tracker checked against the tracker the rule makes now."""
        if part == "checks":
            return check_from_state(rule, state, where)
        tracker = AlertTracker.from_state(state, where)
        fresh = self._tracker(rule, key, self.labels(rule, dict(zip(rule.segment_by, key[1], strict=True))))
        if tracker.to_state()["params"] != fresh.to_state()["params"]:
            raise StateError(f"{where}.params: differ from what rule {rule.name!r} sets now")
        return tracker

    def active(self) -> list[AlertTracker]:
        """Trackers of alerts that are pending or firing now."""
        return [t for t in self._trackers.values() if t.state != "inactive"]

    def labels(self, rule: Rule, window: Mapping[str, Any]) -> dict[str, str]:
        """Alert labels: the rule's static labels, the segment, ``metric``; model/app "*" if pooled."""
        seg = {key: str(window.get(key)) for key in rule.segment_by}
        return {**rule.labels, "model": "*", "app": "*", **seg, "metric": rule.metric}

    def _tracker(self, rule: Rule, key: tuple[str, tuple[str, ...]], labels: dict[str, str]) -> AlertTracker:
        if key not in self._trackers:
            rs = self.ruleset
            self._trackers[key] = AlertTracker(
                rule.name,
                labels,
                rule.severity,
                rs.windows(rule.for_),
                rs.windows(rule.resolve_after),
                parse_duration(rule.renotify) if rule.renotify else None,
                rule.summary or rule.default_summary(),
            )
        return self._trackers[key]

    def evaluate(self, windows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Process closed windows in ``window_end`` order; return the alert events (dicts)."""
        by_end: dict[datetime, list[Mapping[str, Any]]] = defaultdict(list)
        for window in windows:
            end = window["window_end"]
            if not isinstance(end, datetime) or end.tzinfo is None:
                raise ValueError(f"window_start/window_end must be timezone-aware datetimes, got {end!r}")
            by_end[window["window_end"]].append(window)
        self.last_observations = []
        events: list[dict[str, Any]] = []
        for end in sorted(by_end):
            events.extend(self._evaluate_one(end, by_end[end]))
        return events

    def _inhibit(self, seen: list) -> list:
        """A rule that is bad (or pending/firing) on a segment clears the rules it ``inhibits``
        on that segment, as Alertmanager's inhibit_rules do: one incident, one alert."""
        rules = {r.name: r for r in self.ruleset.rules}
        silenced = {
            (target, key[1])
            for key, _check, tracker, obs in seen
            for target in rules[key[0]].inhibits
            if obs.condition or tracker.state != "inactive"
        }
        if not silenced:
            return seen
        return [
            (key, check, tracker, replace(obs, condition=False,
                                          evidence={**obs.evidence, "inhibited": True}))
            if key in silenced and obs.condition is not None else (key, check, tracker, obs)
            for key, check, tracker, obs in seen
        ]

    def _evaluate_one(self, end: datetime, batch: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """All rules x segments of one window_end, then BH over their p-values, then the trackers."""
        seen: list[tuple[tuple[str, tuple[str, ...]], Check, AlertTracker, Observation]] = []
        for rule in self.ruleset.rules:
            segments: dict[tuple[str, ...], list[Mapping[str, Any]]] = defaultdict(list)
            for window in batch:
                segments[tuple(str(window.get(k)) for k in rule.segment_by)].append(window)
            for seg, parts in segments.items():
                window = parts[0] if len(parts) == 1 else merge_windows(parts)
                key, labels = (rule.name, seg), self.labels(rule, window)
                tracker = self._tracker(rule, key, labels)
                if tracker.last_window_end is not None and end <= tracker.last_window_end:
                    continue
                if key not in self._checks:
                    self._checks[key] = make_check(rule)
                check = self._checks[key]
                obs = check.observe(window, tracker.state == "firing")
                examples = list(window.get("examples") or [])[: self.max_examples]
                obs = replace(
                    obs, evidence={**obs.evidence, "count": window.get("count"), "examples": examples}
                )
                seen.append((key, check, tracker, obs))
        tested = [i for i, s in enumerate(seen) if s[3].p_value is not None and s[3].condition is not None]
        if self.ruleset.fdr_q is not None and tested:
            keep = benjamini_hochberg([seen[i][3].p_value for i in tested], self.ruleset.fdr_q)
            for i, rejected in zip(tested, keep, strict=True):
                key, check, tracker, obs = seen[i]
                evidence = {**obs.evidence, "fdr_q": self.ruleset.fdr_q, "fdr_rejected": rejected}
                seen[i] = (
                    key,
                    check,
                    tracker,
                    replace(obs, condition=obs.condition and rejected, evidence=evidence),
                )
        seen = self._inhibit(seen)
        events: list[dict[str, Any]] = []
        for _key, check, tracker, obs in seen:
            check.commit(obs.condition)
            self.last_observations.append((tracker.rule, tracker.labels, obs))
            events.extend(tracker.observe(obs))
        if self.absent_is_clear:
            observed = {s[0] for s in seen}
            start = end - parse_duration(self.ruleset.window)
            for key, tracker in self._trackers.items():
                if key not in observed and tracker.state != "inactive":
                    events.extend(tracker.observe(Observation(start, end, None)))
        return events
