"""The model-based detectors in the real stream: scores, drill-down, drift, loads per worker,
and parity with ``parrotwatch score``."""

from __future__ import annotations

import json
import math
from collections import Counter

import orjson
import pytest

from parrotwatch.offline import score_file
from parrotwatch.quality import QualityConfig
from parrotwatch.stack.kafka import produce
from parrotwatch.testbed import build_testbed
from parrotwatch.traffic import encode, generate_inference_events, keyed
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

DETECTORS = ["toxicity", "hallucination", "drift", "reference_lm"]
REFERENCE = 20


def test_model_scores_come_out_of_the_stream_once_per_worker(namespace, stream_job, tmp_path):
    # 20 steps: any causal LM serves to score the responses without logprobs (not a memorising one)
    lm = build_testbed(tmp_path / "reference-lm", preset="tiny", steps=20, progress=False).path
    # One segment, so that the first REFERENCE requests form its drift reference.
    events = generate_inference_events(240, seed=5, id_prefix="q", models=("gpt-4o-mini",),
                                       apps=("search",), rate_per_s=2.0)
    produce(namespace.settings.bootstrap, namespace.topic("llm.inference.v1"), keyed(events))
    job = stream_job(quality_detectors=DETECTORS, reference_lm=lm, drift_reference_size=REFERENCE,
                     drift_window_sample=50, max_offsets_per_trigger=60).start()
    wait_for(lambda: namespace.scalar("SELECT count(*) FROM inference_scores") >= len(events),
             timeout=400, what="240 scored rows", job=job)

    rows = {r[0]: r[1:] for r in namespace.sql(
        "SELECT request_id, toxicity, hallucination, ood_score, surprisal_mean, score_source "
        "FROM inference_scores")}
    assert len(rows) == len(events)
    with_sources = {e["request_id"] for e in events if e.get("sources")}
    assert with_sources, "the traffic must contain RAG events"
    without_logprobs = {e["request_id"] for e in events if not e.get("logprobs")}
    assert without_logprobs
    for rid, (tox, hall, _, surprisal, source) in rows.items():
        # likelihood scores of every response: logged logprobs, else the reference LM's
        assert surprisal is not None and surprisal > 0
        assert source == ("reference_lm" if rid in without_logprobs else "logprobs")
        assert tox is not None and 0.0 <= tox <= 1.0
        assert (hall is not None) == (rid in with_sources)
        if hall is not None:
            assert 0.0 <= hall <= 1.0
    # ood_score: null for the reference itself, set afterwards
    assert namespace.scalar("SELECT count(*) FROM drift_reference WHERE side = 'prompt'") == REFERENCE
    scored_ood = namespace.scalar("SELECT count(*) FROM inference_scores WHERE ood_score IS NOT NULL")
    assert scored_ood >= len(events) - 2 * 60 - REFERENCE  # at most the batches that filled it
    # drill-down: the most surprising tokens of every response (logged logprobs, else the
    # reference LM's), bounded
    tops = namespace.sql("SELECT surprising_tokens FROM request_drilldown "
                         "WHERE surprising_tokens IS NOT NULL")
    assert len(tops) == len(events)
    assert all(1 <= len(t[0]) <= 5 for t in tops)
    # closed windows got drift tests against the reference, in the alerting transaction
    wait_for(lambda: namespace.scalar("SELECT count(*) FROM drift_windows") > 0, timeout=60,
             what="drift tests of closed windows", job=job)
    p_values = [r[0] for r in namespace.sql("SELECT p_value FROM drift_windows")]
    assert all(0.0 < p <= 1.0 for p in p_values)

    # Each model was loaded once per Python worker process.
    log = namespace.settings.logs_dir / "model-loads.jsonl"
    loads = [json.loads(line) for line in log.read_text().splitlines()]
    loads = [entry for entry in loads if entry["detectors"] == DETECTORS]
    per_pid = Counter(entry["pid"] for entry in loads)
    assert loads and max(per_pid.values()) == 1, per_pid
    # one torch thread per worker (spark.task.cpus): workers do not oversubscribe the cores
    assert {entry["torch_threads"] for entry in loads} == {1}
    assert len(per_pid) <= 4  # bounded by Spark's Python workers, not by batches (8+ here)
    batches = namespace.scalar("SELECT count(*) FROM sink_batches WHERE rows_in > 0 AND "
                               "starts_with(sink, 'inference-')")
    assert batches > len(per_pid)

    # Parity with `parrotwatch score` (drift aside: it needs the stream's reference).
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_bytes(b"\n".join(encode(e) for e in events) + b"\n")
    config = QualityConfig(detectors=("toxicity", "hallucination", "reference_lm"),
                           reference_lm=str(lm))
    report = score_file(jsonl, tmp_path / "scores.jsonl", progress=False, quality=config)
    assert report.scored == len(events)
    for line in (tmp_path / "scores.jsonl").read_bytes().splitlines():
        r = orjson.loads(line)
        tox, hall, _, surprisal, _ = rows[r["request_id"]]
        assert math.isclose(r["toxicity"], tox, abs_tol=1e-5)
        assert math.isclose(r["surprisal_mean"], surprisal, rel_tol=1e-4)
        assert (r["hallucination"] is None) == (hall is None)
        if hall is not None:
            assert math.isclose(r["hallucination"], hall, abs_tol=1e-9)
        assert r["ood_score"] is None
