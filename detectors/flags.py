"""Flag thresholds: a request whose score crosses its metric's threshold counts as "flagged".

Window aggregates count flagged requests per metric (``{metric}_flagged``), so rules can alert on
the *share* of bad requests rather than on a mean that one outlier can move. Direction: "above"
means larger is worse, "below" means smaller is worse.

The thresholds are declared once, in the metric registry (:mod:`parrotwatch.detectors.metrics`);
``FLAGS`` is a view of its scores that have one.
"""

from __future__ import annotations

from dataclasses import dataclass

from parrotwatch.detectors.metrics import flagged_metrics


@dataclass(frozen=True)
class Flag:
    threshold: float
    direction: str  # "above" | "below"

    def flagged(self, value: float | None) -> bool:
        if value is None:
            return False
        return value > self.threshold if self.direction == "above" else value < self.threshold


FLAGS: dict[str, Flag] = {
    m.name: Flag(m.threshold, "above" if m.higher_is_worse else "below")
    for m in flagged_metrics() if m.threshold is not None
}
