-- Human review and calibration (issue 14).
--
-- Two-phase sampling with known inclusion probabilities:
--   1. the stream keeps the text of a request (review_texts) with probability pool_probability,
--      decided per request from its scores (parrotwatch.detectors.calibration.sampling.pool_probability);
--   2. `parrotwatch review sample` draws, per period and segment, a review set within a budget
--      from that pool (review_samples, review_items); an item's inclusion probability is
--      pool_probability x its second-phase probability. Pool texts not drawn are deleted then, and
--      the texts of drawn items when they expire (review.text_days).
-- Labels (review_labels) keep who and when; a reviewer labels or skips an item once.
-- Calibration records are versioned; applying one's threshold is opt-in and audited.

CREATE TABLE review_texts (
    request_id       text PRIMARY KEY,
    event_time       timestamptz NOT NULL,
    model            text NOT NULL,
    app              text NOT NULL,
    pool_probability double precision NOT NULL CHECK (pool_probability > 0 AND pool_probability <= 1),
    prompt           text NOT NULL,   -- NUL characters replaced (PostgreSQL text cannot hold them)
    response         text NOT NULL,
    sources          jsonb NOT NULL DEFAULT '[]',   -- the retrieval sources, a list of texts
    sink_batch       text NOT NULL,
    stored_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX review_texts_segment_time ON review_texts (model, app, event_time);

-- One draw per (segment, period): what was drawn from how many, with which design and seed.
CREATE TABLE review_samples (
    id            bigserial PRIMARY KEY,
    model         text NOT NULL,
    app           text NOT NULL,
    period_start  timestamptz NOT NULL,
    period_end    timestamptz NOT NULL,
    population    integer NOT NULL,          -- requests scored in the period (inference_scores)
    pool          integer NOT NULL,          -- of which the stream kept the text
    drawn         integer NOT NULL,
    budget        double precision NOT NULL,
    design        jsonb NOT NULL,            -- detectors, thresholds, shares, seed
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (model, app, period_start, period_end)
);

CREATE TABLE review_items (
    item_id               bigserial PRIMARY KEY,
    sample_id             bigint NOT NULL REFERENCES review_samples (id) ON DELETE CASCADE,
    request_id            text NOT NULL UNIQUE,
    event_time            timestamptz NOT NULL,
    model                 text NOT NULL,
    app                   text NOT NULL,
    inclusion_probability double precision NOT NULL
        CHECK (inclusion_probability > 0 AND inclusion_probability <= 1),
    reviewers_needed      smallint NOT NULL CHECK (reviewers_needed IN (1, 2)),
    scores                jsonb NOT NULL,    -- detector scores when drawn (hidden by default)
    expires_at            timestamptz NOT NULL,   -- its text is deleted then; labels stay
    created_at            timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX review_items_queue ON review_items (created_at, item_id);
-- The live items (expires_at in the future) by a range scan, however many expired ones pile up:
-- the queue (services/api/review_store.py) reads these only, then orders them by created_at.
CREATE INDEX review_items_live ON review_items (expires_at);
CREATE INDEX review_items_segment ON review_items (model, app, event_time);

CREATE TABLE review_labels (
    item_id     bigint NOT NULL REFERENCES review_items (item_id) ON DELETE CASCADE,
    reviewer    text NOT NULL,
    labels      jsonb NOT NULL,              -- {"toxic": false, "hallucinated": true, "helpful": 4}
    comment     text,
    labelled_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (item_id, reviewer)
);
CREATE INDEX review_labels_time ON review_labels (labelled_at);
CREATE INDEX review_labels_reviewer ON review_labels (reviewer);  -- a reviewer's progress

CREATE TABLE review_skips (
    item_id    bigint NOT NULL REFERENCES review_items (item_id) ON DELETE CASCADE,
    reviewer   text NOT NULL,
    skipped_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (item_id, reviewer)
);

-- One row per (run, detector, segment): a versioned calibration record.
CREATE TABLE calibration_records (
    version             bigserial PRIMARY KEY,
    detector            text NOT NULL,       -- a score of the metric registry, e.g. toxicity
    label               text NOT NULL,       -- the label it is checked against, e.g. toxic
    model               text NOT NULL,       -- '*' = every model
    app                 text NOT NULL,       -- '*' = every app
    period_start        timestamptz NOT NULL,
    period_end          timestamptz NOT NULL,
    computed_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    labelled            integer NOT NULL,    -- labelled items used
    doubly_labelled     integer NOT NULL,    -- items with two reviewers (for alpha)
    threshold           double precision,    -- the detector's threshold in force
    auc                 double precision,
    precision_at        double precision,    -- at the threshold in force
    recall_at           double precision,
    kappa               double precision,    -- detector flag vs human label
    kappa_low           double precision,
    kappa_high          double precision,
    alpha               double precision,    -- Krippendorff's alpha between reviewers
    raw_rate            double precision,    -- flagged share of every scored request
    corrected_rate      double precision,    -- Rogan-Gladen
    corrected_low       double precision,
    corrected_high      double precision,
    sensitivity         double precision,
    specificity         double precision,
    target              jsonb,               -- {"precision": 0.9} or {"recall": 0.9}
    suggested_threshold double precision,    -- meets the target, when one does
    calibration_map     jsonb,               -- {"method": "isotonic"|"platt", ...}
    reliability         jsonb,               -- [{"bin", "mean_score", "observed", "weight"}]
    details             jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX calibration_records_lookup ON calibration_records (detector, model, app, computed_at DESC);

-- Thresholds applied to the stream's flags (opt-in): who applied which version when.
CREATE TABLE calibration_applied (
    id          bigserial PRIMARY KEY,
    version     bigint NOT NULL REFERENCES calibration_records (version),
    detector    text NOT NULL,
    threshold   double precision NOT NULL,
    applied_by  text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    revoked_at  timestamptz,
    revoked_by  text              -- who revoked it, or who applied the version that replaced it
);
CREATE UNIQUE INDEX calibration_applied_one_live ON calibration_applied (detector)
    WHERE revoked_at IS NULL;

-- Calibration alerts (alerts.sink_batch 'calibration:<run>') acknowledged by Kafka: a run whose
-- alerts are not here yet is published again by the next calibration (the dispatcher's
-- idempotency key drops a second copy).
CREATE TABLE calibration_alert_publications (
    sink_batch   text PRIMARY KEY,
    alerts       integer NOT NULL,
    published_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Task metrics of a response against a user's correction (feedback.correction), computed by the
-- calibration job where the response's text was kept for review.
CREATE TABLE correction_scores (
    feedback_id text PRIMARY KEY,
    request_id  text NOT NULL,
    event_time  timestamptz NOT NULL,
    model       text NOT NULL,
    app         text NOT NULL,
    rouge_l_f   double precision,
    bleu        double precision,
    computed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX correction_scores_time ON correction_scores (event_time);

-- The dashboards read the statistics, never the texts nor who labelled what.
GRANT SELECT ON review_samples, calibration_records, calibration_applied, correction_scores
    TO parrotwatch_reader;
GRANT SELECT (item_id, model, app, event_time, inclusion_probability, reviewers_needed, created_at)
    ON review_items TO parrotwatch_reader;
GRANT SELECT (item_id, labelled_at) ON review_labels TO parrotwatch_reader;
