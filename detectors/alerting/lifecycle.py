"""Alert lifecycle per fingerprint: inactive -> pending -> firing -> resolved, in event time.

The semantics of Prometheus alerting rules (a condition must hold for ``for`` evaluations
before the alert fires) and of Alertmanager's ``repeat_interval`` (renotify), driven by
closed windows instead of wall-clock evaluations, plus hysteresis on resolution: the alert
resolves only after ``resolve_after`` clear windows in a row. Events are plain dicts with
exactly the keys of ``AlertEventV1`` (parrotwatch/contracts/events.py). A tracker's state is
versioned JSON (``to_state()`` / ``from_state()``, ``parrotwatch.detectors.alerting.state``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from parrotwatch.detectors.alerting.state import Snapshot, StateError


def fingerprint(rule: str, labels: Mapping[str, str]) -> str:
    """The alert id of a rule and segment: a pure function of its inputs.

    ``sha256(json([rule, sorted((key, value) of labels)]))`` as hex, first 16 characters
    (64 bits); no process state such as Python's salted ``hash()`` is involved.
    """
    payload = json.dumps([rule, sorted((str(k), str(v)) for k, v in labels.items())], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def rfc3339(moment: datetime) -> str:
    """An aware datetime as RFC 3339 text in UTC, e.g. ``2026-01-01T12:03:00Z``."""
    if moment.tzinfo is None:
        raise ValueError("window times must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def plain(value: Any) -> Any:
    """JSON-safe copy: non-finite floats -> None, datetimes -> RFC 3339, numpy scalars -> Python."""
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class Observation:
    """What one rule saw in one closed window of one segment.

    ``condition`` is ``True`` (bad), ``False`` (clear) or ``None`` (no data: counts as clear
    and breaks a pending streak). ``p_value`` marks a test that takes part in the FDR control.
    """

    window_start: datetime
    window_end: datetime
    condition: bool | None
    value: float | None = None
    baseline: float | None = None
    threshold: float | None = None
    p_value: float | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)


class _Missing:
    """A template field without a value: renders as ``n/a`` whatever the format spec."""

    def __format__(self, spec: str) -> str:
        return "n/a"


class _Fields(dict):
    def __missing__(self, key: str) -> _Missing:
        return _Missing()


class AlertTracker(Snapshot):
    """State machine of one alert (one rule and one segment), fed one Observation per window.

    A bad window moves inactive -> pending; ``for_windows`` bad windows in a row fire (one
    ``firing`` event, ``starts_at`` = start of the first bad window); while firing, a repeat
    only once ``renotify`` has passed since the last message; ``resolve_after`` clear windows
    in a row resolve it (one ``resolved`` event, ``ends_at`` = end of the last bad window).
    Windows at or before the last one seen are ignored, so a replayed batch repeats nothing.
    """

    _PARAMS = {"rule": "str", "labels": "labels", "severity": "str", "for_windows": "int",
               "resolve_after": "int", "renotify": "micros?", "summary": "str"}
    _VARS = {"_state": "str", "_streak": "count", "_clear": "count", "_started": "time?",
             "_last_bad_end": "time?", "_last_sent": "time?", "_last_end": "time?"}

    def __init__(
        self,
        rule: str,
        labels: Mapping[str, str],
        severity: str = "warning",
        for_windows: int = 1,
        resolve_after: int = 1,
        renotify: timedelta | None = None,
        summary: str = "{rule} on {model}/{app}: {metric} is {value:.4g}.",
    ) -> None:
        if for_windows < 1 or resolve_after < 1:
            raise ValueError("for_windows and resolve_after must be at least 1")
        self.rule, self.labels, self.severity = rule, dict(labels), severity
        self.for_windows, self.resolve_after, self.renotify, self.summary = (
            for_windows,
            resolve_after,
            renotify,
            summary,
        )
        self.alert_id = fingerprint(rule, self.labels)
        self._last_end: datetime | None = None
        self.reset()

    def reset(self) -> None:
        """Back to inactive (the last window seen is kept, so old windows stay ignored)."""
        self._state, self._streak, self._clear = "inactive", 0, 0
        self._started: datetime | None = None
        self._last_bad_end: datetime | None = None
        self._last_sent: datetime | None = None

    def _check_state(self, where: str) -> None:
        """What ``observe`` and ``_event`` rely on: an open alert has its times."""
        if self._state not in ("inactive", "pending", "firing"):
            raise StateError(f"{where}.vars.state: unknown lifecycle state {self._state!r:.40}")
        needed = {"pending": ("_started", "_last_bad_end", "_last_end"),
                  "firing": ("_started", "_last_bad_end", "_last_end", "_last_sent")}
        missing = [a.lstrip("_") for a in needed.get(self._state, ()) if getattr(self, a) is None]
        if missing:
            raise StateError(f"{where}.vars: a {self._state} alert needs {', '.join(missing)}")

    @property
    def state(self) -> str:
        """``inactive``, ``pending`` or ``firing``."""
        return self._state

    @property
    def last_window_end(self) -> datetime | None:
        """End of the last window observed."""
        return self._last_end

    def observe(self, obs: Observation) -> list[dict[str, Any]]:
        """Advance by one window; return the events it causes (zero or one AlertEventV1 dict)."""
        if self._last_end is not None and obs.window_end <= self._last_end:
            return []
        self._last_end = obs.window_end
        if obs.condition is True:
            self._clear, self._last_bad_end = 0, obs.window_end
            if self._state == "inactive":
                self._state, self._streak, self._started = "pending", 0, obs.window_start
            self._streak += 1
            if self._state == "pending" and self._streak >= self.for_windows:
                self._state, self._last_sent = "firing", obs.window_end
                return [self._event("firing", obs)]
            firing, every = self._state == "firing", self.renotify
            if firing and every is not None and obs.window_end - self._last_sent >= every:
                self._last_sent = obs.window_end
                return [self._event("firing", obs, repeat=True)]
            return []
        if self._state == "pending":
            self.reset()
        elif self._state == "firing":
            self._clear += 1
            if self._clear >= self.resolve_after:
                event = self._event("resolved", obs)
                self.reset()
                return [event]
        return []

    def _event(self, status: str, obs: Observation, repeat: bool = False) -> dict[str, Any]:
        """An AlertEventV1 dict for the current incident and ``obs``."""
        evidence = {
            **obs.evidence,
            "value": obs.value,
            "baseline": obs.baseline,
            "threshold": obs.threshold,
            "p_value": obs.p_value,
            "window": {"start": obs.window_start, "end": obs.window_end},
        }
        if repeat:
            evidence["renotify"] = True
        ends_at = self._last_bad_end if status == "resolved" else None
        return plain(
            {
                "alert_id": self.alert_id,
                "rule": self.rule,
                "status": status,
                "severity": self.severity,
                "labels": self.labels,
                "starts_at": self._started,
                "ends_at": ends_at,
                "value": obs.value,
                "baseline": obs.baseline,
                "threshold": obs.threshold,
                "summary": self._summary(status, obs),
                "evidence": evidence,
            }
        )

    def _summary(self, status: str, obs: Observation) -> str:
        """One sentence: the rule's template when firing, a fixed one when resolved."""
        fields = _Fields({**obs.evidence, **self.labels, "rule": self.rule, "severity": self.severity})
        fields.update({k: getattr(obs, k) for k in ("value", "baseline", "threshold", "p_value")})
        fields = _Fields({k: (_Missing() if v is None else v) for k, v in fields.items()})
        if status == "resolved":
            return "{rule} on {model}/{app} resolved: {metric} is back to {value:.4g}.".format_map(fields)
        try:
            return self.summary.format_map(fields)
        except (ValueError, TypeError, IndexError, AttributeError):
            return "{rule} on {model}/{app}: {metric} is {value:.4g}.".format_map(fields)
