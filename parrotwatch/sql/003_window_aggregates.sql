-- One-minute event-time windows per (model, app): request counts and per-metric aggregates,
-- updated exactly once per stored request (in the sink's transaction), plus the stream's
-- watermark that tells which windows are closed.

CREATE TABLE window_counts (
    model          text NOT NULL,
    app            text NOT NULL,
    window_start   timestamptz NOT NULL,
    window_end     timestamptz NOT NULL,
    requests       integer NOT NULL DEFAULT 0,
    feedback_count integer NOT NULL DEFAULT 0,
    thumbs_down    integer NOT NULL DEFAULT 0,
    dead_letters   integer NOT NULL DEFAULT 0,   -- only on the ('*', '*') row: no segment known
    examples       text[] NOT NULL DEFAULT '{}',
    updated_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (model, app, window_start)
);
CREATE INDEX window_counts_time ON window_counts (window_start);

CREATE TABLE window_metrics (
    model        text NOT NULL,
    app          text NOT NULL,
    window_start timestamptz NOT NULL,
    metric       text NOT NULL,
    n            integer NOT NULL,
    sum          double precision NOT NULL,
    flagged      integer NOT NULL,
    mean         double precision GENERATED ALWAYS AS (sum / NULLIF(n, 0)) STORED,
    p50          double precision,
    p95          double precision,
    p99          double precision,
    sketch       bytea NOT NULL,                 -- DDSketch protobuf, 1% relative accuracy
    PRIMARY KEY (model, app, window_start, metric)
);
CREATE INDEX window_metrics_time ON window_metrics (window_start, metric);

CREATE TABLE stream_watermarks (
    sink              text PRIMARY KEY,
    max_event_time    timestamptz NOT NULL,
    evaluated_until   timestamptz,               -- windows ending at or before were evaluated
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
