"""Simulated reviewers for the demo: they label the review queue through the HTTP API, from the
scenario's known truth plus a known noise, so the calibration views have data and the noise the
statistics must see through is known (docs/review.md)."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulatedReviewer:
    """A reviewer who answers each yes/no label wrongly with probability ``noise``."""

    name: str
    key: str
    noise: float


def simulated_labels(schema: list[dict], truth: Mapping[str, bool], noise: float,
                     rng: random.Random) -> dict:
    """The answers to every label of ``schema`` for a request of known ``truth``: booleans
    flipped with probability ``noise``, a scale low for bad answers and high for good ones."""
    bad = any(truth.values())
    labels = {}
    for label in schema:
        if label["kind"] == "boolean":
            labels[label["key"]] = bool(truth.get(label["key"], False)) != (rng.random() < noise)
        else:
            lo, hi = label["min"], label["max"]
            labels[label["key"]] = rng.randint(lo, (lo + hi) // 2) if bad else rng.randint(
                (lo + hi + 1) // 2, hi)
    return labels


def review_queue(api_url: str, reviewer: SimulatedReviewer,
                 truth: Mapping[str, Mapping[str, bool]], *, seed: int = 0,
                 max_items: int = 10_000) -> int:
    """Label the queue as ``reviewer`` until it is empty for them; returns the labels given.
    Items of requests without a known truth are skipped."""
    rng = random.Random(f"{seed}/{reviewer.name}")
    given = 0
    headers = {"X-Reviewer-Key": reviewer.key}
    with httpx.Client(base_url=api_url, headers=headers, timeout=30) as api:
        schema = api.get("/v1/review/schema").raise_for_status().json()["labels"]
        for _ in range(max_items):
            r = api.get("/v1/review/next")
            if r.status_code == 204:
                break
            item = r.raise_for_status().json()
            known = truth.get(item["request_id"])
            if known is None:
                api.post(f"/v1/review/items/{item['item_id']}/skip").raise_for_status()
                continue
            body = {"labels": simulated_labels(schema, known, reviewer.noise, rng)}
            api.post(f"/v1/review/items/{item['item_id']}/labels", json=body).raise_for_status()
            given += 1
    log.info("simulated reviewer %s gave %d labels", reviewer.name, given)
    return given
