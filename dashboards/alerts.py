"""Alerts: what fired and resolved, per rule and segment, and how the dispatcher delivered it.
The alerts themselves are also drawn as annotations on every time series of every dashboard."""

from __future__ import annotations

from parrotwatch.dashboards.common import ALERTS_ANNOTATION, SEGMENT_VARIABLES
from parrotwatch.dashboards.grafana import Dashboard, Panel, Query, Row, Variable

ALERT_ID = Variable("alert_id", "Alert id", "textbox",
                    description="One alert fingerprint (empty: all). Alertmanager's generator URL "
                    "links here with it.")
# Latest transition of each incident (alert_id, starts_at) that overlaps the time range.
_INCIDENTS = """
(SELECT DISTINCT ON (alert_id, starts_at) * FROM alerts
 WHERE starts_at <= $__timeTo() ORDER BY alert_id, starts_at, id DESC) a
WHERE coalesce(a.ends_at, now()) >= $__timeFrom()
  AND (a.model IS NULL OR a.model IN ($model)) AND (a.app IS NULL OR a.app IN ($app))
  AND ('$alert_id' = '' OR a.alert_id = '$alert_id')"""
_OUTBOX_SEGMENT = ("(o.event->'labels'->>'model' IS NULL OR o.event->'labels'->>'model' IN ($model))"
                   " AND (o.event->'labels'->>'app' IS NULL OR o.event->'labels'->>'app' IN ($app))")

STATE = Row("Incidents", (
    Panel("Firing now", "stat", (Query(f"""
SELECT count(*) FILTER (WHERE a.status = 'firing' AND NOT (a.event->'labels' ? 'replay')) AS firing
FROM {_INCIDENTS}""", "table"),),
          ("alerts",), "Incidents in the range whose latest transition is `firing` (replayed history "
          "from `parrotwatch backfill` left out).", width=6,
          height=6),
    Panel("Alert transitions per rule", "timeseries", (Query("""
SELECT $__timeGroupAlias(at, $__interval), rule || ' ' || status AS metric,
       count(*) AS transitions
FROM (SELECT coalesce(ends_at, starts_at) AS at, * FROM alerts) t
WHERE $__timeFilter(at)
  AND (model IS NULL OR model IN ($model)) AND (app IS NULL OR app IN ($app))
  AND ('$alert_id' = '' OR alert_id = '$alert_id')
GROUP BY 1, 2 ORDER BY 1, 2"""),), ("alerts",),
          "Firing transitions at starts_at, resolved ones at ends_at (event time).", width=18,
          height=6, draw="bars"),
    Panel("Alerts", "table", (Query(f"""
SELECT a.starts_at AS "time", a.ends_at, a.status, a.severity, a.rule, a.model, a.app, a.metric,
       a.value, coalesce(a.baseline, a.threshold) AS baseline_or_threshold, a.summary, a.alert_id
FROM {_INCIDENTS}
ORDER BY a.starts_at DESC LIMIT 200""", "table"),), ("alerts",),
          "Latest state of each incident overlapping the time range.", width=24, height=10),
))

DELIVERY = Row("Delivery (services/dispatcher)", (
    Panel("Delivery attempts by receiver and outcome", "timeseries", (Query(f"""
SELECT $__timeGroupAlias(l.attempted_at, $__interval), l.receiver || ' ' || l.outcome AS metric,
       count(*) AS attempts
FROM alert_delivery_log l JOIN alert_outbox o USING (idempotency_key)
WHERE $__timeFilter(l.attempted_at) AND {_OUTBOX_SEGMENT}
GROUP BY 1, 2 ORDER BY 1, 2"""),), ("alert_delivery_log", "alert_outbox"), draw="bars"),
    Panel("Outbox by receiver and state", "table", (Query(f"""
SELECT o.receiver, o.state, count(*) AS deliveries, max(o.attempts) AS max_attempts,
       max(o.delivered_at) AS last_delivered, (array_agg(o.last_error ORDER BY o.seq DESC)
         FILTER (WHERE o.last_error IS NOT NULL))[1] AS last_error
FROM alert_outbox o WHERE $__timeFilter(o.created_at) AND {_OUTBOX_SEGMENT}
GROUP BY 1, 2 ORDER BY 1, 2""", "table"),), ("alert_outbox",),
          "`dead` deliveries wait for `python -m parrotwatch.services.dispatcher --requeue-dead`."),
))

ALERTS = Dashboard("parrotwatch-alerts", "Parrotwatch / Alerts",
                   "Alert transitions from the stream's rules, and their delivery.",
                   (STATE, DELIVERY), (*SEGMENT_VARIABLES, ALERT_ID), (ALERTS_ANNOTATION,))
