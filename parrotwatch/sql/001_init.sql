-- Parrotwatch schema v1: per-request scores, feedback, dead letters, pipeline health.

CREATE TABLE inference_scores (
    request_id        text PRIMARY KEY,
    event_time        timestamptz NOT NULL,
    model             text NOT NULL,
    app               text NOT NULL,
    surprisal_mean    double precision,
    surprisal_max     double precision,
    perplexity        double precision,
    entropy_mean      double precision,
    min_k_prob        double precision,
    distinct_2        double precision,
    repetition_rate   double precision,
    compression_ratio double precision,
    latency_ms        double precision,
    tokens_per_s      double precision,
    input_tokens      integer,
    output_tokens     integer,
    finish_reason     text,
    kafka_partition   integer NOT NULL,
    kafka_offset      bigint NOT NULL,
    kafka_timestamp   timestamptz,
    sink_batch        text NOT NULL,          -- "<sink>:<batch id>" that first stored the row
    stored_at         timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX inference_scores_segment_time ON inference_scores (model, app, event_time);
CREATE INDEX inference_scores_time ON inference_scores (event_time);
CREATE INDEX inference_scores_sink_batch ON inference_scores (sink_batch);

CREATE TABLE feedback (
    feedback_id     text PRIMARY KEY,
    request_id      text NOT NULL,
    event_time      timestamptz NOT NULL,
    thumb           smallint CHECK (thumb IN (-1, 1)),
    score           double precision,
    label           text,
    correction      text,
    comment         text,
    annotator       text,
    metadata        jsonb,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    kafka_timestamp timestamptz,
    sink_batch      text NOT NULL,
    stored_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX feedback_request ON feedback (request_id);
CREATE INDEX feedback_time ON feedback (event_time);

CREATE TABLE dead_letters (
    source_topic    text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    reason          text NOT NULL,
    payload         bytea,
    kafka_timestamp timestamptz,
    stored_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (source_topic, kafka_partition, kafka_offset)
);
CREATE INDEX dead_letters_time ON dead_letters (stored_at);

-- One row per committed micro-batch of a sink: pipeline-health panels and bench read it.
CREATE TABLE sink_batches (
    sink         text NOT NULL,
    batch_id     bigint NOT NULL,
    rows_in      integer NOT NULL,
    rows_stored  integer NOT NULL,
    dead_letters integer NOT NULL,
    duration_ms  double precision NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (sink, batch_id)
);
