"""Typed results of one audit: summary metrics, per-sample scores, and the data its plots need."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Label = Literal["member", "non-member", "canary", "output", "generation"]


@dataclass(frozen=True)
class Metric:
    """One summary number of an audit, e.g. ``membership / auc {method: loss}`` with its 95% CI."""

    audit: str
    metric: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sample:
    """One audited item: higher ``score`` = more memorised; ``extra`` holds the audit's details."""

    audit: str
    sample_id: str
    label: Label
    score: float | None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditResult:
    """What one audit gives: ``metrics``, ``samples`` (all of them; storage bounds them), ``seconds`` of
    wall time, and ``plot``: the audit's own typed data for the HTML report."""

    audit: str
    metrics: tuple[Metric, ...]
    samples: tuple[Sample, ...]
    seconds: float
    plot: Any = None

    def metric(self, name: str, **labels: str) -> Metric:
        """The metric ``name`` whose labels include ``labels``; KeyError naming the ones there are."""
        for m in self.metrics:
            if m.metric == name and all(m.labels.get(k) == v for k, v in labels.items()):
                return m
        have = sorted({(m.metric, tuple(sorted(m.labels.items()))) for m in self.metrics})
        raise KeyError(f"{self.audit}: no metric {name} {labels}; have {have}")
