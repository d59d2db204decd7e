"""Window partials (streaming/windows.py): grouped bucket-wise adds give the sketches, counts and
flags of value-by-value adds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from ddsketch.pb.proto import DDSketchProto

from parrotwatch.detectors.flags import FLAGS
from parrotwatch.streaming.windows import MetricPartial, new_sketch, partials, sketch_to_bytes

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def _values(seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    mixed = np.concatenate([rng.lognormal(0, 2, 300), -rng.exponential(3, 100), np.zeros(20),
                            rng.choice([1e-12, -1e-12, 5e-324, 1e6, 2.5], 30)])
    rng.shuffle(mixed)
    return [float(v) for v in mixed]


@pytest.mark.parametrize("seed", range(4))
def test_add_all_leaves_the_sketch_of_value_by_value_adds(seed):
    values = _values(seed)
    reference = new_sketch()
    for v in values:
        reference.add(v)
    metric = next(m for m, f in FLAGS.items() if f.direction == "above")
    bulk = MetricPartial()
    bulk.add_all(metric, values)
    assert sketch_to_bytes(bulk.sketch) == sketch_to_bytes(reference)
    assert bulk.sketch.count == reference.count == len(values)
    for q in (0.0, 0.01, 0.5, 0.95, 0.99, 1.0):
        assert bulk.quantile(q) == reference.get_quantile_value(q)
    assert bulk.n == len(values) and bulk.total == pytest.approx(sum(values))
    assert bulk.flagged == sum(FLAGS[metric].flagged(v) for v in values)
    # and what is stored (the serialised sketch) reads back the same
    stored, expected = (DDSketchProto.from_proto(DDSketchProto.to_proto(s)) for s in (bulk.sketch, reference))
    assert [stored.get_quantile_value(q) for q in (0.05, 0.5, 0.99)] == [
        expected.get_quantile_value(q) for q in (0.05, 0.5, 0.99)]


def test_partials_group_rows_by_segment_and_minute():
    rows = [{"request_id": f"r{i}", "model": "m" if i % 2 else "n", "app": "a",
             "event_time": T0 + timedelta(seconds=20 * i), "latency_ms": float(100 + i),
             "repetition_rate": None if i % 3 else 0.0} for i in range(12)]
    out = partials(rows, ["latency_ms", "repetition_rate"])
    assert sum(p.requests for p in out.values()) == 12
    part = out[("m", "a", T0)]  # rows 1 (0:20) and ... in minute 10:00 with model m: only odd i < 3
    assert part.requests == 1 and part.examples == ["r1"]
    assert part.metrics["latency_ms"].n == 1 and "repetition_rate" not in part.metrics
    even = out[("n", "a", T0)]  # i = 0, 2 -> 0:00, 0:40
    assert even.requests == 2 and even.metrics["repetition_rate"].n == 1
    assert even.metrics["latency_ms"].total == 100.0 + 102.0


def test_applied_thresholds_change_what_counts_as_flagged():
    """``parrotwatch calibrate apply`` thresholds reach the window counts through ``flags``."""
    from parrotwatch.detectors.flags import Flag

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [{"model": "m", "app": "a", "event_time": t0, "request_id": f"r{i}",
             "toxicity": v} for i, v in enumerate((0.1, 0.35, 0.45, 0.6, 0.9))]
    registry = partials(rows, ["toxicity"])[("m", "a", t0)].metrics["toxicity"]
    applied = partials(rows, ["toxicity"], {**FLAGS, "toxicity": Flag(0.3, "above")})
    assert FLAGS["toxicity"].threshold == 0.5 and registry.flagged == 2
    assert applied[("m", "a", t0)].metrics["toxicity"].flagged == 4
