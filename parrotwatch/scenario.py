"""The reference incident scenario: an hour of traffic over 9 segments with four incidents,
each of which one shipped rule must catch. Used by ``parrotwatch demo`` and the replay tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from parrotwatch.traffic import Incident, generate_inference_events

# (rule that must fire, model, app) -> (first minute, end minute) of the incident
INCIDENTS: dict[tuple[str, str, str], tuple[int, int]] = {
    ("latency_p99_spike", "gpt-4o-mini", "search"): (25, 32),
    ("repetition_loop", "mistral-7b", "code-assistant"): (30, 36),
    ("low_confidence", "llama-3-8b", "support-bot"): (38, 46),
    ("throughput_drop", "mistral-7b", "search"): (45, 52),
}
# Incidents that only the model-based detectors see (toxicity, hallucination, drift).
QUALITY_INCIDENTS: dict[tuple[str, str, str], tuple[int, int]] = {
    ("toxicity_burst", "gpt-4o-mini", "support-bot"): (15, 21),
    ("hallucination_spike", "llama-3-8b", "search"): (20, 26),
    ("embedding_drift", "llama-3-8b", "support-bot"): (28, 34),
    ("regurgitation_hits", "llama-3-8b", "search"): (9, 14),
}
# The segments of quality_scenario_traffic: incidents on three, gpt-4o-mini/search is the control.
QUALITY_MODELS = ("gpt-4o-mini", "llama-3-8b")
QUALITY_APPS = ("support-bot", "search")
_KINDS = {"latency_p99_spike": "latency_spike", "repetition_loop": "repetition_loop",
          "low_confidence": "low_confidence", "toxicity_burst": "toxicity_burst",
          "hallucination_spike": "hallucination_spike", "embedding_drift": "drift_shift",
          "regurgitation_hits": "regurgitation_burst"}
DROPPED_SHARE = 0.8  # the throughput drop: this share of the segment's requests never arrive


def scenario_traffic(start: datetime, *, minutes: int = 60, rate_per_s: float = 6.0,
                     with_incidents: bool = True, seed: int = 42,
                     id_prefix: str = "scenario", quality: bool = False) -> list[dict]:
    """About 40 requests per segment and minute at the default rate, enough for every rule's
    ``min_count``; incidents placed by minute from ``start``; with ``quality``, the
    :data:`QUALITY_INCIDENTS` too."""
    def at(minute: float) -> int:
        return int(minute * 60 * rate_per_s)

    placed = {**INCIDENTS, **(QUALITY_INCIDENTS if quality else {})}
    incidents = [Incident(kind=_KINDS[rule], start_index=at(a), end_index=at(b), model=m, app=p)
                 for (rule, m, p), (a, b) in placed.items() if rule in _KINDS]
    events = generate_inference_events(at(minutes), seed=seed, start=start,
                                       rate_per_s=rate_per_s, id_prefix=id_prefix,
                                       incidents=incidents if with_incidents else [])
    if not with_incidents:
        return events
    (_, model, app), (a, b) = next((k, v) for k, v in INCIDENTS.items()
                                   if k[0] == "throughput_drop")
    lo, hi = start + timedelta(minutes=a), start + timedelta(minutes=b)
    keep_every = round(1 / (1 - DROPPED_SHARE))
    return [e for i, e in enumerate(events)
            if not (e["model"] == model and e["app"] == app
                    and lo <= datetime.fromisoformat(e["timestamp"]) < hi and i % keep_every)]


def quality_scenario_traffic(start: datetime, *, minutes: int = 38, rate_per_s: float = 2.7,
                             seed: int = 43, id_prefix: str = "quality") -> list[dict]:
    """The :data:`QUALITY_INCIDENTS` alone, on 4 segments (2 models x 2 apps, about 40 requests
    per segment and minute); gpt-4o-mini/search, without an incident, is the clean control."""
    def at(minute: float) -> int:
        return int(minute * 60 * rate_per_s)

    incidents = [Incident(kind=_KINDS[rule], start_index=at(a), end_index=at(b), model=m, app=p)
                 for (rule, m, p), (a, b) in QUALITY_INCIDENTS.items()]
    return generate_inference_events(at(minutes), seed=seed, start=start, rate_per_s=rate_per_s,
                                     id_prefix=id_prefix, models=QUALITY_MODELS,
                                     apps=QUALITY_APPS, incidents=incidents)


def training_corpus() -> list[str]:
    """The documents the regurgitation incident quotes: index them (``parrotwatch index build``
    or :func:`build_corpus_index`) to see its alert."""
    from parrotwatch.traffic import incident_texts

    return list(incident_texts()["training_corpus"])


def build_corpus_index(path) -> None:
    """An exact n-gram index (n = 8) of :func:`training_corpus` at ``path``."""
    from parrotwatch.detectors.audits.ngram_index import ExactIndex

    ExactIndex.from_documents(training_corpus(), n=8).save(path)


def scenario_truth(events: list[dict], start: datetime) -> dict[str, dict[str, bool]]:
    """What a careful reviewer answers for each request of ``scenario_traffic(start,
    quality=True)``, by request id: ``toxic`` (a toxic incident response), ``hallucinated`` (a
    response that the hallucination spike or a regurgitated quote put beside sources it does not
    follow) and ``off_topic`` (an off-domain drift prompt). The demo's simulated reviewers start
    from this truth and add their known noise."""
    from parrotwatch.traffic import incident_texts

    texts = incident_texts()
    toxic, off_domain = set(texts["toxic_responses"]), set(texts["off_domain_prompts"])
    quotes = texts["training_corpus"]
    (rule, model, app), (a, b) = next((k, v) for k, v in QUALITY_INCIDENTS.items()
                                      if k[0] == "hallucination_spike")
    lo, hi = start + timedelta(minutes=a), start + timedelta(minutes=b)
    truth = {}
    for e in events:
        at = datetime.fromisoformat(e["timestamp"])
        spiked = e["model"] == model and e["app"] == app and lo <= at < hi
        quoted = bool(e.get("sources")) and any(e["response"] in q for q in quotes)
        truth[e["request_id"]] = {
            "toxic": e["response"] in toxic,
            "hallucinated": bool(e.get("sources")) and (spiked or quoted),
            "off_topic": e.get("prompt") in off_domain,
        }
    return truth
