"""Benchmark: the reference incident hour with every detector on, and its clean control, on the real stack.

The traffic of ``parrotwatch demo`` (:func:`parrotwatch.scenario.scenario_traffic` with ``quality=True``):
60 simulated minutes over 9 model/app segments at 6 requests/s of event time, with the eight incidents
of :data:`~parrotwatch.scenario.INCIDENTS` and :data:`~parrotwatch.scenario.QUALITY_INCIDENTS` (latency
spike, repetition loop, low confidence, throughput drop, toxicity burst, hallucination spike, prompt
drift, regurgitation). Then the same hour without incidents (the clean control). Each run gets its own
topics and database on one local stack (Kafka, PostgreSQL, the Spark job with the toxicity,
hallucination and drift detectors and the regurgitation index, the shipped default rules).

Printed: per incident, the firing and resolved alerts and the detection delay in 1-minute windows
(goal: exactly one firing alert within 2 windows, a resolved one after the end); every alert without
an incident; for the control, its alerts and the false alerts per simulated day of clean traffic
(alerts x 24 / hours; one clean hour bounds the rate only coarsely: see bench/alert_false_positives.py
for simulated days of the per-request rules).

Usage: .venv/bin/python bench/quality_alert_replay.py [--minutes 60] [--precision int8]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parrotwatch.scenario import INCIDENTS, QUALITY_INCIDENTS, build_corpus_index, scenario_traffic  # noqa: E402
from parrotwatch.settings import Settings  # noqa: E402
from parrotwatch.stack.kafka import create_topics, produce  # noqa: E402
from parrotwatch.stack.local import REPO_ROOT, LocalStack, settings_env  # noqa: E402
from parrotwatch.stack.processes import ManagedProcess, stack_ports  # noqa: E402
from parrotwatch.traffic import keyed  # noqa: E402

# event time in the past: the stream never lets its watermark pass the wall clock (a clock-skewed producer
# must not close windows early), so traffic stamped in the future would leave every window open
T0 = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
DETECTORS = ["toxicity", "hallucination", "drift"]


def replay(stack: LocalStack, base: Settings, name: str, events: list[dict], minutes: int) -> list[dict]:
    """Play ``events`` through a fresh namespace; the alert events once every window is evaluated."""
    url = stack.postgres.fresh_database(name)
    settings = base.model_copy(update={"topic_prefix": f"{name}.", "database_url": url})
    create_topics(settings.bootstrap, settings.topic_prefix)
    produce(settings.bootstrap, settings.topic("llm.inference.v1"), keyed(events))
    job = ManagedProcess(f"replay-{name}", settings.run_dir, settings.logs_dir / f"replay-{name}.log")
    job.start([sys.executable, "-m", "parrotwatch.streaming.job"], env=settings_env(settings), cwd=REPO_ROOT)
    started, last_window = time.monotonic(), T0 + timedelta(minutes=minutes - 2)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                stored = conn.execute("SELECT count(*) FROM inference_scores").fetchone()[0]
                until = conn.execute("SELECT max(evaluated_until) FROM stream_watermarks").fetchone()[0]
                if stored >= len(events) and until is not None and until >= last_window:
                    break
                if not job.alive():
                    raise RuntimeError(f"the stream job died: see {job.log_path}")
                if time.monotonic() - started > 3 * 3600:
                    raise TimeoutError(f"{name}: {stored}/{len(events)} after 3 h")
                print(f"\r{name}: {stored:,}/{len(events):,} scored, windows evaluated until "
                      f"{until:%H:%M}" if until else f"\r{name}: {stored:,}/{len(events):,} scored",
                      end="", file=sys.stderr, flush=True)
                time.sleep(5)
            alerts = [r[0] for r in conn.execute("SELECT event FROM alerts ORDER BY id").fetchall()]
    finally:
        job.stop()
    print(f"\n{name}: {len(events):,} events in {time.monotonic() - started:,.0f} s of wall clock",
          file=sys.stderr)
    return alerts


def report_incidents(alerts: list[dict]) -> int:
    """Print each incident's alerts; the number of incidents that miss the goal."""
    placed = {**INCIDENTS, **QUALITY_INCIDENTS}
    misses = 0
    print(f"\n{'incident (rule, model, app)':<58}{'start':>6}{'end':>5}{'firing':>7}{'resolved':>9}"
          f"{'delay':>7}  resolved at")
    for (rule, model, app), (first, end) in sorted(placed.items(), key=lambda kv: kv[1]):
        mine = [a for a in alerts
                if (a["rule"], a["labels"]["model"], a["labels"]["app"]) == (rule, model, app)]
        firing = [a for a in mine if a["status"] == "firing"]
        resolved = [a for a in mine if a["status"] == "resolved"]
        delay = ((datetime.fromisoformat(firing[0]["starts_at"]) - (T0 + timedelta(minutes=first)))
                 .total_seconds() / 60 if firing else None)
        ends = datetime.fromisoformat(resolved[0]["ends_at"]) if resolved else None
        ok = (len(firing) == 1 and len(resolved) == 1 and delay is not None and 0 <= delay <= 2
              and ends is not None and ends >= T0 + timedelta(minutes=end - 1))
        misses += not ok
        label = f"{rule}, {model}, {app}"
        print(f"{label:<58}{first:>6}{end:>5}{len(firing):>7}{len(resolved):>9}"
              f"{'-' if delay is None else f'{delay:.0f}':>7}  {f'{ends:%H:%M}' if ends else '-'}")
    extra = [a for a in alerts if (a["rule"], a["labels"]["model"], a["labels"]["app"]) not in placed]
    print(f"alerts without an incident: {len(extra)}")
    for a in extra:
        print(f"  {a['status']:<9}{a['rule']:<22}{a['labels']['model']}/{a['labels']['app']} at "
              f"{a['starts_at']}: {a.get('summary', '')}")
    return misses + len(extra)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=int, default=60, help="simulated minutes per run (>= 56: the "
                    "incidents end by minute 52)")
    ap.add_argument("--precision", choices=["fp32", "int8"], default="int8",
                    help="encoder precision on the CPU (int8 is ~2x faster)")
    ap.add_argument("--skip-clean", action="store_true", help="only the run with incidents")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}; "
          f"detectors {DETECTORS} + regurgitation index, encoder {args.precision}")

    home = Path(tempfile.mkdtemp(prefix="pw-bench-replay-"))
    base = Settings(home=home, **stack_ports(), trigger_seconds=1.0,
                    max_offsets_per_trigger=2000, quality_detectors=DETECTORS,
                    encoder_precision=args.precision, regurgitation_index=home / "corpus.npz")
    build_corpus_index(home / "corpus.npz")
    stack = LocalStack(base, say=lambda m: print(m, file=sys.stderr))
    stack.up(stream=False, api=False)
    try:
        events = scenario_traffic(T0, minutes=args.minutes, quality=True, id_prefix="inc")
        alerts = replay(stack, base, "incidents", events, args.minutes)
        misses = report_incidents(alerts)
        print(f"incident run: {len(events):,} events, {len(alerts)} alert events; "
              f"{'all incidents as required' if not misses else f'{misses} problem(s)'}")
        if not args.skip_clean:
            clean = scenario_traffic(T0, minutes=args.minutes, quality=True, with_incidents=False,
                                     id_prefix="clean")
            clean_alerts = replay(stack, base, "clean", clean, args.minutes)
            firing = [a for a in clean_alerts if a["status"] == "firing"]
            for a in firing:
                print(f"  clean run fired {a['rule']} on {a['labels']['model']}/{a['labels']['app']} at "
                      f"{a['starts_at']}: {a.get('summary', '')}")
            segment_hours = 9 * args.minutes / 60
            print(f"clean control: {len(clean):,} events, {len(firing)} firing alert(s) in {args.minutes} "
                  f"simulated minutes over 9 segments = {len(firing) * 24 * 60 / args.minutes:.1f} false "
                  f"alerts per simulated day of the whole service ({segment_hours:.0f} segment-hours)")
    finally:
        stack.down()


if __name__ == "__main__":
    main()
