"""The HTTP request for one alert event and one receiver: generic webhook, Slack, Alertmanager v2.

Every request is a JSON ``POST`` carrying ``Idempotency-Key`` (the outbox key, the same on every
retry). Generic webhooks also carry the HMAC signature headers of
:mod:`parrotwatch.services.dispatcher.verify`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from parrotwatch.contracts.events import AlertEventV1
from parrotwatch.services.dispatcher.config import (
    AlertmanagerReceiver,
    Receiver,
    SlackReceiver,
    WebhookReceiver,
)
from parrotwatch.services.dispatcher.verify import sign

USER_AGENT = "parrotwatch-dispatcher/1"
_EMOJI = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}
_LABEL_NAME = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def build_request(receiver: Receiver, event: AlertEventV1, key: str, now: float | None = None) -> Request:
    """The request delivering ``event`` to ``receiver``; ``now`` (Unix s) signs and dates it."""
    now = time.time() if now is None else now
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "Idempotency-Key": key}
    if isinstance(receiver, WebhookReceiver):
        body = event.model_dump_json().encode()
        headers |= sign(receiver.secret_value(), body, now)
        return Request(str(receiver.url), body, headers)
    if isinstance(receiver, SlackReceiver):
        return Request(str(receiver.url), _json(slack_message(event)), headers)
    if isinstance(receiver, AlertmanagerReceiver):
        url = str(receiver.url).rstrip("/") + "/api/v2/alerts"
        return Request(url, _json([alertmanager_alert(event, receiver, now)]), headers)
    raise TypeError(f"unknown receiver type {type(receiver).__name__}")


def _json(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- Alertmanager v2 ------------------------------------------------------------------------------
def label_name(name: str) -> str:
    """A Prometheus label name (``[a-zA-Z_][a-zA-Z0-9_]*``) for an arbitrary key."""
    name = _LABEL_NAME.sub("_", name)
    return name if name and not name[0].isdigit() else f"_{name}"


def alertmanager_alert(event: AlertEventV1, receiver: AlertmanagerReceiver, now: float) -> dict:
    """One ``postableAlert`` of Alertmanager's v2 API.

    A firing alert gets ``endsAt = now + firing_ttl_s`` (Alertmanager would otherwise resolve it
    after its ``resolve_timeout``, 5 min by default); a resolved one its ``ends_at``, which lies in
    the past, so Alertmanager marks it resolved and notifies its own receivers.
    """
    labels = {label_name(k): v for k, v in event.labels.items() if v != ""}
    labels |= {"alertname": event.rule, "severity": event.severity, "alert_id": event.alert_id}
    annotations = {"summary": event.summary,
                   "evidence": json.dumps(event.evidence, sort_keys=True, default=str)}
    for name in ("value", "baseline", "threshold"):
        if (number := getattr(event, name)) is not None:
            annotations[name] = repr(number)
    if event.status == "resolved":
        ends = event.ends_at or datetime.fromtimestamp(now, UTC)
    else:
        sent = max(datetime.fromtimestamp(now, UTC), event.starts_at)
        ends = sent + timedelta(seconds=receiver.firing_ttl_s)
    alert = {"labels": labels, "annotations": annotations,
             "startsAt": rfc3339(event.starts_at), "endsAt": rfc3339(ends)}
    if receiver.generator_url:
        alert["generatorURL"] = receiver.generator_url.format(alert_id=event.alert_id, rule=event.rule)
    return alert


# -- Slack-compatible incoming webhook --------------------------------------------------------
def _esc(text: str) -> str:
    """Slack mrkdwn escaping: only &, < and > are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(event: AlertEventV1) -> dict:
    """``{"text", "blocks"}``: ``text`` is the notification fallback, ``blocks`` the layout."""
    state = "RESOLVED" if event.status == "resolved" else "FIRING"
    icon = ":white_check_mark:" if event.status == "resolved" else _EMOJI[event.severity]
    title = f"[{state}] {event.rule} ({event.severity})"
    fields = [f"*Severity*\n{event.severity}", f"*Status*\n{event.status}",
              f"*Started*\n{rfc3339(event.starts_at)}"]
    if event.ends_at is not None:
        fields.append(f"*Ended*\n{rfc3339(event.ends_at)}")
    if event.value is not None:
        fields.append(f"*Value*\n{event.value:.6g}")
    for name in ("baseline", "threshold"):
        if (number := getattr(event, name)) is not None:
            fields.append(f"*{name.title()}*\n{number:.6g}")
    labels = " ".join(f"`{_esc(k)}={_esc(v)}`" for k, v in sorted(event.labels.items()))
    return {
        "text": f"{icon} {_esc(title)}: {_esc(event.summary)}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} {_esc(event.summary)}"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": _esc(f)} for f in fields[:10]]},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": f"{labels} · alert `{_esc(event.alert_id)}`"}]},
        ],
    }
