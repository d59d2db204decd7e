"""``parrotwatch demo``: the main job on the embedded default, end to end."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from tqdm import tqdm

from parrotwatch.report import format_number
from parrotwatch.scenario import (
    INCIDENTS,
    QUALITY_INCIDENTS,
    build_corpus_index,
    scenario_traffic,
    scenario_truth,
)
from parrotwatch.settings import FEEDBACK_TOPIC, INFERENCE_TOPIC, Settings
from parrotwatch.stack.kafka import produce
from parrotwatch.stack.local import LocalStack
from parrotwatch.stack.urls import database_url, redact_url
from parrotwatch.traffic import generate_feedback_events, keyed, malformed_records

SUMMARY_SQL = """
SELECT model, count(*) AS n,
       avg(surprisal_mean) AS surprisal, avg(entropy_mean) AS entropy,
       avg(repetition_rate) AS repetition, avg(compression_ratio) AS compression,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_latency_ms,
       avg(tokens_per_s) AS tokens_per_s, avg(toxicity) AS toxicity,
       avg(hallucination) AS hallucination
FROM inference_scores WHERE request_id LIKE %s GROUP BY model ORDER BY model
"""


@dataclass
class Played:
    events: int
    feedback: int
    malformed: int
    first: datetime  # event time of the first request
    last: datetime  # and of the last one
    truth: dict[str, dict[str, bool]]  # what a careful reviewer answers, by request id


def play(settings: Settings, run_id: str, minutes: int, malformed: int, seed: int,
         say: Callable[[str], None]) -> Played:
    """Send the traffic: half through the HTTP API, half straight to Kafka."""
    start = (datetime.now(UTC) - timedelta(minutes=minutes)).replace(second=0, microsecond=0)
    inference = scenario_traffic(start, minutes=minutes, seed=seed, id_prefix=run_id,
                                 quality=bool(settings.quality_detectors))
    feedback = generate_feedback_events(inference, share=0.1, seed=seed)
    bad = malformed_records(malformed, seed=seed, max_event_bytes=settings.max_event_bytes)

    half = len(inference) // 2
    headers = {"X-API-Key": settings.api_keys[0].get_secret_value()}
    with httpx.Client(base_url=settings.api_url, headers=headers, timeout=30) as api:
        for i in tqdm(range(0, half, 100), desc="POST /v1/inference", unit="batch"):
            api.post("/v1/inference", json=inference[i:i + 100]).raise_for_status()
        for i in range(0, len(feedback), 100):
            api.post("/v1/feedback", json=feedback[i:i + 100]).raise_for_status()
    topic = settings.topic(INFERENCE_TOPIC)
    produce(settings.bootstrap, topic,
            tqdm(keyed(inference[half:]), desc="produce to Kafka", unit="event"))
    produce(settings.bootstrap, topic, [(None, payload) for payload, _kind in bad])
    say(f"played {len(inference)} inference events ({half} via the API), {len(feedback)} feedback "
        f"events via the API, {len(bad)} malformed records to {topic} "
        f"(feedback topic {settings.topic(FEEDBACK_TOPIC)})")
    last = max(datetime.fromisoformat(e["timestamp"]) for e in inference)
    truth = scenario_truth(inference, start) if settings.quality_detectors else {}
    return Played(len(inference), len(feedback), len(bad), start, last, truth)


def last_closed_window_end(last_event: datetime, delay_seconds: float) -> datetime:
    """Where the stream's rule evaluation stops once no more traffic comes: the end of the last window
    the watermark (each partition's largest event time, the least of them, - delay) has closed, with
    5 s to spare for partitions whose last event came a little earlier. The window holding the last
    events stays open until newer events arrive (docs/streaming.md, known limitations)."""
    return (last_event - timedelta(seconds=delay_seconds + 5)).replace(second=0, microsecond=0)


FIRST_ROWS_SQL = """
SELECT request_id, model, app, surprisal_mean, toxicity, hallucination, latency_ms
FROM inference_scores WHERE request_id LIKE %s ORDER BY stored_at, request_id LIMIT 3
"""
NEW_ALERTS_SQL = """
SELECT id, status, rule, model, app, starts_at, summary FROM alerts
WHERE id > %s AND starts_at >= %s ORDER BY id
"""


def _cell(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


class LiveFeed:
    """What the demo prints while the stream works: the first scored requests, once, and every
    alert transition as the rules raise or resolve it, above the progress bar."""

    def __init__(self, conn, run_id: str, since: datetime, t0: float, write: Callable[[str], None]):
        self.conn, self.run_id, self.since, self.t0, self.write = conn, run_id, since, t0, write
        self.shown_first = False
        self.first_scored_s: float | None = None  # seconds into the demo
        self.first_alert_s: float | None = None
        self.last_alert = conn.execute("SELECT coalesce(max(id), 0) FROM alerts").fetchone()[0]

    def poll(self, scored: int) -> None:
        if scored and not self.shown_first:
            self.shown_first = True
            self.first_scored_s = time.monotonic() - self.t0
            self.write(f"first scored requests, {self.first_scored_s:.0f} s into the demo "
                       "(surprisal nats/token, toxicity, hallucination, latency ms):")
            for rid, model, app, surprisal, tox, hal, lat in self.conn.execute(
                    FIRST_ROWS_SQL, (f"{self.run_id}%",)):
                self.write(f"  {rid:34} {model}/{app:14} {_cell(surprisal, '.2f'):>6} "
                           f"{_cell(tox, '.3f'):>6} {_cell(hal, '.3f'):>6} {_cell(lat, '.0f'):>6}")
        for aid, status, rule, model, app, starts, summary in self.conn.execute(
                NEW_ALERTS_SQL, (self.last_alert, self.since)).fetchall():
            self.last_alert = aid
            elapsed = time.monotonic() - self.t0
            if self.first_alert_s is None:
                self.first_alert_s = elapsed
            self.write(f"[{elapsed:4.0f} s] alert {status:9} {rule:18} {model}/{app} from "
                       f"{starts:%H:%M}: {summary}")


def wait_scored(url: str, run_id: str, expected: int, timeout: float, since: datetime,
                t0: float) -> LiveFeed:
    """Until ``expected`` events of the run are scored, printing the live feed meanwhile; the feed
    (with its first-result times)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn, tqdm(total=expected, desc="scored",
                                                            unit="event") as bar:
        feed = LiveFeed(conn, run_id, since, t0, tqdm.write)
        while True:
            n = conn.execute("SELECT count(*) FROM inference_scores WHERE request_id LIKE %s",
                             (f"{run_id}%",)).fetchone()[0]
            bar.update(n - bar.n)
            feed.poll(n)
            if n >= expected:
                return feed
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {n} of {expected} events scored after {timeout:.0f}s; "
                                   "see `parrotwatch status` and the stream log")
            time.sleep(1)


def wait_evaluated(url: str, until: datetime, timeout: float) -> None:
    """Until the stream has evaluated the alert rules on the windows up to ``until``."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT evaluated_until FROM stream_watermarks "
                               "WHERE sink = 'inference'").fetchone()
            if row and row[0] and row[0] >= until:
                return
            time.sleep(1)
    raise TimeoutError(f"alert rules not evaluated up to {until:%H:%M} after {timeout:.0f}s")


def write_report(url: str, settings: Settings, run_id: str, minutes: int) -> str:
    """The HTML report of the run's time range (``parrotwatch report``), under PARROTWATCH_HOME."""
    from parrotwatch.dashboards.macros import TimeRange
    from parrotwatch.report import build_report

    end = datetime.now(UTC).replace(microsecond=0)
    path = settings.home / "reports" / f"{run_id}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(url, autocommit=True) as conn:
        page, _ = build_report(conn, TimeRange(end - timedelta(minutes=minutes + 5), end),
                               say=lambda m: None)
    path.write_text(page, encoding="utf-8")
    return str(path)


#: the demo's simulated reviewers and the share of yes/no answers each gets wrong (one rate for
#: both, on good and bad answers alike: what the reviewer-error correction assumes)
SIMULATED_NOISE = {"simulated-alice": 0.02, "simulated-bob": 0.02}


def review_round(settings: Settings, url: str, played: Played, seed: int,
                 say: Callable[[str], None]) -> int:
    """Human review of the run, simulated: draw the review set of the run's period, have two
    reviewers of known noise label it through the API (every item, and the second label of the
    items that need two), calibrate the detectors, print what came out. Returns the records."""
    from parrotwatch.review.calibration import calibrate_all
    from parrotwatch.review.sample import sample_period
    from parrotwatch.review.simulated import SimulatedReviewer, review_queue

    missing = [n for n in SIMULATED_NOISE if n not in settings.reviewer_keys]
    if missing:
        say(f"\nhuman review: skipped, PARROTWATCH_REVIEWER_KEYS has no key for the simulated "
            f"reviewers {missing} (unset it to let the local stack make them)")
        return 0
    period_end = played.last + timedelta(seconds=1)
    drawn = sample_period(url, settings, played.first, period_end, seed=seed).drawn
    labels = 0
    for name, noise in tqdm(SIMULATED_NOISE.items(), desc="simulated reviewers", unit="reviewer"):
        key = settings.reviewer_keys[name].get_secret_value()
        labels += review_queue(settings.api_url, SimulatedReviewer(name, key, noise),
                               played.truth, seed=seed)
    run = calibrate_all(url, settings, start=played.first, end=period_end)
    noise = max(SIMULATED_NOISE.values())
    say(f"\nhuman review (simulated): {drawn} items drawn for review, {labels} labels by "
        f"{len(SIMULATED_NOISE)} reviewers who each answer {noise:.0%} of yes/no labels wrongly; "
        "calibration records over every segment (rates: share of answers):")
    print(f"  {'detector':14}{'labels':>7}{'AUC':>7}{'kappa':>7}{'alpha':>7}{'flagged':>9}"
          f"{'corrected rate (95% CI)':>27}")
    for stored in run.records:
        c = stored.columns
        if (c["model"], c["app"]) != ("*", "*"):
            continue
        auc, kappa, alpha, raw, rate, low, high = (
            "-" if c.get(k) is None else format_number(c[k], digits=2)
            for k in ("auc", "kappa", "alpha", "raw_rate", "corrected_rate", "corrected_low",
                      "corrected_high"))
        print(f"  {c['detector']:14}{c['labelled']:>7}{auc:>7}{kappa:>7}{alpha:>7}{raw:>9}"
              f"{f'{rate} ({low}-{high})':>27}")
    print("  AUC and kappa are against the reviewers' labels, weighted to all traffic: where bad "
          "answers are rarer than\n  reviewer mistakes (toxic here: 0.3% of answers, reviewers "
          "wrong on 2%), most 'bad' labels are mistakes\n  and the agreement drops, while the "
          "corrected rate, which also removes the reviewers' error, stays near the truth.")
    return len(run.records)


def run_demo(settings: Settings, *, minutes: int, malformed: int, seed: int, timeout: float,
             say: Callable[[str], None] = print) -> dict:
    t0 = time.monotonic()
    if settings.quality_detectors and settings.regurgitation_index is None:
        # the regurgitation incident quotes the project's small training corpus: index it
        index = settings.home / "demo-training-corpus.npz"
        settings.home.mkdir(parents=True, exist_ok=True)
        build_corpus_index(index)
        settings = settings.model_copy(update={"regurgitation_index": index})
    stack = LocalStack(settings, say=say)
    stack.up()
    settings = stack.settings  # with the local stack's generated API key when none was set
    run_id = f"demo-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    url = database_url(settings)
    with psycopg.connect(url, autocommit=True) as conn:
        dlq_before = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    played = play(settings, run_id, minutes, malformed, seed, say)
    n_events, n_feedback, n_bad, last_event = played.events, played.feedback, played.malformed, played.last
    started = time.monotonic()
    feed = wait_scored(url, run_id, n_events, timeout, since=played.first - timedelta(minutes=5), t0=t0)
    all_scored_s = time.monotonic() - t0
    # not "now": with the model detectors, scoring the hour takes minutes past its last event
    wait_evaluated(url, last_closed_window_end(last_event, settings.watermark_delay_seconds),
                   timeout=120)
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + 60
        while (conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0] - dlq_before
               < n_bad and time.monotonic() < deadline):
            time.sleep(1)
        rows = conn.execute(SUMMARY_SQL, (f"{run_id}%",)).fetchall()
        reasons = conn.execute(
            "SELECT left(reason, 90) AS r, count(*) FROM dead_letters "
            "GROUP BY r ORDER BY count(*) DESC, r LIMIT 10").fetchall()
        worst = conn.execute(
            "(SELECT 'repetition_rate', request_id, model, repetition_rate FROM inference_scores "
            " WHERE request_id LIKE %s AND repetition_rate IS NOT NULL "
            " ORDER BY repetition_rate DESC LIMIT 3) UNION ALL "
            "(SELECT 'latency_ms', request_id, model, latency_ms FROM inference_scores "
            " WHERE request_id LIKE %s AND latency_ms IS NOT NULL ORDER BY latency_ms DESC LIMIT 3)"
            " UNION ALL "
            "(SELECT 'toxicity', request_id, model, toxicity FROM inference_scores "
            " WHERE request_id LIKE %s AND toxicity IS NOT NULL ORDER BY toxicity DESC LIMIT 3)",
            (f"{run_id}%", f"{run_id}%", f"{run_id}%")).fetchall()
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0] - dlq_before
        alerts = conn.execute(
            "SELECT status, rule, model, app, starts_at, ends_at, summary FROM alerts "
            "WHERE starts_at >= %s ORDER BY id", (datetime.now(UTC) - timedelta(minutes=minutes + 5),)
        ).fetchall()
        fb = conn.execute("SELECT count(*) FROM feedback f WHERE request_id LIKE %s",
                          (f"{run_id}%",)).fetchone()[0]
    say(f"\nscored {n_events} events in {time.monotonic() - started:.1f}s after the last send; "
        f"{dead} dead-lettered; {fb} of {n_feedback} feedback events stored\n")
    header = f"{'model':14}{'n':>6}{'surprisal':>11}{'entropy':>9}{'repetition':>12}" \
             f"{'compress':>10}{'p95 ms':>10}{'tok/s':>8}{'toxic':>8}{'halluc':>8}"
    print(header)
    for model, n, *vals in rows:
        specs = (">11.3f", ">9.3f", ">12.3f", ">10.2f", ">10.0f", ">8.1f", ">8.3f", ">8.3f")
        cells = "".join(format(v, spec) if v is not None else format("-", spec[:-2].rstrip("."))
                        for v, spec in zip(vals, specs, strict=True))
        print(f"{model:14}{n:>6}{cells}")
    print("\nthe worst requests:")
    for metric, request_id, model, value in worst:
        print(f"  {metric:16} {value:10.2f}  {model:12} {request_id}")
    injected = {**INCIDENTS, **(QUALITY_INCIDENTS if settings.quality_detectors else {})}
    print(f"\nalerts of this run (injected: {', '.join(f'{r} on {m}/{a}' for r, m, a in injected)}):")
    for status, rule, model, app, starts, ends, summary in alerts:
        span = f"{starts:%H:%M}-{ends:%H:%M}" if ends else f"{starts:%H:%M}-"
        print(f"  {status:9} {rule:18} {model}/{app:15} {span:12} {summary}")
    print("\ndead-letter reasons (all runs):")
    for reason, count in reasons:
        print(f"  {count:5}  {reason}")
    calibration = review_round(settings, url, played, seed, say) if played.truth else None
    report = write_report(url, settings, run_id, minutes)
    first_alert = f"{feed.first_alert_s:.0f} s" if feed.first_alert_s is not None else "none while waiting"
    first_row = f"{feed.first_scored_s:.0f} s" if feed.first_scored_s is not None else "-"
    print(f"\ntimings: first scored request {first_row} into the demo, first alert "
          f"{first_alert}, all {n_events} scored at {all_scored_s:.0f} s, summary at "
          f"{time.monotonic() - t0:.0f} s")
    print(f"""
report (every dashboard's panels, for people without Grafana): {report}
where to look next:
  parrotwatch status                 which parts run, and their logs under {settings.logs_dir}
  parrotwatch alerts list            alert transitions; `alerts test-rules FILE` dry-runs new rules
  psql {redact_url(url)}
      SELECT * FROM inference_scores WHERE request_id LIKE '{run_id}%' ORDER BY repetition_rate DESC LIMIT 5;
  topics: {settings.topic('llm.scores.v1')} (scores), {settings.topic('llm.dlq.v1')} (dead letters)
  API docs: {settings.api_url}/docs
  parrotwatch down                   stop the stack (data stays in {settings.home})""")
    return {"run_id": run_id, "events": n_events, "dead_letters": dead, "feedback": fb,
            "alerts": len(alerts), "calibration_records": calibration}
