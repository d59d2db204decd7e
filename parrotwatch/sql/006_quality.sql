-- Model-based quality scores (issue 5): toxicity, hallucination, out-of-distribution score,
-- bounded drill-down data per request, and embedding-drift tests per closed window.
ALTER TABLE inference_scores ADD COLUMN toxicity double precision;
ALTER TABLE inference_scores ADD COLUMN hallucination double precision;
ALTER TABLE inference_scores ADD COLUMN ood_score double precision;
ALTER TABLE inference_scores ADD COLUMN score_source text;  -- 'logprobs' | 'reference_lm' | null

-- At most one row per request, each list capped in size by the stream (see streaming/quality.py).
CREATE TABLE request_drilldown (
    request_id         text PRIMARY KEY,
    event_time         timestamptz NOT NULL,
    model              text NOT NULL,
    app                text NOT NULL,
    unsupported_spans  jsonb,    -- [{text, start, end, similarity, unsupported_facts}]
    surprising_tokens  jsonb,    -- [{position, token, surprisal}], top N by surprisal
    nearest_reference  jsonb,    -- [{text, distance}] of an out-of-distribution request
    sink_batch         text NOT NULL,
    stored_at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX request_drilldown_time ON request_drilldown (event_time);

-- One row per (segment, closed window, side): the drift tests of the window's embedding sample
-- against the segment's reference sample.
CREATE TABLE drift_windows (
    model            text NOT NULL,
    app              text NOT NULL,
    window_start     timestamptz NOT NULL,
    side             text NOT NULL CHECK (side IN ('prompt', 'response')),
    n_reference      integer NOT NULL,
    n_current        integer NOT NULL,
    mmd2             double precision,
    p_value          double precision,
    classifier_auc   double precision,
    ood_share        double precision,     -- share of the window's requests with ood_score > 1
    computed_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (model, app, window_start, side)
);
CREATE INDEX drift_windows_time ON drift_windows (window_start);

-- The drift reference of each segment and side: the embeddings of its first requests
-- (`drift_reference_size`), fixed once complete.
CREATE TABLE drift_reference (
    model       text NOT NULL,
    app         text NOT NULL,
    side        text NOT NULL CHECK (side IN ('prompt', 'response')),
    request_id  text NOT NULL,
    excerpt     text,                 -- the text's first characters, for drill-down
    embedding   bytea NOT NULL,       -- float16
    PRIMARY KEY (model, app, side, request_id)
);

-- Bottom-k sample (by a hash of request_id) of each open window's embeddings: a uniform sample
-- without replacement, at most `drift_window_sample` rows per window, deleted once tested.
CREATE TABLE drift_samples (
    model        text NOT NULL,
    app          text NOT NULL,
    side         text NOT NULL CHECK (side IN ('prompt', 'response')),
    window_start timestamptz NOT NULL,
    request_id   text NOT NULL,
    rank         double precision NOT NULL,
    embedding    bytea NOT NULL,
    PRIMARY KEY (model, app, side, window_start, request_id)
);
CREATE INDEX drift_samples_rank ON drift_samples (model, app, side, window_start, rank);
