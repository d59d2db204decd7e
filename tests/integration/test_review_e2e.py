"""Human review end to end on the real stack: traffic through Kafka and the Spark stream (with the
toxicity detector), the review sample of the period, labels through the API by two simulated
reviewers of known noise and through the review page in headless Chromium by a third, the
calibration job, its stored record, the Calibration dashboard's SQL as Grafana's reader role, and
an applied threshold that the stream then flags with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from pydantic import SecretStr

from parrotwatch.dashboards.calibration import CALIBRATION
from parrotwatch.dashboards.macros import TimeRange, auto_interval, render
from parrotwatch.db import provision_reader, reader_conninfo
from parrotwatch.review.applied import apply_record
from parrotwatch.review.calibration import calibrate_all
from parrotwatch.review.sample import sample_period
from parrotwatch.review.simulated import SimulatedReviewer, review_queue
from parrotwatch.scenario import quality_scenario_traffic, scenario_truth
from parrotwatch.traffic import generate_feedback_events
from tests.integration.chromium import browser, chromium_fixture  # noqa: F401 (the chromium fixture)
from tests.integration.conftest import wait_for
from tests.integration.test_api_live import start_api

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

KEYS = {name: f"{name}-e2e-review-key" for name in ("alice", "bob", "carol")}  # 16+ characters
MINUTES = 22  # the quality scenario up to the end of its toxicity burst (minutes 15-21)
NOISE = 0.03  # share of yes/no answers each simulated reviewer gets wrong


def _scored(namespace, ids: list[str]) -> int:
    return namespace.scalar("SELECT count(*) FROM inference_scores WHERE request_id = ANY(%s)", ids)


def _label_one_in_the_page(chromium: str, url: str) -> int:
    """carol labels the first item of her queue on the review page: keyboard only."""
    with browser(chromium) as open_page:
        page = open_page(f"{url}/review")
        page.wait("!document.getElementById('key-form').hidden", "the key form")
        page.js("document.getElementById('key').focus()")
        page.call("Input.insertText", text=KEYS["carol"])
        page.press("Enter")
        page.wait("!document.getElementById('item').hidden", "an item")
        item = int(page.js("document.getElementById('meta').textContent").split()[1])
        page.js("document.activeElement.blur()")
        for key, shift in (("T", True), ("H", True), ("O", True), ("4", False)):
            page.press(key, shift=shift)  # toxic, hallucinated, off topic: no; helpful: 4
        page.press("Enter")
        page.wait(f"!document.getElementById('meta').textContent.includes('item {item} ') || "
                  "!document.getElementById('empty').hidden", "the label to be taken")
        assert [p for p in page.problems] == []
    return item


def test_traffic_to_labels_to_calibration_records_to_dashboard(namespace, stream_job, chromium):
    settings = namespace.settings.model_copy(update={
        "quality_detectors": ["toxicity"], "review_pool_rate": 0.2, "review_budget": 60,
        "review_double_share": 0.3, "calibration_apply_thresholds": True,
        "reviewer_keys": {k: SecretStr(v) for k, v in KEYS.items()}})
    job = stream_job(**{k: getattr(settings, k) for k in (
        "quality_detectors", "review_pool_rate", "calibration_apply_thresholds")}).start()
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    events = quality_scenario_traffic(start, minutes=MINUTES, seed=5, id_prefix="e2e")
    truth = scenario_truth(events, start)
    ids = [e["request_id"] for e in events]
    namespace.produce_events(events)
    wait_for(lambda: _scored(namespace, ids) == len(ids), timeout=600,
             what=f"{len(ids)} events scored", job=job)
    pooled = namespace.scalar("SELECT count(*) FROM review_texts")
    assert 0.15 * len(ids) < pooled < 0.5 * len(ids)  # 20% base, more near and over thresholds
    feedback = generate_feedback_events(events, share=0.3, seed=5)  # a few carry corrections
    namespace.produce_events(feedback, topic="llm.feedback.v1")
    wait_for(lambda: namespace.scalar("SELECT count(*) FROM feedback") == len(feedback),
             timeout=120, what=f"{len(feedback)} feedback events stored", job=job)

    # the review sample of the period: within the budget, pi = p1 * k / m, the rest deleted
    end = start + timedelta(minutes=MINUTES)
    run = sample_period(namespace.database_url, settings, start, end, seed=3)
    assert 0 < run.drawn <= 60 * len(run.outcomes)
    for o in run.outcomes:
        assert o.drawn == min(60, o.pool)
    assert namespace.scalar("SELECT count(*) FROM review_items i JOIN review_texts t USING "
                            "(request_id) JOIN review_samples s ON s.id = i.sample_id WHERE abs("
                            "i.inclusion_probability - t.pool_probability * s.drawn::float8 / "
                            "s.pool) > 1e-9") == 0
    assert namespace.scalar("SELECT count(*) FROM review_texts") == run.drawn

    # labels: one through the page in Chromium, the rest through the API by simulated reviewers
    proc, url = start_api(settings)
    try:
        item = _label_one_in_the_page(chromium, url)
        assert namespace.sql("SELECT reviewer, labels->>'helpful' FROM review_labels "
                             "WHERE item_id = %s", item) == [("carol", "4")]
        given = sum(review_queue(url, SimulatedReviewer(name, KEYS[name], noise), truth, seed=9)
                    for name, noise in (("alice", NOISE), ("bob", NOISE)))
    finally:
        proc.stop()
    labels = namespace.scalar("SELECT count(*) FROM review_labels")
    assert labels == given + 1
    assert namespace.scalar("SELECT count(*) FROM review_items i WHERE (SELECT count(*) FROM "
                            "review_labels l WHERE l.item_id = i.item_id) < i.reviewers_needed") == 0

    # calibration: a stored record of toxicity over every segment, against the truth it knows
    calibrated = calibrate_all(namespace.database_url, settings, start=start, end=end, publish=False)
    overall = [r.columns for r in calibrated.records
               if (r.columns["detector"], r.columns["model"], r.columns["app"]) == ("toxicity", "*", "*")]
    assert len(overall) == 1, calibrated.skipped
    record = overall[0]
    assert record["labelled"] == run.drawn and record["doubly_labelled"] > 0
    true_rate = sum(t["toxic"] for t in truth.values()) / len(truth)
    # one deterministic run, not a coverage study (that is tests/unit/detectors/calibration/):
    # the corrected rate lands near the truth, the record says what it corrected for
    assert abs(record["corrected_rate"] - true_rate) < 0.05, (record, true_rate)
    assert record["details"]["corrected_for"] == "detector and reviewer error"
    # against reviewers who err 3% of the time on a ~2% rate, a good detector's AUC is diluted
    # (as many wrong "toxic" labels as right ones), yet well above chance
    assert record["auc"] > 0.65, record
    assert namespace.scalar("SELECT count(*) FROM calibration_records WHERE detector = 'toxicity'"
                            " AND model = '*' AND app = '*'") == 1

    if record["suggested_threshold"] is None:
        pytest.fail(f"no suggested threshold to apply: {record}")
    with psycopg.connect(namespace.database_url, autocommit=True) as conn:
        applied, _ = apply_record(conn, record["version"], "e2e")

    # the Calibration dashboard's panels, as Grafana's read-only role, return rows
    provision_reader(namespace.database_url, "e2e-reader")
    reader = reader_conninfo(namespace.database_url, "e2e-reader")
    tr = TimeRange(start, datetime.now(UTC) + timedelta(minutes=1))
    with psycopg.connect(reader, autocommit=True) as conn:
        values, multi = {}, {v.name: v.multi for v in CALIBRATION.variables}
        for v in CALIBRATION.variables:
            if v.kind == "query":
                values[v.name] = [r[0] for r in conn.execute(
                    render(v.query, tr, auto_interval(tr), values, multi)).fetchall()]
            else:
                values[v.name] = v.default
        empty = []
        for panel in CALIBRATION.panels():
            for q in panel.queries:
                sql = render(q.sql, tr, auto_interval(tr, min_interval=panel.min_interval),
                             values, multi)
                if not conn.execute(sql).fetchall():
                    empty.append(panel.title)
    assert empty == []

    # an applied threshold is what the stream flags with from the next micro-batch on
    later = quality_scenario_traffic(end, minutes=2, seed=6, id_prefix="e2e-after")
    namespace.produce_events(later)
    later_ids = [e["request_id"] for e in later]
    wait_for(lambda: _scored(namespace, later_ids) == len(later), timeout=300,
             what="the events after the apply", job=job)
    counted = namespace.scalar(
        "SELECT sum(flagged) FROM window_metrics WHERE metric = 'toxicity' AND window_start >= %s",
        end)
    expected = namespace.scalar("SELECT count(*) FROM inference_scores WHERE request_id = ANY(%s) "
                                "AND toxicity > %s", later_ids, applied.threshold)
    assert counted == expected
