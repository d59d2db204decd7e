-- The `regurgitation` score: longest verbatim overlap with the training-corpus index, in tokens
-- (null when no index is configured).
ALTER TABLE inference_scores ADD COLUMN regurgitation double precision;
