"""The micro-batch cap: explicit, or the default for the detectors that run, also from the environment."""

from __future__ import annotations

import pydantic
import pytest

from parrotwatch.settings import MODEL_BATCH_EVENTS, MODEL_FREE_BATCH_EVENTS, ROW_BYTES_BOUND, Settings


@pytest.fixture(autouse=True)
def _no_parrotwatch_environment(monkeypatch):
    for name in ("PARROTWATCH_MAX_OFFSETS_PER_TRIGGER", "PARROTWATCH_QUALITY_DETECTORS",
                 "PARROTWATCH_MAX_BATCH_BYTES"):
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


def test_batches_are_bounded_in_bytes_too():
    assert Settings(quality_detectors=[], max_batch_bytes=256 * 1024**2).events_per_batch == 3_276
    assert Settings(max_offsets_per_trigger=50_000, max_batch_bytes=ROW_BYTES_BOUND * 10
                    ).events_per_batch == 10
    with pytest.raises(pydantic.ValidationError):
        Settings(max_batch_bytes=1024)


def test_no_row_reaching_the_driver_weighs_more_than_the_bound():
    """The byte bound rests on this: whatever the record (the poison corpus, 1 MiB events), its
    scored row or dead letter is at most ROW_BYTES_BOUND (text counted at 4 bytes a character)."""
    from parrotwatch.detectors.calibration.sampling import PoolDesign
    from parrotwatch.poison import poison_corpus
    from parrotwatch.streaming.records import feedback_rows, inference_rows
    from parrotwatch.traffic import encode, generate_inference_events

    def weight(row: dict) -> int:
        return sum(len(v) * (4 if isinstance(v, str) else 1) if isinstance(v, str | bytes) else 8
                   for v in row.values())

    big = generate_inference_events(1, seed=3)[0]
    big["response"] = "word " * 200_000  # 1 MB, over the default event limit: a dead letter
    raws = [encode(big)] + [c.raw for c in poison_corpus() if c.topic == "inference"]
    keep_all = PoolDesign(base=1.0, near_rate=1.0, flagged_rate=1.0, near=0.0)  # review texts too
    scored = inference_rows(raws, 1 << 20, pool=keep_all)
    rows = scored + feedback_rows(
        [c.raw for c in poison_corpus() if c.topic == "feedback"], 1 << 20)
    assert max(weight(r) for r in rows) <= ROW_BYTES_BOUND
    assert [r.get("review_text") is not None for r in scored] == [r["kind"] == "ok" for r in scored]
