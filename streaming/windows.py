"""Per-window partial aggregates of scored requests, mergeable across micro-batches.

A window is one minute of event time per (model, app). Its partial holds, per metric, the
non-null count, the sum, the flagged count (``parrotwatch.detectors.flags``) and a DDSketch (Masson, Rim &
Lee 2019, "DDSketch: A Fast and Fully-Mergeable Quantile Sketch with Relative-Error
Guarantees"; relative accuracy 1%) so that p50/p95/p99 of a window stay exact to 1% however
many micro-batches fed it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping
from ddsketch.pb import ddsketch_pb2
from ddsketch.pb.proto import DDSketchProto

from parrotwatch.detectors.flags import FLAGS, Flag

WINDOW = timedelta(minutes=1)
RELATIVE_ACCURACY = 0.01
MAX_EXAMPLES = 5


def window_start(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def new_sketch() -> DDSketch:
    return DDSketch(relative_accuracy=RELATIVE_ACCURACY)


_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)  # DDSketch(relative_accuracy)'s own mapping
_MIN_POSITIVE = _MAPPING.min_possible
_key = _MAPPING.key


def sketch_to_bytes(sketch: DDSketch) -> bytes:
    return DDSketchProto.to_proto(sketch).SerializeToString()


def sketch_from_bytes(data: bytes) -> DDSketch:
    return DDSketchProto.from_proto(ddsketch_pb2.DDSketch.FromString(data))


@dataclass
class MetricPartial:
    n: int = 0
    total: float = 0.0
    flagged: int = 0
    sketch: DDSketch = field(default_factory=new_sketch)

    def add_all(self, metric: str, values: list[float], flags: Mapping[str, Flag] = FLAGS) -> None:
        """Add every value: the sketch gets one weighted update per bucket instead of one
        per value, which leaves its buckets exactly as value-by-value adds would (its in-memory
        sum/min/max, which are not serialised, come from one value per bucket)."""
        self.n += len(values)
        self.total = sum(values, self.total)
        per_bucket: dict[tuple[int, int], list] = {}  # (sign, key) -> [a value of it, count]
        for value in values:
            if value > _MIN_POSITIVE:
                bucket = (1, _key(value))
            elif value < -_MIN_POSITIVE:
                bucket = (-1, _key(-value))
            else:
                bucket = (0, 0)
            entry = per_bucket.get(bucket)
            if entry is None:
                per_bucket[bucket] = [value, 1]
            else:
                entry[1] += 1
        for value, count in per_bucket.values():
            self.sketch.add(value, float(count))
        flag = flags.get(metric)
        if flag is not None:
            self.flagged += sum(map(flag.flagged, values))

    def merge(self, other: MetricPartial) -> None:
        self.n += other.n
        self.total += other.total
        self.flagged += other.flagged
        if other.n:
            self.sketch.merge(other.sketch)

    def quantile(self, q: float) -> float | None:
        return self.sketch.get_quantile_value(q) if self.n else None


@dataclass
class WindowPartial:
    requests: int = 0
    examples: list[str] = field(default_factory=list)
    metrics: dict[str, MetricPartial] = field(default_factory=dict)


SegmentWindow = tuple[str, str, datetime]  # (model, app, window_start)


def partials(rows: Iterable[dict], metric_names: Iterable[str],
             flags: Mapping[str, Flag] = FLAGS) -> dict[SegmentWindow, WindowPartial]:
    """Group scored rows (dicts with model, app, event_time, request_id, scores) by window;
    ``flags``: the thresholds that count a score as flagged (the registry's by default)."""
    names = tuple(metric_names)
    out: dict[SegmentWindow, WindowPartial] = {}
    values: dict[tuple[SegmentWindow, str], list[float]] = {}
    for row in rows:
        key = (row["model"], row["app"], window_start(row["event_time"]))
        part = out.get(key)
        if part is None:
            part = out[key] = WindowPartial()
        part.requests += 1
        if len(part.examples) < MAX_EXAMPLES:
            part.examples.append(row["request_id"])
        for name in names:
            value = row.get(name)
            if value is not None:
                bucket = values.get((key, name))
                if bucket is None:
                    values[(key, name)] = [value]
                else:
                    bucket.append(value)
    for (key, name), vals in values.items():
        metric = out[key].metrics[name] = MetricPartial()
        metric.add_all(name, vals, flags)
    return out
