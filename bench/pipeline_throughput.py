"""Benchmark: Kafka -> Spark -> PostgreSQL (+ llm.scores.v1) for the model-free metrics.

Prints, on one fresh local stack:
  1. the raw consume rate of the same events (kafka-python, and Spark's Kafka source in batch);
  2. sustained pipeline throughput on a pre-loaded backlog (events/s, from the sinks' batch log);
  3. end-to-end latency (produce -> row in PostgreSQL), p50/p95/p99, under a paced live load.

Usage: .venv/bin/python bench/pipeline_throughput.py [--events 60000] [--batch 50000] [--rate 1000]
       [--seconds 30]
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from kafka import KafkaConsumer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parrotwatch.settings import MODEL_FREE_BATCH_EVENTS, Settings  # noqa: E402
from parrotwatch.stack.kafka import produce  # noqa: E402
from parrotwatch.stack.local import REPO_ROOT, LocalStack, settings_env  # noqa: E402
from parrotwatch.stack.processes import ManagedProcess, stack_ports  # noqa: E402
from parrotwatch.traffic import generate_inference_events, keyed  # noqa: E402


def raw_consume_rate(settings: Settings, n: int) -> float:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000,
                             fetch_max_bytes=64 * 1024 * 1024)
    topic = settings.topic("llm.inference.v1")
    consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
    start, seen = time.perf_counter(), 0
    for _ in consumer:
        seen += 1
        if seen >= n:
            break
    elapsed = time.perf_counter() - start
    consumer.close()
    return seen / elapsed


def spark_read_rate(settings: Settings, n: int) -> float:
    from parrotwatch.streaming.session import build_session

    spark = build_session(settings, app_name="bench-raw-read")
    df = (spark.read.format("kafka").option("kafka.bootstrap.servers", settings.bootstrap)
          .option("subscribe", settings.topic("llm.inference.v1")).load())
    df.selectExpr("length(value) AS l").agg({"l": "sum"}).collect()  # warm-up
    start = time.perf_counter()
    count = df.selectExpr("length(value) AS l").agg({"l": "sum", "*": "count"}).collect()
    elapsed = time.perf_counter() - start
    spark.stop()
    assert count, "no rows"
    return n / elapsed


def cpu_by_role(broker_pid: int, job_pid: int) -> dict[str, float]:
    """CPU seconds so far of each part: the broker, the Spark JVM, the driver, the workers."""
    import psutil

    out = {"kafka broker (JVM)": 0.0, "spark (JVM)": 0.0, "python driver (sinks)": 0.0,
           "python workers (parse+score)": 0.0}

    def secs(p: psutil.Process) -> float:
        t = p.cpu_times()
        return t.user + t.system

    out["kafka broker (JVM)"] = secs(psutil.Process(broker_pid))
    job = psutil.Process(job_pid)
    out["python driver (sinks)"] = secs(job)
    for child in job.children(recursive=True):
        try:
            name = " ".join(child.cmdline()[:3])
            key = "spark (JVM)" if "java" in name else "python workers (parse+score)"
            out[key] += secs(child)
        except psutil.NoSuchProcess:
            pass
    return out


def batch_progress(job_log: Path) -> list[tuple[int, float]]:
    """(rows, seconds) of each inference micro-batch that moved data, from the job's progress lines
    (``parrotwatch.streaming.job.log_progress``: Spark's own durationMs.triggerExecution, the whole batch)."""
    out = []
    for line in job_log.read_text().splitlines():
        match = re.search(r"query inference batch \d+: (\d+) rows, .*triggerExecution=(\d+)", line)
        if match:
            out.append((int(match[1]), int(match[2]) / 1000))
    return out


def wait_rows(url: str, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while conn.execute("SELECT count(*) FROM inference_scores").fetchone()[0] < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {n} rows after {timeout}s")
            time.sleep(0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=60_000, help="backlog size for throughput")
    ap.add_argument("--rate", type=float, default=1000.0, help="live load for latency, events/s")
    ap.add_argument("--seconds", type=float, default=30.0, help="duration of the live load")
    ap.add_argument("--batch", type=int, default=MODEL_FREE_BATCH_EVENTS,
                    help="events per micro-batch at most (maxOffsetsPerTrigger; default: the job's "
                    "model-free cap)")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="pw-bench-"))
    settings = Settings(home=home, **stack_ports(), max_offsets_per_trigger=args.batch, trigger_seconds=0.5,
                        quality_detectors=[])  # the model-free metrics of issue 2
    stack = LocalStack(settings, say=lambda m: print(m, file=sys.stderr))
    stack.up(stream=False, api=False)
    try:
        events = generate_inference_events(args.events, seed=1, id_prefix="bench")
        payloads = keyed(events)
        logprob_share = sum(1 for e in events if e.get("logprobs")) / len(events)
        mean_bytes = sum(len(v) for _, v in payloads) / len(payloads)
        print(f"machine: {platform.processor() or platform.machine()}, "
              f"{__import__('os').cpu_count()} cores, python {platform.python_version()}")
        print(f"events: {args.events}, mean {mean_bytes:.0f} bytes, "
              f"{logprob_share:.0%} with token logprobs")
        t = produce(settings.bootstrap, settings.topic("llm.inference.v1"), payloads)
        print(f"produce (kafka-python, acks=all): {args.events / t:,.0f} events/s")
        print(f"raw consume, kafka-python:        {raw_consume_rate(settings, args.events):,.0f} events/s")
        print(f"raw read, Spark Kafka source:     {spark_read_rate(settings, args.events):,.0f} events/s")

        job = ManagedProcess("bench-stream", settings.run_dir, settings.logs_dir / "bench-stream.log")
        job.start([sys.executable, "-m", "parrotwatch.streaming.job"], env=settings_env(settings),
                  cwd=REPO_ROOT)
        url = settings_env(settings)["PARROTWATCH_DATABASE_URL"]
        try:
            wait_rows(url, 1, timeout=300)  # started and warm enough to store a row
            before = cpu_by_role(stack.broker.process.pid(), job.pid())
            with psycopg.connect(url, autocommit=True) as conn:
                stored_before = conn.execute("SELECT count(*) FROM inference_scores").fetchone()[0]
            wait_rows(url, args.events, timeout=900)
            after = cpu_by_role(stack.broker.process.pid(), job.pid())
            deadline = time.monotonic() + 60  # the job logs a batch's progress once it committed
            while sum(b[0] for b in batch_progress(settings.logs_dir / "bench-stream.log")) < args.events:
                if time.monotonic() > deadline:
                    raise TimeoutError("the job did not log the progress of every backlog batch")
                time.sleep(0.5)
            batches = batch_progress(settings.logs_dir / "bench-stream.log")
            print(f"first micro-batch ({batches[0][0]:,} events, Python workers start): "
                  f"{batches[0][1]:.1f} s")
            if len(batches) > 1:
                rows, span = sum(b[0] for b in batches[1:]), sum(b[1] for b in batches[1:])
                print(f"pipeline throughput, warm ({len(batches) - 1} micro-batches after the first; "
                      f"Spark's triggerExecution: read, score, PostgreSQL, Kafka, commit): "
                      f"{rows / span:,.0f} events/s over {span:.1f}s")
            total = sum(after[k] - before[k] for k in after)
            profiled = args.events - stored_before
            print(f"CPU profile of the backlog after the first batch ({profiled} events, "
                  f"{total:.1f} CPU-s, {1e6 * total / profiled:.0f} CPU-us per event):")
            for role in after:
                used = after[role] - before[role]
                print(f"  {role:30} {used:7.1f} CPU-s  {used / total:5.1%}")

            live = generate_inference_events(int(args.rate * args.seconds), seed=2,
                                             id_prefix="live")
            t = produce(settings.bootstrap, settings.topic("llm.inference.v1"), keyed(live),
                        rate=args.rate)
            print(f"live load: {len(live)} events at {len(live) / t:,.0f} events/s")
            wait_rows(url, args.events + len(live), timeout=300)
            with psycopg.connect(url, autocommit=True) as conn:
                p50, p95, p99, mx = conn.execute(
                    "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99, 1.0]) WITHIN GROUP (ORDER BY "
                    "extract(epoch FROM stored_at - kafka_timestamp)) FROM inference_scores "
                    "WHERE request_id LIKE 'live-%'").fetchone()[0]
            print(f"end-to-end latency at {args.rate:,.0f} events/s (produce -> PostgreSQL row): "
                  f"p50 {p50:.2f}s  p95 {p95:.2f}s  p99 {p99:.2f}s  max {mx:.2f}s")
        finally:
            job.stop()
    finally:
        stack.down()


if __name__ == "__main__":
    main()
