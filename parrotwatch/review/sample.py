"""``parrotwatch review sample`` and ``review purge``: the review set of each closed period and
segment, drawn from the pool of texts the stream kept, and the retention of those texts.

Per (model, app) segment and closed period without a ``review_samples`` row, in ONE transaction
under a PostgreSQL advisory lock of that (segment, period):

1. the pool: the ``review_texts`` rows of the period and segment not already review items, in
   request-id order;
2. the draw (:func:`parrotwatch.review.draw.draw_review_set`): k = min(budget, pool) items, each
   with inclusion probability pool_probability x k / pool, a share given to two reviewers;
3. one ``review_samples`` row (``UNIQUE (model, app, period_start, period_end)``: a second run,
   concurrent or not, finds it and draws nothing), the ``review_items`` with the request's detector
   scores from ``inference_scores``, the corrections of the texts about to go scored
   (:mod:`.corrections`), and the pool texts not drawn deleted.

Only what PostgreSQL holds is read; nothing from Kafka. A segment whose draw the database
refuses on its data is logged with the reason and skipped; the others go on.
"""

from __future__ import annotations

import logging
import math
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

from parrotwatch.db import connect, delete_expired_review_texts
from parrotwatch.detectors.metrics import SCORE_NAMES
from parrotwatch.review.corrections import score_corrections
from parrotwatch.review.draw import draw_review_set, segment_rng
from parrotwatch.review.periods import EPOCH, Period, last_closed_end, period_seconds
from parrotwatch.settings import Settings

log = logging.getLogger(__name__)

#: First key of the (segment, period) advisory locks ("PWRS").
LOCK_CLASS = 0x50575253
#: Added to the stream's watermark delay before a period counts as closed: late events of it
#: may still be stored until then.
GRACE_MARGIN = timedelta(minutes=15)

_DUE = """
SELECT model, app, floor(extract(epoch FROM event_time) / %(p)s)::bigint AS idx, count(*)
FROM review_texts t
WHERE event_time < %(before)s AND event_time >= %(after)s
  AND NOT EXISTS (SELECT 1 FROM review_items i WHERE i.request_id = t.request_id)
GROUP BY 1, 2, 3 ORDER BY 3, 1, 2
"""

_POOL = """
SELECT request_id, event_time, pool_probability FROM review_texts t
WHERE model = %s AND app = %s AND event_time >= %s AND event_time < %s
  AND NOT EXISTS (SELECT 1 FROM review_items i WHERE i.request_id = t.request_id)
ORDER BY request_id
"""


def connect_utc(url: str) -> psycopg.Connection:
    """A connection whose timestamps come back in UTC."""
    return connect(url, options="-c TimeZone=UTC")


def grace_of(settings: Settings) -> timedelta:
    """How long after its end a period is closed: the stream's watermark delay + a margin."""
    return timedelta(seconds=settings.watermark_delay_seconds) + GRACE_MARGIN


@dataclass
class SampleOutcome:
    model: str
    app: str
    period: Period
    population: int = 0
    pool: int = 0
    drawn: int = 0
    doubles: int = 0
    sample_id: int | None = None
    skipped: str | None = None  # why nothing was drawn


@dataclass
class SampleRun:
    seed: int
    outcomes: list[SampleOutcome] = field(default_factory=list)

    @property
    def drawn(self) -> int:
        return sum(o.drawn for o in self.outcomes if o.sample_id is not None)


def _period(idx: int, seconds: float) -> Period:
    start = EPOCH + timedelta(seconds=idx * seconds)
    return Period(start, start + timedelta(seconds=seconds))


def due_segments(conn: psycopg.Connection, hours: float, before: datetime,
                 after: datetime = EPOCH) -> list[tuple[str, str, Period]]:
    """(model, app, period) of pool texts with event time in [after, before) whose period has
    no review sample yet; ``before`` is a period boundary (see :func:`.periods.last_closed_end`)."""
    seconds = period_seconds(hours)
    found = [(m, a, _period(idx, seconds)) for m, a, idx, _ in
             conn.execute(_DUE, {"p": seconds, "before": before, "after": after})]
    done = {(m, a, s, e) for m, a, s, e in conn.execute(
        "SELECT model, app, period_start, period_end FROM review_samples WHERE period_end <= %s",
        (max((p.end for _, _, p in found), default=before),))}
    return [(m, a, p) for m, a, p in found if (m, a, p.start, p.end) not in done]


def _scores(conn: psycopg.Connection, request_ids: list[str]) -> dict[str, dict[str, float]]:
    """Each request's finite detector scores (the metric registry's columns)."""
    columns = ", ".join(SCORE_NAMES)
    found = {}
    for row in conn.execute(f"SELECT request_id, {columns} FROM inference_scores "
                            "WHERE request_id = ANY(%s)", (request_ids,)):
        found[row[0]] = {name: float(v) for name, v in zip(SCORE_NAMES, row[1:], strict=True)
                         if v is not None and math.isfinite(v)}
    return found


def design_of(settings: Settings, seed: int, p2: float) -> dict:
    """What ``review_samples.design`` records: the seed and every setting the draw used."""
    return {"method": "two-phase: stream pool (p1) x simple random sample (p2 = k / pool)",
            "seed": seed, "p2": p2, "budget": settings.review_budget,
            "double_share": settings.review_double_share,
            "period_hours": settings.review_period_hours,
            "text_days": settings.review_text_days,
            "pool": {"base": settings.review_pool_rate, "near_rate": settings.review_pool_near_rate,
                     "flagged_rate": settings.review_pool_flagged_rate, "near": settings.review_near}}


def sample_segment(conn: psycopg.Connection, settings: Settings, model: str, app: str,
                   period: Period, seed: int) -> SampleOutcome:
    """Draw one segment's period (see the module docstring); commits its own transaction."""
    out = SampleOutcome(model, app, period)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                     (LOCK_CLASS, f"{model}\x1f{app}\x1f{period.start.isoformat()}"))
        if conn.execute("SELECT 1 FROM review_samples WHERE model = %s AND app = %s AND "
                        "period_start = %s AND period_end = %s",
                        (model, app, period.start, period.end)).fetchone():
            out.skipped = "already drawn"
            return out
        pool = conn.execute(_POOL, (model, app, period.start, period.end)).fetchall()
        out.pool = len(pool)
        out.population = conn.execute(
            "SELECT count(*) FROM inference_scores WHERE model = %s AND app = %s AND "
            "event_time >= %s AND event_time < %s", (model, app, period.start, period.end)).fetchone()[0]
        draw = draw_review_set([(r, p) for r, _, p in pool], settings.review_budget,
                               settings.review_double_share,
                               segment_rng(seed, model, app, period.start.isoformat()))
        inserted = conn.execute(
            "INSERT INTO review_samples (model, app, period_start, period_end, population, pool, "
            "drawn, budget, design) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (model, app, period_start, period_end) DO NOTHING RETURNING id",
            (model, app, period.start, period.end, out.population, out.pool, len(draw.items),
             float(settings.review_budget), Jsonb(design_of(settings, seed, draw.p2)))).fetchone()
        if inserted is None:  # the UNIQUE constraint: another run drew it (belt and braces)
            out.skipped = "already drawn"
            return out
        out.sample_id = inserted[0]
        times = {r: t for r, t, _ in pool}
        scores = _scores(conn, [i.request_id for i in draw.items])
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO review_items (sample_id, request_id, event_time, model, app, "
                "inclusion_probability, reviewers_needed, scores, expires_at) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, "
                "clock_timestamp() + make_interval(secs => %s::float8))",
                [(out.sample_id, i.request_id, times[i.request_id], model, app,
                  i.inclusion_probability, i.reviewers_needed, Jsonb(scores.get(i.request_id, {})),
                  settings.review_text_days * 86400.0) for i in draw.items])
        if draw.not_drawn:
            score_corrections(conn, draw.not_drawn)
            conn.execute("DELETE FROM review_texts WHERE request_id = ANY(%s)", (list(draw.not_drawn),))
        out.drawn = len(draw.items)
        out.doubles = sum(i.reviewers_needed == 2 for i in draw.items)
    return out


def _run(url: str, settings: Settings, segments_of, seed: int | None) -> SampleRun:
    run = SampleRun(seed if seed is not None else secrets.randbits(32))
    with connect_utc(url) as conn:
        conn.autocommit = True  # each segment commits its own transaction
        for model, app, period in segments_of(conn):
            try:
                out = sample_segment(conn, settings, model, app, period, run.seed)
            except (psycopg.DataError, psycopg.IntegrityError, ValueError) as exc:
                out = SampleOutcome(model, app, period,
                                    skipped=f"refused: {type(exc).__name__}: {str(exc)[:300]}")
                log.error("review sample %s/%s %s skipped: %s", model[:80], app[:80], period, out.skipped)
            else:
                if out.sample_id is not None:
                    log.info("review sample %s/%s %s: %d of %d pooled (%d requests), %d for two "
                             "reviewers", model[:80], app[:80], period, out.drawn, out.pool,
                             out.population, out.doubles)
            run.outcomes.append(out)
    return run


def stream_time(conn: psycopg.Connection, clock: datetime) -> datetime:
    """How far the stream has got: ``clock``, or the inference stream's watermark (its event
    time, or the wall clock its silence detection closed windows up to) when that is behind. A
    period is drawn only once the stream is past it, so that texts still on their way through a
    lagging stream are not left out of the draw (their inclusion probability would be 0)."""
    row = conn.execute("SELECT greatest(max_event_time, evaluated_until) FROM stream_watermarks "
                       "WHERE sink = 'inference'").fetchone()
    return min(clock, row[0]) if row and row[0] is not None else clock


def sample_due(url: str, settings: Settings, *, seed: int | None = None,
               grace: timedelta | None = None, now: datetime | None = None) -> SampleRun:
    """Draw every closed period not drawn yet (the scheduler's job). ``now``: the database
    clock by default; ``grace``: :func:`grace_of` by default. A stream that lags (a backlog, an
    outage) holds periods open: see :func:`stream_time`."""
    grace = grace_of(settings) if grace is None else grace

    def segments(conn):
        clock = now or conn.execute("SELECT clock_timestamp()").fetchone()[0]
        return due_segments(conn, settings.review_period_hours,
                            last_closed_end(stream_time(conn, clock), settings.review_period_hours,
                                            grace))
    return _run(url, settings, segments, seed)


def sample_period(url: str, settings: Settings, start: datetime, end: datetime, *,
                  seed: int | None = None) -> SampleRun:
    """Draw one explicit period [start, end) of every segment with pool texts in it (e.g. a
    demo's short run), whether or not it is aligned or closed. A segment with a sample of a
    period overlapping this one is left out (logged): its population would count twice."""
    if not start < end:
        raise ValueError(f"the period's start {start} must be before its end {end}")
    period = Period(start, end)

    def segments(conn):
        rows = conn.execute(
            "SELECT DISTINCT model, app FROM review_texts t WHERE event_time >= %s AND "
            "event_time < %s AND NOT EXISTS (SELECT 1 FROM review_items i "
            "WHERE i.request_id = t.request_id) ORDER BY 1, 2", (start, end)).fetchall()
        overlapping = {(m, a) for m, a in conn.execute(
            "SELECT model, app FROM review_samples WHERE period_start < %s AND period_end > %s",
            (end, start))}
        for m, a in sorted(overlapping & set(rows)):
            log.warning("review sample of %s/%s skipped: a sample of an overlapping period exists",
                        m[:80], a[:80])
        return [(m, a, period) for m, a in rows if (m, a) not in overlapping]
    return _run(url, settings, segments, seed)


@dataclass(frozen=True)
class PurgeOutcome:
    expired_texts: int
    old_pool_texts: int
    late_pool_texts: int


def purge(url: str, settings: Settings) -> PurgeOutcome:
    """Delete the texts of expired review items, pool texts kept longer than
    ``review_text_days``, and pool texts of periods already drawn (late arrivals that can never
    be drawn). Labels, items and statistics stay. Corrections of the texts about to go are
    scored first."""
    with connect_utc(url) as conn, conn.transaction():
        score_corrections(conn)
        expired, old = delete_expired_review_texts(conn, settings.review_text_days)
        late = conn.execute(
            "DELETE FROM review_texts t USING review_samples s WHERE s.model = t.model AND "
            "s.app = t.app AND t.event_time >= s.period_start AND t.event_time < s.period_end "
            "AND NOT EXISTS (SELECT 1 FROM review_items i WHERE i.request_id = t.request_id)").rowcount
    out = PurgeOutcome(expired, old, late)
    log.info("review purge: %d expired item texts, %d old pool texts, %d late pool texts deleted",
             expired, old, late)
    return out
