-- Alert events (contract: alert event v1) as the stream emitted them, and the rule evaluator's
-- state, both written in the inference sink's transaction.

CREATE TABLE alerts (
    id          bigserial PRIMARY KEY,
    alert_id    text NOT NULL,
    status      text NOT NULL CHECK (status IN ('firing', 'resolved')),
    rule        text NOT NULL,
    severity    text NOT NULL,
    model       text,
    app         text,
    metric      text,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz,
    value       double precision,
    baseline    double precision,
    threshold   double precision,
    summary     text NOT NULL,
    event       jsonb NOT NULL,               -- the alert event v1 exactly as published
    sink_batch  text NOT NULL,
    emitted_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX alerts_alert_id ON alerts (alert_id, starts_at);
CREATE INDEX alerts_time ON alerts (starts_at);
CREATE INDEX alerts_sink_batch ON alerts (sink_batch);

CREATE TABLE alert_evaluator_state (
    name        text PRIMARY KEY,
    rules_hash  text NOT NULL,                -- a changed rule set starts from a fresh state
    state       bytea NOT NULL,               -- pickled detectors.alerting.Evaluator
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
