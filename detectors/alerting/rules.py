"""Alert rules: strict pydantic models of a rules YAML file, and ``load_rules``.

A rule reads the window aggregates of one segment (``segment_by``, default model and app) and
decides, once per closed window, whether its condition holds; ``lifecycle`` turns those
decisions into alert events. Keys are checked strictly (``extra="forbid"``): a misspelled key
is an error naming the rule, the bad key and the valid keys (see ``load_rules``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from parrotwatch.detectors.alerting.config_errors import explain
from parrotwatch.detectors.alerting.durations import Duration, Span, parse_duration, span_windows
from parrotwatch.detectors.metrics import SCORE_NAMES

DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.yaml")

# Each registered score (parrotwatch.detectors.metrics.SCORE_NAMES) has window aggregates
# ``{score}_{stat}``; no other name does, so a rule may name no other score.
SCORE_STATS = ("n", "mean", "p50", "p95", "p99", "flagged")
WINDOW_KEYS = ("count", "feedback_count", "thumbs_down", "drift_p_value")

def check_metric(name: str) -> str:
    """Accept ``count``-like window keys and ``{score}_{stat}`` of a registered score
    (:mod:`parrotwatch.detectors.metrics`); otherwise name the valid ones."""
    if name in WINDOW_KEYS or any(name == f"{s}_{t}" for s in SCORE_NAMES for t in SCORE_STATS):
        return name
    raise ValueError(
        f"unknown metric {name!r}; valid: {', '.join(WINDOW_KEYS)}, or <score>_<stat> with stat in "
        f"{', '.join(SCORE_STATS)} and score in {', '.join(SCORE_NAMES)}"
    )


Metric = Annotated[str, Field(min_length=1)]
Direction = Literal["up", "down", "both"]


class _Rule(BaseModel):
    """Fields common to every rule kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1)]
    severity: Literal["info", "warning", "critical"] = "warning"
    summary: str | None = Field(None, description="Template; fields: labels, value, baseline, ...")
    segment_by: list[str] = Field(default_factory=lambda: ["model", "app"])
    labels: dict[str, str] = Field(default_factory=dict, description="Static labels added to alerts.")
    for_: Span = Field(1, alias="for", description="Consecutive bad windows before firing.")
    resolve_after: Span = Field(1, description="Consecutive clear windows before resolving.")
    renotify: Duration | None = Field(None, description="Repeat a firing alert this often.")
    min_count: Annotated[int, Field(ge=0)] = Field(0, description="Windows with fewer requests: no data.")
    inhibits: list[str] = Field(
        default_factory=list,
        description="Rules silenced on the same segment while this one is bad (as Alertmanager's "
        "inhibit_rules): one incident, one alert.",
    )

    def default_summary(self) -> str:
        """One sentence used when the rule gives no ``summary``."""
        return "{rule} on {model}/{app}: {metric} is {value:.4g}, baseline {baseline:.4g}."


class _MetricRule(_Rule):
    """A rule over one aggregate value per window, ``metric`` (also the alert's metric label)."""

    metric: Metric

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        return check_metric(value)


class _BaselineRule(_MetricRule):
    """A rule comparing the metric with its own history; ``log`` watches log(1 + value) (value >= 0).

    With ``pool_until``, a window is judged on the shortest trailing span of windows (up to
    ``pool_until``) holding ``min_count`` requests, and the detector learns from consecutive
    such spans: a sparse segment is judged later rather than never (``checks.BaselineCheck``).
    ``trend_span`` adds the Theil-Sen slope of the pooled values over that span to the evidence.
    """

    transform: Literal["none", "log"] = "none"
    pool_until: Span | None = Field(None, description="Pool trailing windows until min_count requests.")
    trend_span: Span | None = Field(None, description="State the slope over this span in the alert.")

    @model_validator(mode="after")
    def _pool_needs_a_count(self) -> _BaselineRule:
        if self.pool_until is not None and self.min_count < 1:
            raise ValueError("pool_until pools windows until min_count requests: set min_count >= 1")
        return self


class ThresholdRule(_MetricRule):
    """Static threshold, as in Prometheus alerting rules: ``value op threshold`` (with ``for``)."""

    kind: Literal["threshold"]
    op: Literal[">", ">=", "<", "<="]
    value: float
    resolve_value: float | None = Field(None, description="Hysteresis: while active, clear only past it.")

    @model_validator(mode="after")
    def _hysteresis_on_clear_side(self) -> ThresholdRule:
        r = self.resolve_value
        above = self.op in (">", ">=")
        if r is not None and ((above and r > self.value) or (not above and r < self.value)):
            raise ValueError(f"resolve_value {r} must be on the clear side of value {self.value} ({self.op})")
        return self

    def default_summary(self) -> str:
        return "{rule} on {model}/{app}: {metric} is {value:.4g}, threshold {threshold:.4g}."


class EwmaRule(_BaselineRule):
    """EWMA z-score on the metric's own history (``baselines.EwmaZScore``)."""

    kind: Literal["ewma"]
    alpha: Annotated[float, Field(gt=0, le=1)] = 0.05
    threshold: Annotated[float, Field(gt=0)] = 5.0
    warmup: Annotated[int, Field(ge=2)] = 15
    direction: Direction = "up"
    min_sigma: Annotated[float, Field(ge=0)] = 0.0
    min_rel_sigma: Annotated[float, Field(ge=0)] = 0.0
    relearn_after: Annotated[int, Field(ge=1)] | None = 60

    def default_summary(self) -> str:
        return (
            "{rule} on {model}/{app}: {metric} is {value:.4g} against a baseline of {baseline:.4g} "
            "(z = {statistic:.1f})."
        )


class CusumRule(_BaselineRule):
    """Self-starting two-sided CUSUM on the metric's own history (``baselines.Cusum``)."""

    kind: Literal["cusum"]
    k: Annotated[float, Field(ge=0)] = 0.5
    h: Annotated[float, Field(gt=0)] = 10.0
    warmup: Annotated[int, Field(ge=3)] = 10
    direction: Direction = "up"
    target: float | None = None
    sigma: Annotated[float, Field(gt=0)] | None = None
    min_sigma: Annotated[float, Field(ge=0)] = 0.0
    min_rel_sigma: Annotated[float, Field(ge=0)] = 0.0
    fir: Annotated[float, Field(ge=0, lt=1)] = 0.5
    freeze_after: Annotated[int, Field(ge=3)] | None = Field(
        None, description="Learn the reference from this many values, then keep it frozen.")
    relearn_after: Annotated[int, Field(ge=1)] | None = Field(
        None, description="Values in a row above h/2 after which the new level is learned.")

    @model_validator(mode="after")
    def _freeze_after_warmup(self) -> CusumRule:
        if self.freeze_after is not None and self.freeze_after < self.warmup:
            raise ValueError(f"freeze_after ({self.freeze_after}) must be at least warmup ({self.warmup})")
        return self

    def default_summary(self) -> str:
        return (
            "{rule} on {model}/{app}: {metric} has shifted from its baseline of {baseline:.4g}, "
            "now {value:.4g} (CUSUM {statistic:.1f})."
        )


class PageHinkleyRule(_BaselineRule):
    """Page-Hinkley change detection, in the metric's units (``baselines.PageHinkley``)."""

    kind: Literal["page_hinkley"]
    delta: Annotated[float, Field(ge=0)] = 0.005
    threshold: Annotated[float, Field(gt=0)] = 50.0
    alpha: Annotated[float, Field(gt=0, le=1)] = 1 - 0.0001
    min_instances: Annotated[int, Field(ge=1)] = 30
    direction: Direction = "up"

    def default_summary(self) -> str:
        return (
            "{rule} on {model}/{app}: {metric} changed to {value:.4g} from a mean of {baseline:.4g} "
            "(Page-Hinkley {statistic:.3g})."
        )


class RateRatioRule(_Rule):
    """Share numerator/denominator now against the same share over the clean baseline windows.

    "Now" is the last ``current_windows`` windows or, with ``pool_until``, the shortest trailing
    span (up to ``pool_until``) holding ``min_samples`` trials, and with ``scales`` also those
    holding twice, four times... as many (``count_checks.RateRatioCheck``). ``test``: Fisher's, or
    the beta-binomial predictive test, whose baseline borrows strength from the segments sharing
    the ``borrow_from`` labels (an empirical-Bayes prior; ``stats.beta_binomial_test``).
    """

    kind: Literal["rate_ratio"]
    numerator: Metric
    denominator: Metric
    baseline_windows: Annotated[int, Field(ge=1)] = 60
    current_windows: Annotated[int, Field(ge=1)] = 1
    pool_until: Span | None = Field(None, description="Pool trailing windows until min_samples trials.")
    scales: Annotated[int, Field(ge=1, le=8)] = Field(
        1, description="Pooled: also test spans of min_samples x 2, x 4, ... trials (weighted Bonferroni).")
    min_samples: Annotated[int, Field(ge=1)] = 30
    min_events: Annotated[int, Field(ge=0)] = 1
    max_ratio: Annotated[float, Field(gt=0)] | None = 2.0
    p_value: Annotated[float, Field(gt=0, lt=1)] | None = 0.001
    resolve_p_value: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        None, description="While firing: stay bad while a short span's p is below this.")
    test: Literal["fisher", "beta_binomial"] = "fisher"
    borrow_from: list[str] | None = Field(
        None, description="segment_by labels whose segments lend their baseline (beta_binomial).")

    @field_validator("numerator", "denominator")
    @classmethod
    def _known_metrics(cls, value: str) -> str:
        return check_metric(value)

    @model_validator(mode="after")
    def _some_condition(self) -> RateRatioRule:
        if self.max_ratio is None and self.p_value is None:
            raise ValueError("give max_ratio, p_value or both")
        if self.borrow_from is not None:
            if self.test != "beta_binomial":
                raise ValueError("borrow_from needs test: beta_binomial")
            unknown = sorted(set(self.borrow_from) - set(self.segment_by))
            if unknown:
                raise ValueError(f"borrow_from names {unknown}, not in segment_by {self.segment_by}")
        return self

    @property
    def metric(self) -> str:
        """The alert's metric label: the numerator."""
        return self.numerator

    def default_summary(self) -> str:
        return (
            "{rule} on {model}/{app}: {metric} share is {current_share:.3g}, {ratio:.3g}x the baseline "
            "{baseline_share:.3g} (p = {p_value:.2g})."
        )


class RateDropRule(_Rule):
    """Requests per window fell: an exact test of two Poisson rates on pooled counts
    (``stats.rate_drop_test``) over the shortest trailing span in which the baseline expects
    ``min_expected`` requests (up to ``pool_until``), against the previous clean windows."""

    kind: Literal["rate_drop"]
    metric: Literal["count"] = "count"
    baseline_windows: Annotated[int, Field(ge=1)] = 60
    warmup: Annotated[int, Field(ge=1)] = 15
    pool_until: Span = "60m"
    min_expected: Annotated[float, Field(gt=0)] = 30.0
    max_ratio: Annotated[float, Field(gt=0, lt=1)] = 0.5
    p_value: Annotated[float, Field(gt=0, lt=1)] = 0.000001
    relearn_after: Annotated[int, Field(ge=1)] | None = 60

    def default_summary(self) -> str:
        return (
            "{rule} on {model}/{app}: {value:.3g} requests per window over the last {span_minutes:g} "
            "minutes against {baseline:.3g} before (p = {p_value:.2g})."
        )


class DriftRule(_Rule):
    """Fires when the drift detector's p-value for the window is below ``p_value``."""

    kind: Literal["drift"]
    metric: Literal["drift_p_value"] = "drift_p_value"
    p_value: Annotated[float, Field(gt=0, lt=1)] = 0.01

    def default_summary(self) -> str:
        return "{rule} on {model}/{app}: drift test p = {value:.2g}, below {threshold:.2g}."


Rule = Annotated[
    ThresholdRule | EwmaRule | CusumRule | PageHinkleyRule | RateRatioRule | RateDropRule | DriftRule,
    Field(discriminator="kind"),
]
RULE_KINDS = {
    "threshold": ThresholdRule,
    "ewma": EwmaRule,
    "cusum": CusumRule,
    "page_hinkley": PageHinkleyRule,
    "rate_ratio": RateRatioRule,
    "rate_drop": RateDropRule,
    "drift": DriftRule,
}


class RuleSet(BaseModel):
    """A rules file: window length, the FDR level across one evaluation, and the rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    window: Duration = Field("1m", description="Length of the aggregate windows.")
    fdr_q: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        0.05, description="Benjamini-Hochberg level over all p-values of one window_end; null: off."
    )
    rules: list[Rule]

    @model_validator(mode="after")
    def _unique_names(self) -> RuleSet:
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(dupes)}")
        unknown = sorted({t for r in self.rules for t in r.inhibits} - set(names))
        if unknown:
            raise ValueError(f"'inhibits' names unknown rules {unknown}; rules: {', '.join(names)}")
        return self

    def windows(self, span: int | str) -> int:
        """A ``Span`` as a number of windows: an int as is, a duration rounded up to windows."""
        return span_windows(span, parse_duration(self.window))


class RulesError(ValueError):
    """A rules file that does not load; the message has one line per problem."""


def load_rules(source: str | Path | Mapping[str, Any]) -> RuleSet:
    """Load and validate a rules file (a path, YAML text, or an already parsed mapping).

    Every problem becomes one line naming the rule (index and name), the bad key and the valid
    keys of that rule kind, e.g. ``rules[0] 'latency_p99' (threshold): unknown key 'valu' (did
    you mean 'value'?); valid keys for threshold rules: name, severity, ...``.
    """
    origin = "rules"
    is_path = isinstance(source, str) and "\n" not in source and Path(source).is_file()
    if isinstance(source, Path) or is_path:
        origin, source = str(source), Path(source).read_text(encoding="utf-8")
    data: Any = source
    if isinstance(source, str):
        try:
            data = yaml.safe_load(source)
        except yaml.YAMLError as exc:
            raise RulesError(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise RulesError(f"{origin}: expected a mapping with a 'rules' list, got {type(data).__name__}")
    # Top-level "x-" keys hold YAML anchors shared by rules (as in compose files): not settings.
    data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        lines = explain(exc, data, RuleSet, RULE_KINDS)
        raise RulesError(f"{origin}: {len(lines)} problem(s)\n  " + "\n  ".join(lines)) from None


def load_default_rules() -> RuleSet:
    """The shipped default rule set, ``detectors/alerting/default_rules.yaml``."""
    return load_rules(DEFAULT_RULES_PATH)
