-- Dead letters are bounded: a record's head (16 KiB) is kept with its whole size and SHA-256
-- (the record itself stays on its source topic at its partition and offset), and the stage that
-- rejected it: parse, score, build (its row did not convert) or store (a sink write refused it).
ALTER TABLE dead_letters ADD COLUMN payload_bytes bigint;
ALTER TABLE dead_letters ADD COLUMN payload_sha256 text;
ALTER TABLE dead_letters ADD COLUMN stage text;
