-- Evaluations the stream made on the wall clock while no traffic arrived at all (a total outage:
-- streaming/silence.py), and when their alerts were published to llm.alerts.v1. Publication is at
-- least once: a crash between the send and published_at sends them again, and the dispatcher's
-- idempotency keys make the repeat a no-op.
CREATE TABLE silence_evaluations (
    tag           text PRIMARY KEY,
    evaluated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    alerts        integer NOT NULL,
    published_at  timestamptz
);
