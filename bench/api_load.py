"""Benchmark: the API sustaining batches of 100 events, beside the raw Kafka produce rate.

``--clients`` threads POST pre-serialised batches of 100 realistic events (``parrotwatch.traffic``,
unique request ids) to ``/v1/inference`` for ``--seconds``; every 202 means Kafka acknowledged
the batch (acks=all). Then kafka-python alone produces the same events (acks=all, idempotent,
one producer, pipelined) to a second topic. Printed side by side: events/s, request latency
p50/p99/max, errors, the API's CPU and peak RSS.

Usage: .venv/bin/python bench/api_load.py [--seconds 60] [--clients 4] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson
import psutil
from kafka import KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_common import Prober, api_under_test, machine, percentile  # noqa: E402

from parrotwatch.settings import INFERENCE_TOPIC  # noqa: E402
from parrotwatch.stack.kafka import create_topics  # noqa: E402
from parrotwatch.traffic import generate_inference_events  # noqa: E402

BATCH = 100


def make_batches(n_batches: int) -> list[tuple[list[bytes], bytes]]:
    """``(ids, body)`` per batch; the base events are reused under new request ids."""
    base = generate_inference_events(5_000, seed=8, id_prefix="load")
    batches = []
    for b in range(n_batches):
        events = [{**base[(b * BATCH + i) % len(base)], "request_id": f"load-{b:06d}-{i:03d}"}
                  for i in range(BATCH)]
        batches.append(([e["request_id"].encode() for e in events], orjson.dumps(events)))
    return batches


def api_phase(url: str, headers: dict, batches, seconds: float, clients: int) -> dict:
    lock, cursor = threading.Lock(), iter(range(len(batches)))
    latencies: list[float] = []
    sent: list[int] = []
    errors: dict[str, int] = {}
    deadline = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(base_url=url, headers={**headers, "Content-Type": "application/json"},
                          timeout=60) as http:
            while time.monotonic() < deadline:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                started = time.perf_counter()
                try:
                    status = http.post("/v1/inference", content=batches[index][1]).status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if status == 202:
                        sent.append(index)
                    else:
                        errors[str(status)] = errors.get(str(status), 0) + 1

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {"seconds": elapsed, "batches": sorted(sent), "latencies": latencies, "errors": errors}


def raw_produce(bootstrap: str, topic: str, batches, indexes: list[int]) -> float:
    """Seconds for kafka-python to produce the same events, acks=all, until all are acked."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                             linger_ms=0, max_request_size=2 * 1024 * 1024)
    records = []
    for index in indexes:
        ids, body = batches[index]
        records += [(key, orjson.dumps(event)) for key, event in
                    zip(ids, orjson.loads(body), strict=True)]
    started = time.perf_counter()
    for key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    ap.add_argument("--max-batches", type=int, default=3_000, help="batches prepared")
    ap.add_argument("--bootstrap", help="an existing broker (default: start one)")
    ap.add_argument("--prefix", default="load.", help="topic prefix")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    batches = make_batches(args.max_batches)
    mean = sum(len(body) for _, body in batches) / len(batches) / BATCH
    print(f"prepared {len(batches)} batches of {BATCH} events, {mean:,.0f} bytes/event")
    with api_under_test(args.bootstrap, args.prefix) as api:
        process = psutil.Process(api.process.pid())
        cpu_before = sum(process.cpu_times()[:2])
        with Prober(api, interval=0.1) as prober:
            result = api_phase(api.url, api.headers, batches, args.seconds, args.clients)
        cpu = sum(process.cpu_times()[:2]) - cpu_before
        raw_topic = f"{args.prefix}raw.{INFERENCE_TOPIC}"
        create_topics(api.settings.bootstrap, f"{args.prefix}raw.")
        raw_s = raw_produce(api.settings.bootstrap, raw_topic, batches, result["batches"])
    events = len(result["batches"]) * BATCH
    lat = result["latencies"]
    if len(result["batches"]) == len(batches):
        print("note: every prepared batch was sent before the time ran out; raise --max-batches")
    print(f"API, {args.clients} clients, {result['seconds']:.1f} s: {events:,} events acked, "
          f"{events / result['seconds']:,.0f} events/s ({len(lat) / result['seconds']:.1f} "
          f"requests/s), request p50 {percentile(lat, 0.5) * 1000:.0f} ms p99 "
          f"{percentile(lat, 0.99) * 1000:.0f} ms max {max(lat) * 1000:.0f} ms, errors "
          f"{sum(result['errors'].values())} {result['errors'] or ''}; API CPU "
          f"{cpu / result['seconds']:.0%} of a core, peak RSS {prober.peak_rss / 2**20:.0f} MB, "
          f"/healthz p99 {prober.p99_ms():.0f} ms")
    print(f"raw kafka-python produce (acks=all, idempotent, 1 producer), the same {events:,} "
          f"events: {raw_s:.1f} s, {events / raw_s:,.0f} events/s")


if __name__ == "__main__":
    main()
