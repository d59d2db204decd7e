-- Alert dispatcher (services/dispatcher): a durable outbox of deliveries and a log of attempts.

-- One row per (alert transition, receiver). The consumer inserts rows and commits the Kafka offset
-- only afterwards; the key collapses duplicates (ON CONFLICT DO NOTHING).
CREATE TABLE alert_outbox (
    idempotency_key text PRIMARY KEY,          -- sha256(alert_id, status, starts_at, receiver)
    seq             bigserial NOT NULL UNIQUE, -- arrival order: per (receiver, alert_id) delivered in order
    receiver        text NOT NULL,             -- receiver name from the receivers file
    alert_id        text NOT NULL,
    alert_status    text NOT NULL CHECK (alert_status IN ('firing', 'resolved')),
    event           jsonb NOT NULL,            -- the validated Alert event v1
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_status     integer,                   -- HTTP status of the last attempt (NULL: no response)
    last_error      text,
    kafka_partition integer,
    kafka_offset    bigint,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at    timestamptz
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX alert_outbox_order ON alert_outbox (receiver, alert_id, seq) WHERE state = 'pending';
CREATE INDEX alert_outbox_alert ON alert_outbox (alert_id);

-- Every delivery attempt, successful or not.
CREATE TABLE alert_delivery_log (
    id              bigserial PRIMARY KEY,
    idempotency_key text NOT NULL REFERENCES alert_outbox (idempotency_key) ON DELETE CASCADE,
    receiver        text NOT NULL,
    attempt         integer NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'dead')),
    status_code     integer,
    error           text,
    latency_ms      double precision NOT NULL,
    next_attempt_at timestamptz,               -- when outcome = 'retry'
    attempted_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX alert_delivery_log_key ON alert_delivery_log (idempotency_key);
CREATE INDEX alert_delivery_log_time ON alert_delivery_log (attempted_at);
