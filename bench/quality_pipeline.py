"""Benchmark: the scoring stream with the model-based detectors on, against raw encoding.

On one fresh local stack, with the same events:
  1. raw sentence-transformers ``encode`` of exactly the texts the detectors embed for those
     events (recorded in-process first), fp32, and the same with dynamic int8 quantisation;
  2. the detectors in-process (``parrotwatch.quality.score_quality``, no Kafka/Spark);
  3. the stream Kafka -> Spark -> PostgreSQL with the default detectors (toxicity,
     hallucination, drift), warm micro-batches, fp32; then with ``--precision int8``.
The goal: the pipeline reaches >= 80 % of the raw encode rate (events/s), and the optimised CPU
path >= 2x the raw fp32 rate.

Usage: .venv/bin/python bench/quality_pipeline.py [--events 3000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parrotwatch.contracts import InferenceEventV1  # noqa: E402
from parrotwatch.detectors.models import encoder as encoder_module  # noqa: E402
from parrotwatch.detectors.models.encoder import EncoderSpec, resolve_model_path  # noqa: E402
from parrotwatch.quality import QualityConfig, score_quality  # noqa: E402
from parrotwatch.settings import Settings  # noqa: E402
from parrotwatch.stack.kafka import produce  # noqa: E402
from parrotwatch.stack.local import REPO_ROOT, LocalStack, settings_env  # noqa: E402
from parrotwatch.stack.processes import ManagedProcess, stack_ports  # noqa: E402
from parrotwatch.traffic import generate_inference_events, keyed  # noqa: E402

DETECTORS = ("toxicity", "hallucination", "drift")


def recorded_texts(events: list[InferenceEventV1], config: QualityConfig) -> tuple[list[str], float]:
    """Every text the detectors embed for ``events`` (in order), and the in-process event rate."""
    texts: list[str] = []
    original = encoder_module.Encoder.encode

    def recording(self, batch, batch_size=64):
        texts.extend(batch)
        return original(self, batch, batch_size)

    score_quality(events[:64], config)  # load the models
    encoder_module.Encoder.encode = recording
    try:
        start = time.perf_counter()
        for i in range(0, len(events), 512):
            score_quality(events[i:i + 512], config)
        elapsed = time.perf_counter() - start
    finally:
        encoder_module.Encoder.encode = original
    return texts, len(events) / elapsed


def raw_encode_seconds(texts: list[str], precision: str) -> float:
    """Plain sentence-transformers, outside the project's wrapper (int8: the same quantisation)."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(resolve_model_path(None)), device="cpu")
    model.max_seq_length = EncoderSpec().max_seq_length
    if precision == "int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    model.encode(texts[:128], batch_size=64)
    start = time.perf_counter()
    model.encode(texts, batch_size=64, normalize_embeddings=True)
    return time.perf_counter() - start


def stream_rate(settings: Settings, events: list[dict], precision: str) -> tuple[float, float]:
    """(warm events/s, events/s including the first batch) of the stream on ``events``."""
    topic = settings.topic("llm.inference.v1")
    produce(settings.bootstrap, topic, keyed(events))
    env = settings_env(settings.model_copy(update={"encoder_precision": precision}))
    job = ManagedProcess(f"bench-{precision}", settings.run_dir, settings.logs_dir / f"bench-{precision}.log")
    job.start([sys.executable, "-m", "parrotwatch.streaming.job"], env=env, cwd=REPO_ROOT)
    url = env["PARROTWATCH_DATABASE_URL"]
    try:
        deadline = time.monotonic() + 1800
        with psycopg.connect(url, autocommit=True) as conn:
            while conn.execute("SELECT count(*) FROM inference_scores").fetchone()[0] < len(events):
                if time.monotonic() > deadline:
                    raise TimeoutError("stream too slow")
                time.sleep(1)
            warm, rows, span = conn.execute(
                "SELECT sum(rows_in) FILTER (WHERE batch_id > 0) / "
                "(sum(duration_ms) FILTER (WHERE batch_id > 0) / 1000), sum(rows_in), "
                "extract(epoch FROM max(committed_at) - min(committed_at - duration_ms * "
                "interval '1 ms')) FROM sink_batches WHERE sink LIKE 'inference-%' AND rows_in > 0"
            ).fetchone()
    finally:
        job.stop()
    return float(warm or 0.0), float(rows) / float(span)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=3000, help="events per run")
    args = ap.parse_args()

    raw_events = generate_inference_events(args.events, seed=3, id_prefix="q")
    events = [InferenceEventV1.model_validate(e) for e in raw_events]
    config = QualityConfig(detectors=DETECTORS)
    texts, inproc = recorded_texts(events, config)
    per_event = len(texts) / len(events)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"events: {len(events)}; texts embedded per event: {per_event:.2f} "
          f"(mean {sum(map(len, texts)) / len(texts):.0f} chars)")
    rates = {}
    for precision in ("fp32", "int8"):
        seconds = raw_encode_seconds(texts, precision)
        rates[precision] = len(events) / seconds
        print(f"raw sentence-transformers encode, {precision}: {len(texts) / seconds:,.0f} texts/s "
              f"= {rates[precision]:,.0f} events/s")
    print(f"optimised CPU path (int8) / raw fp32: {rates['int8'] / rates['fp32']:.2f}x (goal >= 2x)")
    int8_inproc = recorded_texts(events, replace(config, encoder=EncoderSpec(precision="int8")))[1]
    print(f"detectors in-process (no Kafka/Spark): fp32 {inproc:,.0f} events/s, "
          f"int8 {int8_inproc:,.0f} events/s")

    home = Path(tempfile.mkdtemp(prefix="pw-bench-q-"))
    base = Settings(home=home, **stack_ports(), trigger_seconds=0.5,
                    max_offsets_per_trigger=1000, quality_detectors=list(DETECTORS))
    stack = LocalStack(base, say=lambda m: print(m, file=sys.stderr))
    stack.up(stream=False, api=False)
    try:
        for n, precision in enumerate(("fp32", "int8")):
            settings = base.model_copy(update={"topic_prefix": f"q{n}."})
            from parrotwatch.stack.kafka import create_topics

            create_topics(settings.bootstrap, settings.topic_prefix)
            with psycopg.connect(settings_env(settings)["PARROTWATCH_DATABASE_URL"],
                                 autocommit=True) as conn:
                conn.execute("TRUNCATE inference_scores, sink_batches, drift_reference, "
                             "drift_samples, request_drilldown")
            warm, overall = stream_rate(settings, raw_events, precision)
            print(f"pipeline Kafka -> Spark -> PostgreSQL, {precision}: warm {warm:,.0f} events/s "
                  f"({warm / rates[precision]:.0%} of raw {precision} encode; goal >= 80%), "
                  f"{overall:,.0f} events/s including the first batch")
    finally:
        stack.down()


if __name__ == "__main__":
    main()
