"""Alert dispatcher: Kafka ``llm.alerts.v1`` -> signed webhooks, Slack, Alertmanager v2.

Flow: :mod:`.consumer` validates each alert event (:mod:`.records`: what cannot be stored is a
dead letter) and writes one row per matching receiver into the PostgreSQL outbox
(``alert_outbox``) in one transaction, then commits the Kafka offset; :mod:`.worker` delivers due
rows, one lane per receiver with its own concurrency, leasing rows so that no transaction is
open during an HTTP call, with retries (exponential backoff, full jitter, RFC 9110
``Retry-After``, see :mod:`.retry`) and every attempt in ``alert_delivery_log``;
:mod:`.retention` deletes settled history. Receivers come from a strict YAML file
(:mod:`.config`); request bodies from :mod:`.payloads`. Operators' guide: ``docs/dispatcher.md``.

Guarantees: nothing is lost while a receiver is down (the outbox is durable and retried for about
24 minutes with the defaults, then the row is marked ``dead`` and logged as an error, and
``--requeue-dead`` sends it again); copies of one alert transition collapse on the idempotency key
sha256(alert_id, status, starts_at, receiver), sent as the ``Idempotency-Key`` header; delivery is
at-least-once, so a receiver that must act exactly once deduplicates on that header.

Generic webhooks are signed, Stripe-style: ``X-Parrotwatch-Timestamp: <unix seconds>`` and
``X-Parrotwatch-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>``; receivers check
them with :func:`parrotwatch.services.dispatcher.verify.verify_signature` (5-minute replay window).

Run: ``python -m parrotwatch.services.dispatcher --receivers receivers.yaml``.
"""
