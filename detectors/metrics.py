"""The metric registry: every per-request score, declared once.

Each :class:`Metric` says what the score is (``definition``, with its paper or formula), how it is
shown (``unit``, a Grafana unit id, and ``panel``, the dashboard row that shows it), which way is
bad (``direction``), when one request counts as flagged (``threshold``, compared the bad way), who
produces it (``detector``) and whether it needs the model-based extras (``needs_models``).

Everything else is derived from :data:`METRICS`: the score columns of ``inference_scores``, the
stream's Arrow schema and the ``llm.scores.v1`` messages (:data:`SCORE_NAMES`, in this order), the
fields of ``RequestScores`` (:data:`MODEL_FREE_SCORE_NAMES`), the flag thresholds
(``parrotwatch.detectors.flags.FLAGS``), the metric names alert rules accept
(``parrotwatch.detectors.alerting.rules``), the per-score dashboard panels
(``parrotwatch.dashboards``) and the score table of docs/scores.md (:func:`markdown_table`; ``python -m
parrotwatch.detectors.metrics`` prints it). Adding a score: one entry here, one migration adding
its column, and the code that computes it. tests/unit/detectors/test_metrics.py checks that
each of those places agrees with the registry.

Pure data: the standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

HIGHER_IS_WORSE = "higher_is_worse"
LOWER_IS_WORSE = "lower_is_worse"
Direction = Literal["higher_is_worse", "lower_is_worse"]

#: Dashboard uid -> title shown in the docs (the dashboards of ``parrotwatch.dashboards``).
DASHBOARD_TITLES = {
    "parrotwatch-overview": "Overview",
    "parrotwatch-quality": "Quality",
    "parrotwatch-drilldown": "Request drill-down",
    "parrotwatch-drift": "Drift",
    "parrotwatch-memorization": "Memorization",
}


@dataclass(frozen=True)
class PanelRef:
    """Where a score is shown: a dashboard uid and the beginning of its row's title."""

    dashboard: str
    row: str

    def __str__(self) -> str:
        return f"{DASHBOARD_TITLES[self.dashboard]} / {self.row}"


#: The Quality dashboard's "Scores over time" row: one panel per score declared here.
QUALITY_SCORES = PanelRef("parrotwatch-quality", "Scores over time")
#: Scores without a panel of their own are shown in the drill-down's "Scores" table (every
#: score is, in :data:`SCORE_NAMES` order).
DRILLDOWN = PanelRef("parrotwatch-drilldown", "Request")
TRAFFIC = PanelRef("parrotwatch-overview", "Traffic and latency")
MEMBERSHIP = PanelRef("parrotwatch-memorization", "Membership signal")
REGURGITATION = PanelRef("parrotwatch-memorization", "Regurgitation")
OUT_OF_DISTRIBUTION = PanelRef("parrotwatch-drift", "Out of distribution")


@dataclass(frozen=True)
class Metric:
    """One per-request score (a ``double precision`` column of ``inference_scores``)."""

    name: str
    title: str  # short label of its panels
    unit: str  # Grafana unit id ("none": a plain number)
    direction: Direction
    definition: str  # one line of Markdown: what it is, with its reference
    detector: str  # "module:function" (or class) that computes it, module in parrotwatch.detectors
    panel: PanelRef
    threshold: float | None = None  # flagged beyond it, the bad way; None: never flagged
    needs_models: bool = False  # needs the model extras (parrotwatch.quality's embeddings)

    @property
    def higher_is_worse(self) -> bool:
        return self.direction == HIGHER_IS_WORSE

    @property
    def detector_path(self) -> str:
        """``detector`` as a file of the repository, e.g. ``detectors/lexical.py:distinct_n``."""
        module, _, name = self.detector.partition(":")
        return f"detectors/{module.replace('.', '/')}.py:{name}"

    def flagged(self, value: float | None) -> bool:
        """Whether one request's value crosses the threshold the bad way (strictly)."""
        if value is None or self.threshold is None:
            return False
        return value > self.threshold if self.higher_is_worse else value < self.threshold

    def flag_rule(self) -> str:
        """``"> 3"``, ``"< 0.3"``, or ``""`` for a score that is never flagged."""
        if self.threshold is None:
            return ""
        return f"{'>' if self.higher_is_worse else '<'} {self.threshold:g}"


#: Every per-request score, in column order (inference_scores, Arrow, llm.scores.v1). Do not
#: reorder: append (so model-free scores such as cost_usd may follow model-based ones).
METRICS: tuple[Metric, ...] = (
    Metric("surprisal_mean", "Surprisal", "none", HIGHER_IS_WORSE,
           "Mean token surprisal -log p over the response tokens, nats/token (Shannon 1948; Hale "
           "2001), from the logged logprobs or the reference LM.",
           "likelihood:likelihood_scores_many", QUALITY_SCORES,
           threshold=3.0),  # over 3 nats per token: perplexity > 20
    Metric("surprisal_max", "Max surprisal", "none", HIGHER_IS_WORSE,
           "Largest token surprisal -log p of the response, nats.",
           "likelihood:likelihood_scores_many", DRILLDOWN),
    Metric("perplexity", "Perplexity", "none", HIGHER_IS_WORSE,
           "exp(`surprisal_mean`) (Jelinek et al. 1977).",
           "likelihood:likelihood_scores_many", DRILLDOWN),
    Metric("entropy_mean", "Entropy", "none", HIGHER_IS_WORSE,
           "Mean next-token entropy H = -Σ p log p over the positions, nats; with only "
           "`top_logprobs`, of those renormalised (Malinin & Gales 2021).",
           "likelihood:token_entropy_many", QUALITY_SCORES, threshold=2.0),
    Metric("min_k_prob", "Min-K% Prob", "none", HIGHER_IS_WORSE,
           "Mean of the floor(0.2 N) lowest token log-probs, at least one (Min-K% Prob, Shi et "
           "al. 2023): higher means more likely seen in training.",
           "likelihood:likelihood_scores_many", MEMBERSHIP),
    Metric("distinct_2", "Distinct-2", "none", LOWER_IS_WORSE,
           "Distinct word bigrams / word bigrams of the response (Li et al. 2016).",
           "lexical:distinct_n", DRILLDOWN, threshold=0.3),
    Metric("repetition_rate", "Repetition", "none", HIGHER_IS_WORSE,
           "1 - distinct word 3-grams / word 3-grams (seq-rep-n, Welleck et al. 2020).",
           "lexical:repetition_rate", QUALITY_SCORES,
           threshold=0.5),  # half the word 3-grams repeated: a loop
    Metric("compression_ratio", "Compression ratio", "none", HIGHER_IS_WORSE,
           "UTF-8 bytes / zlib-compressed bytes (level 9) of the response: loops compress well "
           "(zlib as in Carlini et al. 2021).",
           "lexical:compression_ratio", DRILLDOWN, threshold=4.0),
    Metric("latency_ms", "Latency", "ms", HIGHER_IS_WORSE,
           "The request's latency as the event logs it, milliseconds.",
           "request:score_requests", TRAFFIC, threshold=10_000.0),
    Metric("tokens_per_s", "Tokens per second", "none", LOWER_IS_WORSE,
           "Output tokens (`usage.output_tokens`, else logprob tokens) / latency in seconds.",
           "request:tokens_per_s", TRAFFIC, threshold=5.0),
    Metric("regurgitation", "Regurgitation", "none", HIGHER_IS_WORSE,
           "Longest overlap with the training-corpus n-gram index, in words after normalising case, "
           "Unicode (NFKC) and spacing, across gaps of up to 8 edited words (near-verbatim, Ippolito "
           "et al. 2022); null without `PARROTWATCH_REGURGITATION_INDEX` (docs/regurgitation.md).",
           "audits.regurgitation:longest_overlap", REGURGITATION,
           threshold=49.5),  # a verbatim overlap of 50+ tokens with the training corpus
    Metric("toxicity", "Toxicity", "none", HIGHER_IS_WORSE,
           "Probability (0..1) that the response is toxic (docs/toxicity.md).",
           "toxicity:ToxicityScorer", QUALITY_SCORES, threshold=0.5, needs_models=True),
    Metric("hallucination", "Hallucination", "none", HIGHER_IS_WORSE,
           "Share (0..1) of response sentences the request's `sources` do not support, RAG "
           "requests only (docs/hallucination.md).",
           "grounding.scorer:GroundingScorer", QUALITY_SCORES, threshold=0.5, needs_models=True),
    Metric("ood_score", "Out-of-distribution score", "none", HIGHER_IS_WORSE,
           "k-NN cosine distance of the prompt's embedding to its segment's reference, 1.0 = the "
           "reference's 99th percentile (docs/drift.md).",
           "drift.knn:KnnOod", OUT_OF_DISTRIBUTION,
           threshold=1.0, needs_models=True),  # beyond the reference's 99th percentile
    Metric("toxicity_unread", "Toxicity unread", "percentunit", HIGHER_IS_WORSE,
           "1 when the response is in a language `toxicity` does not read (its score is null), 0 "
           "when scored; the window mean is the share of traffic it cannot read (docs/toxicity.md).",
           "language:LanguageSupport", QUALITY_SCORES, threshold=0.5, needs_models=True),
    Metric("hallucination_unread", "Hallucination unread", "percentunit", HIGHER_IS_WORSE,
           "1 when a RAG response is in a language `hallucination` does not read (null score), 0 "
           "when scored; null without sources (docs/hallucination.md).",
           "language:LanguageSupport", QUALITY_SCORES, threshold=0.5, needs_models=True),
    Metric("cost_usd", "Cost", "currencyUSD", HIGHER_IS_WORSE,
           "List-price cost of the request in US$: ((input - cached) x input price + cached x "
           "cached-input price + output x output price) / 1M, from a dated price table; null for "
           "a model without a price (docs/cost.md).",
           "cost:PriceTable", TRAFFIC),
    Metric("pii_count", "PII found", "none", HIGHER_IS_WORSE,
           "Personal data found in the prompt and the response: e-mail addresses, phone numbers, "
           "payment cards (Luhn), IBANs (mod 97), US SSNs, IP addresses, URLs, crypto wallets, dates "
           "of birth, by Presidio's pattern and checksum recognizers, no NER model; the types go to "
           "the drill-down (docs/pii.md).",
           "pii:PiiScorer", QUALITY_SCORES, needs_models=True),
    Metric("injection_score", "Prompt injection", "none", HIGHER_IS_WORSE,
           "Probability (0..1) that the user's input is a prompt injection or jailbreak: similarity "
           "to a corpus of public attacks and an n-gram model, stacked (Perez & Ribeiro 2022; "
           "Greshake et al. 2023); opt-in, not yet calibrated for alerting (docs/injection.md).",
           "injection:InjectionScorer", QUALITY_SCORES, needs_models=True),
    Metric("pii_regurgitated", "PII regurgitated", "none", HIGHER_IS_WORSE,
           "Personal data (e-mail, phone, card, IBAN, SSN, wallet, date of birth) of the response that "
           "lies inside a verbatim run of training-corpus n-grams and is not in the request's prompt or "
           "sources: repeated from the training data, a privacy incident (Lukas et al. 2023); null "
           "without both `PARROTWATCH_REGURGITATION_INDEX` and the `pii` detector (docs/pii.md).",
           "audits.pii_leakage:count_leaked", REGURGITATION,
           threshold=0.5, needs_models=True),  # one leaked PII span is an incident
)

BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}
#: Every score column, in order: inference_scores, the Arrow schema, llm.scores.v1, rules.
SCORE_NAMES: tuple[str, ...] = tuple(BY_NAME)
#: The scores ``parrotwatch.detectors.request.RequestScores`` holds (no model needed).
MODEL_FREE_SCORE_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS if not m.needs_models)
#: The scores only the model-based detectors fill (``parrotwatch.quality``, the drift stage).
MODEL_SCORE_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS if m.needs_models)


def metric(name: str) -> Metric:
    """The registered score ``name``; ``KeyError`` naming the valid ones otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown score {name!r}; registered: {', '.join(SCORE_NAMES)}") from None


def flagged_metrics() -> tuple[Metric, ...]:
    """The scores with a flag threshold, in column order."""
    return tuple(m for m in METRICS if m.threshold is not None)


def shown_on(panel: PanelRef) -> tuple[Metric, ...]:
    """The scores whose panel is ``panel``, in column order."""
    return tuple(m for m in METRICS if m.panel == panel)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(metrics: Iterable[Metric] = METRICS) -> str:
    """The score table of docs/scores.md (between its ``score-table`` markers), one row per score."""
    lines = ["| score | definition | unit | worse | flagged when | computed by | dashboard |",
             "|---|---|---|---|---|---|---|"]
    for m in metrics:
        by = f"`{m.detector_path}`" + (" (model-based)" if m.needs_models else "")
        lines.append(" | ".join((
            f"| `{m.name}`", _cell(m.definition), m.unit, m.direction.split("_")[0],
            m.flag_rule() or "never", by, f"{m.panel} |")))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
