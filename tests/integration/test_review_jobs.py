"""The review jobs on real PostgreSQL: sampling from the stream's pool, purge, calibration records,
applied thresholds, calibration alerts, correction scores, and poison rows that must not crash them.
Rows are written with SQL, as the stream and the review API would store them."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import psycopg
import pytest
from psycopg.types.json import Jsonb

from parrotwatch.db import applied_thresholds, migrate
from parrotwatch.review.applied import ApplyError, apply_record, revoke
from parrotwatch.review.calibration import calibrate_all
from parrotwatch.review.sample import purge, sample_due, sample_period

pytestmark = pytest.mark.integration

DAY = timedelta(days=1)
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
CLOSED = TODAY - 2 * DAY  # a closed 24 h period


def _settings(namespace, **kw):
    return namespace.settings.model_copy(update={"review_budget": 20, "review_double_share": 0.2,
                                                 "review_period_hours": 24.0, **kw})


def _db(namespace) -> psycopg.Connection:
    migrate(namespace.database_url)
    return psycopg.connect(namespace.database_url, autocommit=True, options="-c TimeZone=UTC")


def _score(conn, rid, t, model="m1", app="a1", toxicity=0.1, hallucination=None):
    conn.execute("INSERT INTO inference_scores (request_id, event_time, model, app, toxicity, "
                 "hallucination, kafka_partition, kafka_offset, sink_batch) "
                 "VALUES (%s, %s, %s, %s, %s, %s, 0, 0, 'test')",
                 (rid, t, model, app, toxicity, hallucination))


def _text(conn, rid, t, p1, model="m1", app="a1", response="an answer", stored_at=None):
    conn.execute("INSERT INTO review_texts (request_id, event_time, model, app, pool_probability, "
                 "prompt, response, sink_batch, stored_at) VALUES (%s, %s, %s, %s, %s, 'a prompt', "
                 "%s, 'test', coalesce(%s, clock_timestamp()))",
                 (rid, t, model, app, p1, response, stored_at))


def _fill_period(conn, start, n_scored=200, n_pool=80, model="m1", app="a1", prefix="r"):
    """n_scored requests in the period, the first n_pool of them pooled (p1 0.5 or 0.05)."""
    p1 = {}
    for i in range(n_scored):
        rid = f"{prefix}-{model}-{app}-{start:%m%d}-{i:04d}"
        t = start + timedelta(minutes=5 * i % 1440)
        _score(conn, rid, t, model, app, toxicity=(i % 10) / 10)
        if i < n_pool:
            p1[rid] = 0.5 if i % 4 == 0 else 0.05
            _text(conn, rid, t, p1[rid], model, app)
    return p1


def test_sampling_draws_within_budget_with_known_probabilities_once(namespace):
    settings = _settings(namespace)
    with _db(namespace) as conn:
        big = _fill_period(conn, CLOSED)
        small = _fill_period(conn, CLOSED, n_scored=7, n_pool=5, app="a2")
        open_now = _fill_period(conn, TODAY, n_scored=3, n_pool=3, prefix="open")
        run = sample_due(namespace.database_url, settings, seed=42)
        drawn = [o for o in run.outcomes if o.sample_id is not None]
        assert {(o.app, o.pool, o.drawn) for o in drawn} == {("a1", 80, 20), ("a2", 5, 5)}
        items = {r: (pi, n, scores, exp) for r, pi, n, scores, exp in conn.execute(
            "SELECT request_id, inclusion_probability, reviewers_needed, scores, "
            "expires_at - clock_timestamp() FROM review_items")}
        assert not set(items) & set(open_now)  # today's period is still open
        for rid, (pi, _n, scores, left) in items.items():
            p1, p2 = (big[rid], 20 / 80) if rid in big else (small[rid], 1.0)
            assert pi == pytest.approx(p1 * p2)
            stored = conn.execute("SELECT toxicity FROM inference_scores WHERE request_id = %s",
                                  (rid,)).fetchone()[0]
            assert scores["toxicity"] == pytest.approx(stored) and "hallucination" not in scores
            assert timedelta(days=13.9) < left <= timedelta(days=14)
        assert sum(n == 2 for _, n, _, _ in items.values()) == 4 + 1  # round(0.2 * 20), round(0.2 * 5)
        # pool texts not drawn are gone; drawn ones and the open period's stay
        kept = {r for (r,) in conn.execute("SELECT request_id FROM review_texts")}
        assert kept == set(items) | set(open_now)
        population, pool, budget, design = conn.execute(
            "SELECT population, pool, budget, design FROM review_samples WHERE app = 'a1'").fetchone()
        assert (population, pool, budget) == (200, 80, 20)
        assert design["seed"] == 42 and design["p2"] == 0.25 and design["double_share"] == 0.2
        # idempotent: a re-run, with another seed, draws nothing new
        again = sample_due(namespace.database_url, settings, seed=7)
        assert all(o.sample_id is None for o in again.outcomes)
        assert conn.execute("SELECT count(*) FROM review_items").fetchone()[0] == 25
        assert conn.execute("SELECT count(*) FROM review_samples").fetchone()[0] == 2


def test_concurrent_runs_draw_each_period_once(namespace):
    settings = _settings(namespace)
    with _db(namespace) as conn:
        for day in range(2, 6):
            _fill_period(conn, TODAY - day * DAY, n_scored=60, n_pool=40)
    runs = []
    threads = [threading.Thread(target=lambda s=s: runs.append(sample_due(
        namespace.database_url, settings, seed=s))) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(o.sample_id is not None for r in runs for o in r.outcomes) == 4
    assert namespace.scalar("SELECT count(*) FROM review_samples") == 4
    assert namespace.scalar("SELECT count(*) FROM review_items") == 4 * 20


def test_an_explicit_period_is_drawn_even_when_open(namespace):
    settings = _settings(namespace)
    start = datetime.now(UTC) - timedelta(minutes=5)  # in a period that is not closed
    with _db(namespace) as conn:
        for i in range(30):
            _score(conn, f"demo-{i}", start + timedelta(seconds=i))
            _text(conn, f"demo-{i}", start + timedelta(seconds=i), 1.0)
    assert sample_due(namespace.database_url, settings).outcomes == []
    run = sample_period(namespace.database_url, settings, start, start + timedelta(minutes=5), seed=1)
    assert [(o.pool, o.drawn, o.population) for o in run.outcomes] == [(30, 20, 30)]
    assert namespace.scalar("SELECT min(inclusion_probability) FROM review_items") == pytest.approx(20 / 30)
    with _db(namespace) as conn:  # texts that arrived later, in a period overlapping that one
        for i in range(30, 40):
            _score(conn, f"demo-{i}", start + timedelta(minutes=4, seconds=i))
            _text(conn, f"demo-{i}", start + timedelta(minutes=4, seconds=i), 1.0)
    overlapping = sample_period(namespace.database_url, settings, start + timedelta(minutes=4),
                                start + timedelta(minutes=9), seed=1)
    assert overlapping.outcomes == [] and namespace.scalar("SELECT count(*) FROM review_samples") == 1


def test_a_lagging_stream_holds_its_periods_open(namespace):
    settings = _settings(namespace)
    with _db(namespace) as conn:
        _fill_period(conn, CLOSED, n_scored=30, n_pool=30)
        lagging = CLOSED + DAY - timedelta(hours=2)  # the stream is still inside that period
        conn.execute("INSERT INTO stream_watermarks (sink, max_event_time, evaluated_until) "
                     "VALUES ('inference', %s, %s)", (lagging, lagging - timedelta(minutes=1)))
        assert sample_due(namespace.database_url, settings, seed=3).drawn == 0
        caught_up = datetime.now(UTC)
        conn.execute("UPDATE stream_watermarks SET max_event_time = %s", (caught_up,))
        assert sample_due(namespace.database_url, settings, seed=3).drawn == 20


def _drawn_with_expired_and_pool_texts(conn, namespace, settings, expired: int) -> None:
    """A drawn period of 20 items, ``expired`` of them past expiry, and two undrawn pool texts
    of today: "old-pool" (kept 15 days) and "fresh-pool"."""
    _fill_period(conn, CLOSED, n_scored=30, n_pool=30)
    sample_due(namespace.database_url, settings, seed=3)
    conn.execute("UPDATE review_items SET expires_at = clock_timestamp() - interval '1 s' "
                 "WHERE item_id IN (SELECT item_id FROM review_items ORDER BY item_id LIMIT %s)",
                 (expired,))
    _text(conn, "old-pool", TODAY, 0.1, stored_at=datetime.now(UTC) - 15 * DAY)
    _text(conn, "fresh-pool", TODAY, 0.1)


def test_purge_deletes_expired_and_old_texts_only(namespace):
    settings = _settings(namespace)
    with _db(namespace) as conn:
        _drawn_with_expired_and_pool_texts(conn, namespace, settings, expired=5)
        _text(conn, "late-pool", CLOSED + timedelta(hours=3), 0.1)  # its period was drawn already
        out = purge(namespace.database_url, settings)
        assert (out.expired_texts, out.old_pool_texts, out.late_pool_texts) == (5, 1, 1)
        left = {r for (r,) in conn.execute("SELECT request_id FROM review_texts")}
        assert "fresh-pool" in left and len(left) == 15 + 1
        assert conn.execute("SELECT count(*) FROM review_items").fetchone()[0] == 20  # items stay


def test_the_stream_enforces_retention_without_the_review_jobs(namespace):
    from parrotwatch.streaming.job import ReviewRetention

    settings = _settings(namespace)
    with _db(namespace) as conn:
        _drawn_with_expired_and_pool_texts(conn, namespace, settings, expired=4)
        before = conn.execute("SELECT count(*) FROM review_texts").fetchone()[0]
        retention = ReviewRetention(settings, namespace.database_url, every=3600)
        retention.tick()
        left = {r for (r,) in conn.execute("SELECT request_id FROM review_texts")}
        assert len(left) == before - 5 and "fresh-pool" in left and "old-pool" not in left
        _text(conn, "old-pool-2", TODAY, 0.1, stored_at=datetime.now(UTC) - 15 * DAY)
        retention.tick()  # within its period: nothing more is deleted yet
        assert "old-pool-2" in {r for (r,) in conn.execute("SELECT request_id FROM review_texts")}


# -- calibration ---------------------------------------------------------------------------------

@dataclass
class StandIn:
    """A stand-in for calibrate_detector's result: what the job must store."""

    record: dict

    def to_record(self) -> dict:
        return self.record


class StandInCalibrate:
    """Records its inputs; returns plain statistics computed from them (unweighted kappa via
    scikit-learn, the weighted share of bad labels as the 'corrected' rate)."""

    def __init__(self, kappa_shift: float = 0.0):
        self.calls, self.kappa_shift = [], kappa_shift

    def __call__(self, scores, labels, pi, *, threshold, raw_rate, higher_is_worse=True,
                 second_labels=None, target_precision=None, target_recall=None, seed=0, level=0.95):
        from sklearn.metrics import cohen_kappa_score

        self.calls.append(dict(scores=scores, labels=labels, pi=pi, threshold=threshold,
                               raw_rate=raw_rate, second=second_labels, target=target_precision))
        flags = (scores > threshold).astype(int)
        kappa = float(cohen_kappa_score(flags, labels.astype(int))) + self.kappa_shift
        w = 1 / pi
        corrected = float(np.sum(w * labels) / np.sum(w))
        return StandIn({"labelled": len(labels), "doubly_labelled": int((~np.isnan(second_labels)).sum()),
                        "threshold": threshold, "kappa": kappa, "kappa_low": kappa - 0.1,
                        "kappa_high": kappa + 0.1, "raw_rate": raw_rate, "corrected_rate": corrected,
                        "corrected_low": corrected - 0.02, "corrected_high": corrected + 0.02,
                        "auc": float("nan"), "target": {"precision": target_precision},
                        "suggested_threshold": threshold + 0.05, "details": {"stand_in": True}})


def _labelled_items(conn, n=30, model="m1", app="a1", agree=True, prefix="lab"):
    """n review items with scores and one label each (two for every fifth); returns truths."""
    sample_id = conn.execute(
        "INSERT INTO review_samples (model, app, period_start, period_end, population, pool, drawn, "
        "budget, design) VALUES (%s, %s, %s, %s, 0, 0, 0, 0, '{}') RETURNING id",
        (model, app, CLOSED, CLOSED + DAY)).fetchone()[0]
    truths = {}
    for i in range(n):
        rid = f"{prefix}-{model}-{i}"
        bad = i % 3 == 0
        tox = (0.9 if bad else 0.1) if agree else (0.1 if bad else 0.9)
        _score(conn, rid, CLOSED + timedelta(hours=1), model, app, toxicity=tox)
        item = conn.execute(
            "INSERT INTO review_items (sample_id, request_id, event_time, model, app, "
            "inclusion_probability, reviewers_needed, scores, expires_at) VALUES (%s, %s, %s, %s, %s, "
            "%s, 1, '{}', clock_timestamp() + interval '1 day') RETURNING item_id",
            (sample_id, rid, CLOSED + timedelta(hours=1), model, app, 0.5 if i % 2 else 0.25)).fetchone()[0]
        conn.execute("INSERT INTO review_labels (item_id, reviewer, labels, labelled_at) VALUES "
                      "(%s, 'ann', %s, %s)", (item, Jsonb({"toxic": bad, "helpful": 3}),
                                              datetime.now(UTC) - timedelta(minutes=10)))
        if i % 5 == 0:
            conn.execute("INSERT INTO review_labels (item_id, reviewer, labels) VALUES (%s, 'bob', %s)",
                         (item, Jsonb({"toxic": not bad if i % 2 else bad})))
        truths[rid] = (bad, item)
    return truths


def _period():
    return dict(start=CLOSED, end=CLOSED + DAY)


def test_unlabelled_items_reweight_their_sample_and_raw_rates_cover_drawn_periods(namespace):
    from parrotwatch.review.calibration import Threshold, _Reasons, labelled_items, raw_rates

    with _db(namespace) as conn:
        _labelled_items(conn, 20)  # sample 1: all 20 items labelled
        _labelled_items(conn, 20, app="a2", prefix="lab2")  # sample 2: half of its items will be unlabelled
        conn.execute("DELETE FROM review_labels WHERE item_id IN (SELECT item_id FROM review_items "
                     "WHERE app = 'a2' ORDER BY item_id LIMIT 10)")
        _score(conn, "undrawn-day", TODAY + timedelta(hours=1), toxicity=0.9)  # no sample there
        items = labelled_items(conn, {"toxicity": "toxic"}, CLOSED, TODAY + DAY, _Reasons(Counter()))
        rates = raw_rates(conn, "toxicity", Threshold(0.5, True, "registry"), CLOSED, TODAY + DAY)
    full, half = items["toxicity"][("m1", "a1")], items["toxicity"][("m1", "a2")]
    assert len(full.pi) == 20 and len(half.pi) == 10
    assert sorted(set(full.pi)) == [0.25, 0.5]  # response rate 1
    assert sorted(set(half.pi)) == [0.125, 0.25]  # response rate 1/2: each label stands for two
    assert rates[("*", "*")] == (40, 14)  # the request of the undrawn day is not in the rate


def test_calibrate_stores_a_record_per_detector_and_segment_with_enough_labels(namespace, caplog):
    settings = _settings(namespace)
    fake = StandInCalibrate()
    with _db(namespace) as conn:
        truths = _labelled_items(conn, 30, app="a1")
        _labelled_items(conn, 4, app="few", prefix="few")  # under min_labels: not stored
        for i in range(70):  # unlabelled scored requests count in the raw rate
            _score(conn, f"other-{i}", CLOSED + timedelta(hours=2), toxicity=0.7 if i < 7 else 0.2)
    with caplog.at_level(logging.INFO, logger="parrotwatch.review"):
        run = calibrate_all(namespace.database_url, settings, **_period(), calibrate=fake, publish=False)
    stored = {(r.columns["detector"], r.columns["model"], r.columns["app"]) for r in run.records}
    assert stored == {("toxicity", "m1", "a1"), ("toxicity", "*", "*")}
    assert ("toxicity", "m1", "few", "4 labelled item(s), fewer than 10") in run.skipped
    assert "fewer than 10" in caplog.text
    seg = next(c for c in fake.calls if len(c["labels"]) == 30)
    assert seg["threshold"] == 0.5 and seg["target"] == settings.calibration_target_precision
    # raw rate: flagged share of ALL scored requests of the segment (10 bad labelled + 7 others)
    assert seg["raw_rate"] == pytest.approx((10 + 7) / (30 + 70))
    assert sorted(seg["labels"].tolist()) == sorted(float(b) for b, _ in truths.values())
    assert sorted(seg["pi"].tolist()) == sorted([0.25] * 15 + [0.5] * 15)
    assert int((~np.isnan(seg["second"])).sum()) == 6  # items 0, 5, 10, ... got a second label
    row = namespace.sql("SELECT label, labelled, doubly_labelled, kappa, auc, raw_rate, target, details "
                        "FROM calibration_records WHERE model = 'm1' AND app = 'a1'")[0]
    assert row[:3] == ("toxic", 30, 6)
    assert row[3] == pytest.approx(1.0) and row[4] is None  # NaN AUC stored as NULL
    assert row[5] == pytest.approx(0.17) and row[6] == {"precision": 0.9}
    assert row[7]["stand_in"] is True and row[7]["threshold_source"] == "registry"


def test_apply_and_revoke_are_audited_with_one_live_threshold(namespace):
    settings = _settings(namespace)
    with _db(namespace) as conn:
        _labelled_items(conn, 20)
        first = calibrate_all(namespace.database_url, settings, **_period(),
                              calibrate=StandInCalibrate(), publish=False)
        second = calibrate_all(namespace.database_url, settings, **_period(),
                               calibrate=StandInCalibrate(), publish=False)
        v1, v2 = (next(r.version for r in run.records if r.columns["model"] == "*")
                  for run in (first, second))
        segment_version = next(r.version for r in first.records if r.columns["model"] == "m1")
        with pytest.raises(ApplyError, match="segment"):
            apply_record(conn, segment_version, "alice")
        with pytest.raises(ApplyError, match="no calibration record version 999999"):
            apply_record(conn, 999999, "alice")
        conn.execute("UPDATE calibration_records SET suggested_threshold = NULL WHERE version = %s", (v2,))
        with pytest.raises(ApplyError, match="no suggested threshold"):
            apply_record(conn, v2, "alice")
        new, previous = apply_record(conn, v1, "alice")
        assert previous is None and new.applied_by == "alice" and new.threshold == pytest.approx(0.55)
        assert applied_thresholds(conn) == {"toxicity": pytest.approx(0.55)}
        conn.execute("UPDATE calibration_records SET suggested_threshold = 0.6 WHERE version = %s", (v2,))
        new2, previous2 = apply_record(conn, v2, "bob")
        assert previous2.id == new.id and previous2.revoked_at is not None
        assert applied_thresholds(conn) == {"toxicity": pytest.approx(0.6)}
        revoked = revoke(conn, "toxicity", "carol")
        assert revoked.id == new2.id and applied_thresholds(conn) == {}
        with pytest.raises(ApplyError, match="no applied threshold"):
            revoke(conn, "toxicity", "carol")
        trail = conn.execute("SELECT version, applied_by, revoked_at IS NOT NULL, revoked_by "
                             "FROM calibration_applied ORDER BY id").fetchall()
        assert trail == [(v1, "alice", True, "bob"), (v2, "bob", True, "carol")]


def test_the_applied_threshold_is_in_force_when_opted_in(namespace):
    with _db(namespace) as conn:
        _labelled_items(conn, 20)
        run = calibrate_all(namespace.database_url, _settings(namespace), **_period(),
                            calibrate=StandInCalibrate(), publish=False)
        apply_record(conn, next(r.version for r in run.records if r.columns["model"] == "*"), "alice")
    fake = StandInCalibrate()
    calibrate_all(namespace.database_url, _settings(namespace, calibration_apply_thresholds=True),
                  **_period(), calibrate=fake, publish=False)
    assert [c["threshold"] for c in fake.calls] == pytest.approx([0.55, 0.55])


def test_calibration_alerts_fire_resolve_and_reach_the_alerts_topic(namespace):
    settings = _settings(namespace)
    with _db(namespace) as conn:
        _labelled_items(conn, 30, agree=False)  # the detector says the opposite of the reviewers
    bad = calibrate_all(namespace.database_url, settings, **_period(),
        calibrate=StandInCalibrate(), alert=True)
    firing = {(e.rule, e.labels["model"], e.status, e.severity) for e in bad.alerts}
    assert ("calibration_agreement_low", "*", "firing", "critical") in firing
    assert ("calibration_rate_diverges", "m1", "firing", "warning") in firing
    stored = namespace.sql("SELECT rule, status, metric, sink_batch FROM alerts")
    assert len(stored) == len(bad.alerts) and all(r[3] == bad.tag and r[2] == "toxicity" for r in stored)
    assert bad.published == len(bad.alerts)
    published = [orjson.loads(r.value) for r in namespace.read_topic("llm.alerts.v1", len(bad.alerts))]
    assert {(a["rule"], a["labels"]["model"], a["status"]) for a in published} == {
        (r, m, s) for r, m, s, _ in firing}
    # the same condition again: still firing, no new transition
    assert calibrate_all(namespace.database_url, settings, **_period(),
                         calibrate=StandInCalibrate(), publish=False, alert=True).alerts == []
    # agreement back (the stand-in adds 2 to kappa): the agreement alerts resolve
    good = calibrate_all(namespace.database_url, settings, **_period(),
                         calibrate=StandInCalibrate(kappa_shift=2.0), publish=False, alert=True)
    assert {(e.rule, e.status) for e in good.alerts} == {("calibration_agreement_low", "resolved")}


def test_a_backfill_neither_fires_nor_resolves_calibration_alerts(namespace):
    settings = _settings(namespace)
    with _db(namespace) as conn:
        _labelled_items(conn, 30, agree=False)  # bad agreement: a live run would fire
    backfill = calibrate_all(namespace.database_url, settings, **_period(),
                             calibrate=StandInCalibrate(), publish=False)  # a window long past
    assert backfill.records and backfill.alerts == []
    assert namespace.scalar("SELECT count(*) FROM alerts") == 0


def test_alerts_kafka_missed_are_published_by_the_next_run(namespace):
    settings = _settings(namespace)
    with _db(namespace) as conn:
        _labelled_items(conn, 30, agree=False)
    down = settings.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})  # nothing listens
    missed = calibrate_all(namespace.database_url, down, **_period(),
        calibrate=StandInCalibrate(), alert=True)
    assert missed.alerts and missed.published == 0
    assert namespace.scalar("SELECT count(*) FROM calibration_alert_publications") == 0
    later = calibrate_all(namespace.database_url, settings, **_period(),
        calibrate=StandInCalibrate(), alert=True)
    assert later.alerts == [] and later.published == len(missed.alerts)  # no new transition
    published = namespace.read_topic("llm.alerts.v1", len(missed.alerts))
    assert sorted(orjson.loads(r.value)["alert_id"] for r in published) == sorted(
        e.alert_id for e in missed.alerts)
    assert namespace.sql("SELECT sink_batch, alerts FROM calibration_alert_publications") == [
        (missed.tag, len(missed.alerts))]
    again = calibrate_all(namespace.database_url, settings, **_period(),
        calibrate=StandInCalibrate(), alert=True)
    assert again.published == 0  # nothing twice


def test_correction_scores_are_stored_for_kept_responses(namespace):
    from parrotwatch.detectors.task_metrics import task_metrics

    with _db(namespace) as conn:
        _score(conn, "c1", CLOSED)
        _text(conn, "c1", CLOSED, 1.0, response="the cat sat on the mat")
        _score(conn, "c2", CLOSED)  # its text was not kept: no score
        for fid, rid, correction in (("f1", "c1", "the cat sat on a mat"), ("f2", "c2", "x"),
                                     ("f3", "c1", "  ")):
            conn.execute("INSERT INTO feedback (feedback_id, request_id, event_time, correction, "
                         "kafka_partition, kafka_offset, sink_batch) VALUES (%s, %s, %s, %s, 0, 0, 't')",
                         (fid, rid, CLOSED, correction))
    calibrate_all(namespace.database_url, _settings(namespace), **_period(),
                  calibrate=StandInCalibrate(), publish=False)
    rows = namespace.sql("SELECT feedback_id, request_id, model, rouge_l_f, bleu FROM correction_scores")
    expected = task_metrics("the cat sat on the mat", "the cat sat on a mat")
    assert [r[:3] for r in rows] == [("f1", "c1", "m1")]
    assert rows[0][3] == pytest.approx(expected["rouge_l_f"])
    assert rows[0][4] == pytest.approx(expected["bleu"])


def test_poison_rows_are_skipped_with_a_reason_never_a_crash(namespace, caplog):
    settings = _settings(namespace)
    huge = "word " * 2_000_000  # 10 MB
    with _db(namespace) as conn:
        truths = _labelled_items(conn, 20)
        odd = ['{"toxic": "yes"}', '{"toxic": [true], "extra": {"deep": [1, 2]}}', '["toxic"]',
               '"toxic"', 'null', '{"toxic": 1}']
        for (_bad, item), labels in zip(list(truths.values())[:6], odd, strict=True):
            conn.execute("UPDATE review_labels SET labels = %s::jsonb WHERE item_id = %s "
                         "AND reviewer = 'ann'", (labels, item))
        _score(conn, "huge", CLOSED, app="a9")
        _text(conn, "huge", CLOSED, 1.0, app="a9", response=huge)
        _score(conn, "ctrl", CLOSED, app="a9")
        _text(conn, "ctrl", CLOSED, 1.0, app="a9", response="\ufffd\x01\x1f\u202e odd \U0001F600 text")
        for fid, rid in (("fh", "huge"), ("fc", "ctrl")):
            conn.execute("INSERT INTO feedback (feedback_id, request_id, event_time, correction, "
                         "kafka_partition, kafka_offset, sink_batch) VALUES (%s, %s, %s, %s, 0, 0, 't')",
                         (fid, rid, CLOSED, "odd text \x02" if fid == "fc" else huge))
    with caplog.at_level(logging.WARNING, logger="parrotwatch.review"):
        run = calibrate_all(namespace.database_url, settings, **_period(), publish=False)  # the real one
        sampled = sample_due(namespace.database_url, settings, seed=1)
    record = next(r for r in run.records if r.columns["model"] == "m1")
    # on items 0 and 5 bob's second label stands in for ann's unreadable one: 20 - 6 + 2
    assert record.columns["labelled"] == 16
    assert "label 'toxic' is 'yes', not true or false" in caplog.text
    assert "labels are a list, not an object" in caplog.text
    # the record (readable by the dashboards' role) counts the unreadable labels, no values
    skipped = record.columns["details"]["skipped_rows"]
    assert skipped == {"unreadable toxic label": 6,  # 3 odd values, 3 labels not an object
                       "unreadable hallucinated label": 3, "unreadable off_topic label": 3}
    assert "yes" not in json.dumps(record.columns["details"])
    scores = dict(namespace.sql("SELECT feedback_id, rouge_l_f FROM correction_scores"))
    assert scores["fh"] is None and scores["fc"] is not None
    assert "over the 20000-character limit" in caplog.text
    assert [o.drawn for o in sampled.outcomes] == [2]  # the huge text is drawn like any other


def test_sample_label_calibrate_with_the_real_calibration(namespace):
    """The whole job chain with parrotwatch.detectors.calibration.calibrate: the stored record is
    what calibrate_detector gives on the arrays the test rebuilds itself from the tables."""
    from parrotwatch.detectors.calibration.calibrate import calibrate_detector

    settings = _settings(namespace, review_budget=60, review_double_share=0.3)
    rng = np.random.default_rng(11)
    with _db(namespace) as conn:
        conn.execute("CREATE TEMP TABLE truth (request_id text, bad bool)")
        for i in range(400):
            rid = f"e2e-{i:04d}"
            bad = rng.random() < 0.2
            tox = float(np.clip(rng.normal(0.75 if bad else 0.3, 0.15), 0, 1))
            _score(conn, rid, CLOSED + timedelta(minutes=3 * i), toxicity=tox)
            p1 = 0.5 if tox > 0.5 else 0.1
            if rng.random() < p1:
                _text(conn, rid, CLOSED + timedelta(minutes=3 * i), p1)
                conn.execute("INSERT INTO truth VALUES (%s, %s)", (rid, bool(bad)))
        run = sample_due(namespace.database_url, settings, seed=5)
        assert run.drawn == 60
        items = conn.execute("SELECT i.item_id, i.reviewers_needed, t.bad FROM review_items i "
                             "JOIN truth t USING (request_id) ORDER BY item_id").fetchall()
        for item_id, needed, bad in items:
            for k, reviewer in enumerate(("ann", "bob")[:needed]):
                noisy = bool(bad) != (rng.random() < 0.1)
                conn.execute("INSERT INTO review_labels (item_id, reviewer, labels, labelled_at) VALUES "
                             "(%s, %s, %s, clock_timestamp() + make_interval(secs => %s))",
                             (item_id, reviewer, Jsonb({"toxic": noisy, "hallucinated": False,
                                                        "off_topic": False, "helpful": 4}), k))
        rows = conn.execute(
            "SELECT i.item_id, s.toxicity, i.inclusion_probability, "
            "(SELECT (labels->>'toxic')::bool FROM review_labels l WHERE l.item_id = i.item_id "
            " ORDER BY labelled_at LIMIT 1), "
            "(SELECT (labels->>'toxic')::bool FROM review_labels l WHERE l.item_id = i.item_id "
            " ORDER BY labelled_at OFFSET 1 LIMIT 1) "
            "FROM review_items i JOIN inference_scores s USING (request_id) ORDER BY item_id").fetchall()
        raw = conn.execute("SELECT avg((toxicity > 0.5)::int) FROM inference_scores").fetchone()[0]
    stored = calibrate_all(namespace.database_url, settings, **_period(), seed=3, publish=False)
    overall = next(r.columns for r in stored.records
                   if (r.columns["detector"], r.columns["model"]) == ("toxicity", "*"))
    expected = calibrate_detector(
        [r[1] for r in rows], [float(r[3]) for r in rows], [r[2] for r in rows], threshold=0.5,
        raw_rate=float(raw), second_labels=[np.nan if r[4] is None else float(r[4]) for r in rows],
        target_precision=settings.calibration_target_precision, seed=3).to_record()
    for key in ("labelled", "doubly_labelled", "auc", "kappa", "kappa_low", "alpha", "raw_rate",
                "corrected_rate", "corrected_high", "suggested_threshold", "precision_at"):
        assert overall[key] == pytest.approx(expected[key]), key
    assert overall["labelled"] == 60 and overall["doubly_labelled"] == 18
    assert overall["kappa"] > 0.4  # a good detector, 10% reviewer noise
    # hallucination and ood_score have labels but scored no request: no rate, nothing stored
    assert ("hallucination", "*", "*", "no scored request in the period") in stored.skipped
    assert namespace.sql("SELECT DISTINCT detector, model FROM calibration_records ORDER BY 2") == [
        ("toxicity", "*"), ("toxicity", "m1")]


def test_a_segment_the_calibration_fails_on_is_skipped_and_the_others_stored(namespace, caplog):
    with _db(namespace) as conn:
        _labelled_items(conn, 12, app="a1")
        _labelled_items(conn, 12, app="a2", prefix="two")
    stand_in = StandInCalibrate()

    def flaky(scores, labels, pi, **kw):
        if len(labels) == 24:  # the */* segment
            raise IndexError("a bug in the statistics")
        return stand_in(scores, labels, pi, **kw)

    with caplog.at_level(logging.WARNING, logger="parrotwatch.review"):
        run = calibrate_all(namespace.database_url, _settings(namespace), **_period(), calibrate=flaky,
                            publish=False)
    assert {r.columns["app"] for r in run.records} == {"a1", "a2"}
    assert ("toxicity", "*", "*", "calibration failed: IndexError: a bug in the statistics") in run.skipped
    assert "a bug in the statistics" in caplog.text


def test_the_commands_on_the_database(namespace, monkeypatch):
    from typer.testing import CliRunner

    from parrotwatch.cli import app
    from parrotwatch.stack.local import settings_env

    env = settings_env(_settings(namespace))
    for name, value in env.items():
        if name.startswith("PARROTWATCH_"):
            monkeypatch.setenv(name, value)
    with _db(namespace) as conn:
        _fill_period(conn, CLOSED, n_scored=40, n_pool=30)
    runner = CliRunner()
    sampled = runner.invoke(app, ["review", "sample", "--seed", "9"])
    assert sampled.exit_code == 0, sampled.output
    assert "20 drawn of    30 pooled (40 requests)" in sampled.output
    with _db(namespace) as conn:
        conn.execute("DELETE FROM review_samples")
        _labelled_items(conn, 15)
    shown = runner.invoke(app, ["calibrate", "--since", CLOSED.strftime("%Y-%m-%dT%H:%M:%S"),
                                "--until", (CLOSED + DAY).strftime("%Y-%m-%dT%H:%M:%S"), "--no-publish"])
    assert shown.exit_code == 0, shown.output
    assert "toxicity" in shown.output and "m1/a1" in shown.output and "*/*" in shown.output
    version = namespace.scalar("SELECT version FROM calibration_records WHERE model = '*'")
    applied = runner.invoke(app, ["calibrate", "apply", str(version), "--by", "alice"])
    assert applied.exit_code == 0 and "applied by alice" in applied.output, applied.output
    listed = runner.invoke(app, ["calibrate", "show"])
    assert "live" in listed.output and "alice" in listed.output
    revoked = runner.invoke(app, ["calibrate", "revoke", "toxicity", "--by", "bob"])
    assert revoked.exit_code == 0 and "revoked by bob" in revoked.output
    again = runner.invoke(app, ["calibrate", "revoke", "toxicity", "--by", "bob"])
    assert again.exit_code == 1 and "no applied threshold" in again.output
    purged = runner.invoke(app, ["review", "purge"])
    assert purged.exit_code == 0 and "deleted:" in purged.output
