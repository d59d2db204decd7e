"""Flag thresholds: a request whose score crosses its metric's threshold counts as "flagged".

Window aggregates count flagged requests per metric (``{metric}_flagged``), so rules can alert on
the *share* of bad requests rather than on a mean that one outlier can move. Direction: "above"
means larger is worse, "below" means smaller is worse.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Flag:
    threshold: float
    direction: str  # "above" | "below"

    def flagged(self, value: float | None) -> bool:
        if value is None:
            return False
        return value > self.threshold if self.direction == "above" else value < self.threshold


FLAGS: dict[str, Flag] = {
    "surprisal_mean": Flag(3.0, "above"),  # mean token surprisal over 3 nats: perplexity > 20
    "entropy_mean": Flag(2.0, "above"),
    "repetition_rate": Flag(0.5, "above"),  # half the word 3-grams repeated: a loop
    "compression_ratio": Flag(4.0, "above"),
    "distinct_2": Flag(0.3, "below"),
    "latency_ms": Flag(10_000.0, "above"),
    "tokens_per_s": Flag(5.0, "below"),
    "toxicity": Flag(0.5, "above"),
    "hallucination": Flag(0.5, "above"),
    "ood_score": Flag(1.0, "above"),  # beyond the reference's 99th percentile
    "regurgitation": Flag(49.5, "above"),  # a verbatim overlap of 50+ tokens with the training corpus
}
