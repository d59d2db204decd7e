-- The alert evaluator's state as explicit, versioned JSON (detectors.alerting.Evaluator.to_state)
-- instead of a pickle: loading a pickle runs code (anyone who can write this table could run it
-- in the job) and breaks on any change of the classes it names. A pickled row cannot be read
-- safely, so it is not read at all: it becomes a version-0 marker that says why, which the job
-- logs when it next loads the state before starting the evaluator afresh
-- (streaming.alerting.restore_evaluator). Rows are kept so rules_hash stays as it was.

ALTER TABLE alert_evaluator_state
    ALTER COLUMN state TYPE jsonb USING jsonb_build_object(
        'version', 0,
        'dropped', 'a pickled state from before migration 010, not read back: pickles are unsafe'
    );

ALTER TABLE alert_evaluator_state
    ADD CONSTRAINT alert_evaluator_state_versioned
    CHECK (jsonb_typeof(state) = 'object' AND jsonb_typeof(state -> 'version') = 'number');

COMMENT ON COLUMN alert_evaluator_state.state IS
    'detectors.alerting.Evaluator.to_state(): versioned JSON, {"version": n, ...}';
