-- Languages (issue 18): the language identified in each response, and whether the detectors that
-- read only some languages could read it (1: the score is null for that reason, 0: scored, null:
-- the detector did not run). Their window means are the share of traffic each cannot read.
ALTER TABLE inference_scores ADD COLUMN toxicity_unread double precision;
ALTER TABLE inference_scores ADD COLUMN hallucination_unread double precision;
ALTER TABLE inference_scores ADD COLUMN language text;  -- ISO 639-1, or 'und' (undetermined)
CREATE INDEX inference_scores_language ON inference_scores (language, event_time);
