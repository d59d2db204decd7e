"""The micro-batch cap: explicit, or the default for the detectors that run, also from the environment."""

from __future__ import annotations

import pydantic
import pytest

from parrotwatch.settings import MODEL_BATCH_EVENTS, MODEL_FREE_BATCH_EVENTS, Settings


@pytest.fixture(autouse=True)
def _no_parrotwatch_environment(monkeypatch):
    for name in ("PARROTWATCH_MAX_OFFSETS_PER_TRIGGER", "PARROTWATCH_QUALITY_DETECTORS"):
        monkeypatch.delenv(name, raising=False)


def test_unset_cap_follows_the_detectors():
    assert Settings(quality_detectors=[]).events_per_batch == MODEL_FREE_BATCH_EVENTS == 50_000
    assert Settings(quality_detectors=["drift"]).events_per_batch == MODEL_BATCH_EVENTS == 2_000
    assert Settings().events_per_batch == MODEL_BATCH_EVENTS  # the default runs model detectors


def test_explicit_cap_wins_also_from_the_environment(monkeypatch):
    monkeypatch.setenv("PARROTWATCH_MAX_OFFSETS_PER_TRIGGER", "12345")
    assert Settings(quality_detectors=["toxicity"]).events_per_batch == 12345
    with pytest.raises(pydantic.ValidationError, match="greater than 0"):
        Settings(max_offsets_per_trigger=0)
