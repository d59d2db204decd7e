"""Benchmark: false alerts per simulated day of clean traffic, and detection delay per incident.

Runs the stream's own per-request and per-window code without the transport: traffic from
``parrotwatch.traffic`` -> ``parse_inference`` + ``score_event`` -> ``parrotwatch.streaming.windows.partials``
(DDSketch windows) -> ``parrotwatch.detectors.alerting.Evaluator`` with the shipped default rules.

Usage: .venv/bin/python bench/alert_false_positives.py [--days 1] [--rate 6]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parrotwatch.detectors.alerting import Evaluator, load_default_rules  # noqa: E402
from parrotwatch.detectors.alerting.evaluate import MetricStats, WindowAggregate  # noqa: E402
from parrotwatch.detectors.metrics import MODEL_FREE_SCORE_NAMES  # noqa: E402
from parrotwatch.scenario import INCIDENTS, scenario_traffic  # noqa: E402
from parrotwatch.scoring import parse_inference, score_event  # noqa: E402
from parrotwatch.streaming.windows import WINDOW, partials  # noqa: E402
from parrotwatch.traffic import encode  # noqa: E402


def windows_of(events: list[dict]) -> list[WindowAggregate]:
    rows = []
    for e in events:
        s = score_event(parse_inference(encode(e)))
        rows.append({"request_id": s.request_id, "model": s.model, "app": s.app,
                     "event_time": s.timestamp, **s.scores})
    parts = partials(rows, MODEL_FREE_SCORE_NAMES)
    segments = sorted({(m, a) for m, a, _ in parts})
    starts = sorted({s for _, _, s in parts})
    out = []
    for s in starts:
        for m, a in segments:
            p = parts.get((m, a, s))
            metrics = {name: MetricStats(mp.n, mp.total / mp.n, mp.quantile(0.5), mp.quantile(0.95),
                                         mp.quantile(0.99), mp.flagged)
                       for name, mp in (p.metrics.items() if p else [])}
            out.append(WindowAggregate(
                window_start=s, window_end=s + WINDOW, model=m, app=a, count=p.requests if p else 0,
                feedback_count=0, thumbs_down=0, metrics=metrics, examples=p.examples if p else []))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--days", type=float, default=1.0, help="simulated days of clean traffic")
    ap.add_argument("--rate", type=float, default=6.0, help="events/s over 9 segments")
    ap.add_argument("--seed-base", type=int, default=1000,
                    help="seeds of the clean hours are seed-base + hour (tune on one, report another)")
    args = ap.parse_args()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    evaluator = Evaluator(load_default_rules())
    hours = int(args.days * 24)
    alerts, t0 = [], time.perf_counter()
    for h in tqdm(range(hours), desc="clean hours", unit="h"):
        events = scenario_traffic(start + timedelta(hours=h), minutes=60, rate_per_s=args.rate,
                                  with_incidents=False, seed=args.seed_base + h, id_prefix=f"h{h}")
        alerts += [a for a in evaluator.evaluate(windows_of(events)) if a["status"] == "firing"]
    print(f"clean traffic: {hours} simulated hours, {hours * 3600 * args.rate:,.0f} requests, "
          f"{len(alerts)} false alerts = {len(alerts) / (hours / 24):.2f} per simulated day "
          f"({time.perf_counter() - t0:.0f}s)")
    for a in alerts:
        print(f"  {a['rule']} {a['labels']['model']}/{a['labels']['app']} at {a['starts_at']}")

    incident_start = start + timedelta(hours=hours)
    events = scenario_traffic(incident_start, minutes=60, rate_per_s=args.rate, seed=7,
                              id_prefix="incident")
    fired = [a for a in evaluator.evaluate(windows_of(events)) if a["status"] == "firing"]
    print("incident hour after the clean history:")
    for (rule, model, app), (first, _end) in INCIDENTS.items():
        hits = [a for a in fired if (a["rule"], a["labels"]["model"], a["labels"]["app"])
                == (rule, model, app)]
        if not hits:
            print(f"  {rule:18} {model}/{app}: NOT DETECTED")
            continue
        began = incident_start + timedelta(minutes=first)
        delay = (datetime.fromisoformat(hits[0]["starts_at"]) - began) / WINDOW
        print(f"  {rule:18} {model}/{app}: detected, delay {delay:.0f} window(s), "
              f"{len(hits)} firing message(s)")
    others = [a for a in fired if (a["rule"], a["labels"]["model"], a["labels"]["app"])
              not in INCIDENTS]
    print(f"  other alerts in the incident hour: {len(others)}")


if __name__ == "__main__":
    main()
