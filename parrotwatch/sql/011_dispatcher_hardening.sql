-- Alert dispatcher hardening (services/dispatcher, docs/dispatcher.md).
--
-- Leases instead of row locks held across HTTP calls: a delivery is claimed in a short
-- transaction (locked_until = now + the receiver's timeout + a margin, claimed_by = a token unique
-- to that claim), committed, sent, and its outcome recorded in another short transaction that
-- only applies while claimed_by still holds the token. A lease that expires (the dispatcher
-- died mid-call) makes the row claimable again: at-least-once, receivers deduplicate on the
-- Idempotency-Key header.
ALTER TABLE alert_outbox
    ADD COLUMN locked_until timestamptz,
    ADD COLUMN claimed_by   text,
    ADD COLUMN settled_at   timestamptz;          -- when the row became delivered or dead

UPDATE alert_outbox SET settled_at = COALESCE(delivered_at, next_attempt_at)
WHERE state <> 'pending';

-- Retention (services/dispatcher/retention.py) deletes settled rows by age.
CREATE INDEX alert_outbox_settled ON alert_outbox (settled_at) WHERE state <> 'pending';
-- The claim's "earlier transition of this alert still pending" check, per receiver.
CREATE INDEX alert_outbox_due_receiver ON alert_outbox (receiver, next_attempt_at) WHERE state = 'pending';
