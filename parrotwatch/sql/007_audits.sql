-- Audit jobs (issue 4): one row per run of an audit spec, its summary metrics, and a bounded set of
-- per-sample scores (at most the spec's storage.max_samples_per_audit rows per run and audit, kept for
-- the newest storage.sample_runs_kept runs of each spec; metrics are kept for every run).

CREATE TABLE audit_runs (
    id             bigserial PRIMARY KEY,
    spec_name      text NOT NULL,
    spec_hash      text NOT NULL,             -- sha256 of the validated spec as canonical JSON
    spec           jsonb NOT NULL,
    trigger        text NOT NULL CHECK (trigger IN ('manual', 'schedule')),
    status         text NOT NULL CHECK (status IN ('scheduled', 'running', 'succeeded', 'failed', 'skipped')),
    scheduled_for  timestamptz,               -- the cron time a scheduled run fired for
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at     timestamptz,
    finished_at    timestamptz,
    host           text,
    pid            integer,
    error          text,                      -- failed: the exception; skipped: why
    report_path    text
);
CREATE INDEX audit_runs_spec_time ON audit_runs (spec_name, created_at DESC);
CREATE INDEX audit_runs_status ON audit_runs (status) WHERE status IN ('scheduled', 'running');

CREATE TABLE audit_metrics (
    run_id    bigint NOT NULL REFERENCES audit_runs (id) ON DELETE CASCADE,
    audit     text NOT NULL,                  -- canary_exposure, membership, extraction, regurgitation
    metric    text NOT NULL,                  -- e.g. auc, exposure_mean, extractable_rate
    value     double precision,
    ci_low    double precision,               -- 95% interval where the metric has one
    ci_high   double precision,
    labels    jsonb NOT NULL DEFAULT '{}',    -- e.g. {"method": "loss"}, {"repetitions": "16"}
    PRIMARY KEY (run_id, audit, metric, labels)
);

CREATE TABLE audit_samples (
    run_id     bigint NOT NULL REFERENCES audit_runs (id) ON DELETE CASCADE,
    audit      text NOT NULL,
    sample_id  text NOT NULL,
    label      text NOT NULL CHECK (label IN ('member', 'non-member', 'canary', 'output', 'generation')),
    score      double precision,              -- higher = more memorised; what it is: see docs/audits.md
    extra      jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, audit, sample_id)
);
