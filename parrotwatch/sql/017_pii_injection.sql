-- PII and prompt injection (issue 16): per-request counts and scores, and their drill-down (the
-- PII types and offsets, never the values; the nearest known attack of an injection).
ALTER TABLE inference_scores ADD COLUMN pii_count double precision;
ALTER TABLE inference_scores ADD COLUMN injection_score double precision;
ALTER TABLE request_drilldown ADD COLUMN pii_entities jsonb;     -- [{side, type, start, end}]
ALTER TABLE request_drilldown ADD COLUMN injection_match jsonb;  -- {family, nearest_id, similarity, chunk}
