"""The texts the stream keeps for human review: which requests, how bounded, and that keeping
them can never cost a request its scores."""

from __future__ import annotations

import orjson
import pytest

from parrotwatch.detectors.calibration.sampling import PoolDesign, uniform_of
from parrotwatch.poison import poison_corpus
from parrotwatch.streaming import records
from parrotwatch.streaming.records import REVIEW_TEXT_BYTES, inference_rows
from parrotwatch.traffic import encode, generate_inference_events

KEEP_ALL = PoolDesign(base=1.0, near_rate=1.0, flagged_rate=1.0, near=0.0)


def _kept(rows: list[dict]) -> list[dict]:
    return [orjson.loads(r["review_text"]) for r in rows if r.get("review_text")]


def test_every_valid_poison_case_keeps_a_bounded_storable_text():
    cases = [c for c in poison_corpus() if c.topic == "inference"]
    rows = inference_rows([c.raw for c in cases], 1 << 20, pool=KEEP_ALL)
    for case, row in zip(cases, rows, strict=True):
        assert (row["kind"] == "ok") == (case.expect == "ok"), case.name
        if row["kind"] != "ok":
            assert row.get("review_text") is None, case.name
            continue
        blob = row["review_text"]
        assert len(blob) <= REVIEW_TEXT_BYTES, (case.name, len(blob))
        text = orjson.loads(blob)
        strings = [text["prompt"], text["response"], *text["sources"]]
        assert not any("\x00" in s for s in strings), case.name
        for s in strings:
            s.encode("utf-8")  # raises on a lone surrogate
        assert text["p"] == 1.0


def test_long_texts_are_cut_on_character_boundaries_and_marked():
    big = generate_inference_events(1, seed=5)[0]
    big.update(response="\U0001f99c" * 50_000, prompt="é" * 50_000, sources=["ü" * 9_000] * 8)
    (text,) = _kept(inference_rows([encode(big)], 1 << 20, pool=KEEP_ALL))
    assert text["truncated"] is True
    assert text["response"].rstrip("\u2026") == "\U0001f99c" * len(text["response"].rstrip("\u2026"))
    assert 1_000 < len(text["response"]) < 50_000 and len(text["sources"]) < 8


def test_short_texts_are_kept_whole():
    event = generate_inference_events(1, seed=6)[0]
    (text,) = _kept(inference_rows([encode(event)], 1 << 20, pool=KEEP_ALL))
    assert text["response"] == event["response"] and text["truncated"] is False


def test_the_keep_decision_follows_the_design_and_replays_the_same():
    events = generate_inference_events(4_000, seed=7)
    raws = [encode(e) for e in events]
    design = PoolDesign(base=0.1, near_rate=0.1, flagged_rate=0.1, near=0.0)
    first = [r["review_text"] is not None for r in inference_rows(raws, 1 << 20, pool=design)]
    again = [r["review_text"] is not None for r in inference_rows(raws, 1 << 20, pool=design)]
    assert first == again  # a replayed micro-batch keeps the same texts
    assert first == [uniform_of(e["request_id"]) < 0.1 for e in events]
    assert 0.08 < sum(first) / len(first) < 0.12


def test_flagged_requests_are_kept_more_often():
    events = generate_inference_events(3_000, seed=8)
    raws = [encode(e) for e in events]
    design = PoolDesign(base=0.02, near_rate=0.02, flagged_rate=1.0, near=0.0,
                        thresholds=(("repetition_rate", 0.3, True),))
    rows = inference_rows(raws, 1 << 20, pool=design)
    flagged = [r for r in rows if (r["repetition_rate"] or 0) > 0.3]
    assert flagged and all(r["review_text"] for r in flagged)
    assert all(orjson.loads(r["review_text"])["p"] == 1.0 for r in flagged)


def test_no_pool_keeps_nothing():
    raws = [encode(e) for e in generate_inference_events(50, seed=9)]
    for pool in (None, PoolDesign(base=0.0, near_rate=1.0, flagged_rate=1.0, near=1.0)):
        assert not _kept(inference_rows(raws, 1 << 20, pool=pool))


def test_a_failing_review_copy_never_costs_the_scores(monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("review copy bug")

    monkeypatch.setattr(records, "review_text", broken)
    raws = [encode(e) for e in generate_inference_events(20, seed=10)]
    rows = inference_rows(raws, 1 << 20, pool=KEEP_ALL)
    assert all(r["kind"] == "ok" and r["review_text"] is None for r in rows)


@pytest.mark.parametrize("budget", [64, 1024])
def test_the_budget_holds_when_escapes_inflate_the_json(budget):
    event = generate_inference_events(1, seed=11)[0]
    event.update(response="\x01" * 30_000, prompt="\x1f" * 30_000, sources=["\x02" * 5_000])
    parsed = records.parse_inference(encode(event), 1 << 20)
    blob = records.review_text(parsed, 0.5, budget=budget * 16)
    assert len(blob) <= budget * 16 and orjson.loads(blob)["truncated"] is True


def test_a_broken_label_schema_keeps_no_texts_and_scoring_goes_on(tmp_path, caplog):
    from parrotwatch.settings import Settings
    from parrotwatch.streaming.job import review_pool

    broken = tmp_path / "labels.yaml"
    broken.write_text("labels: [{key: Toxic!, kind: boolean}]\n")
    assert review_pool(Settings(review_labels=broken)) is None
    assert "label schema is broken" in caplog.text
    assert review_pool(Settings()) is not None  # the shipped schema
    assert review_pool(Settings(review_pool_rate=0)) is None
