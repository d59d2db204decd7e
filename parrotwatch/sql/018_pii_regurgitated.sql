-- PII leakage in the stream (issue 17): PII spans of a response inside a verbatim run of the
-- training-corpus index. The drill-down marks them in pii_entities ("in_corpus": true).
ALTER TABLE inference_scores ADD COLUMN pii_regurgitated double precision;
