"""Throughput of the OTLP bridge's per-record work and of the backfill's reading and scoring.

    .venv/bin/python bench/otlp_bridge.py [--records 2000] [--events 20000]

1. ``translate`` (decode an exporter record, map its spans, build events and dead letters) over the
   recorded openai-v2 payload (tests/unit/parrotwatch/contracts/otlp_fixtures/openai_v2.pb: 4 LLM
   spans and 1 other per record), in process: records/s and LLM spans/s. Kafka's own cost is not
   included (tests/integration/test_otlp_bridge.py runs the real broker).
2. The backfill's ``read_items`` + ``score_items`` (model-free) over generated v1 events written to a
   JSONL file: events/s before storage (storage is one PostgreSQL transaction per event-time hour).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import orjson

from parrotwatch.services.otlp_bridge.translate import translate
from parrotwatch.settings import Settings
from parrotwatch.streaming.backfill import read_items, score_items
from parrotwatch.traffic import generate_inference_events

FIXTURE = (Path(__file__).resolve().parents[1] / "tests" / "unit" / "parrotwatch" / "contracts"
           / "otlp_fixtures" / "openai_v2.pb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2000, help="exporter records to translate")
    parser.add_argument("--events", type=int, default=20000, help="generated events to backfill-score")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")

    body = FIXTURE.read_bytes()
    record = SimpleNamespace(topic="otlp_spans", partition=0, offset=0, timestamp=0, value=body)
    translate(record)  # warm-up
    t = time.perf_counter()
    spans = sum(len(translate(record).events) for _ in range(args.records))
    dt = time.perf_counter() - t
    print(f"translate: {args.records} records ({len(body):,} bytes each) in {dt:.2f} s: "
          f"{args.records / dt:,.0f} records/s, {spans / dt:,.0f} LLM spans/s")

    events = generate_inference_events(args.events, seed=5, rate_per_s=1.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.jsonl"
        path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
        settings = Settings(home=Path(tmp), quality_detectors=[])
        t = time.perf_counter()
        items = list(read_items([path], settings))
        rows, dead = score_items(items, settings, None)
        dt = time.perf_counter() - t
    print(f"backfill read + score (model-free): {len(rows)} events, {len(dead)} dead letters in "
          f"{dt:.2f} s: {len(rows) / dt:,.0f} events/s")


if __name__ == "__main__":
    main()
