"""Pure alerting core: baseline detectors, tests, rules, alert lifecycle and the evaluator.

No I/O: the stream computes window aggregates and calls ``Evaluator.evaluate``; publishing the
returned AlertEventV1 dicts is the caller's job.
"""

from parrotwatch.detectors.alerting.baselines import Cusum, EwmaZScore, PageHinkley
from parrotwatch.detectors.alerting.evaluate import Evaluator, merge_windows
from parrotwatch.detectors.alerting.lifecycle import AlertTracker, Observation, fingerprint
from parrotwatch.detectors.alerting.rules import RulesError, RuleSet, load_default_rules, load_rules
from parrotwatch.detectors.alerting.state import StateError
from parrotwatch.detectors.alerting.stats import RateRatioResult, benjamini_hochberg, rate_ratio_test

__all__ = [
    "AlertTracker",
    "Cusum",
    "Evaluator",
    "EwmaZScore",
    "Observation",
    "PageHinkley",
    "RateRatioResult",
    "RuleSet",
    "RulesError",
    "StateError",
    "benjamini_hochberg",
    "fingerprint",
    "load_default_rules",
    "load_rules",
    "merge_windows",
    "rate_ratio_test",
]
