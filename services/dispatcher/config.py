"""The receivers file: where alerts go and how hard to try. Strict: an unknown key is an error
naming the valid keys. Annotated example: ``services/dispatcher/receivers.example.yaml``.
"""

from __future__ import annotations

import fnmatch
import os
import typing
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, ValidationError, model_validator

from parrotwatch.contracts.events import AlertEventV1

Severity = Literal["info", "warning", "critical"]
Positive = Annotated[float, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """Which alerts a receiver gets; every given condition must hold. Empty: every alert."""

    severity: list[Severity] | None = None
    rules: list[str] | None = Field(default=None, description="Rule names (fnmatch patterns).")
    labels: dict[str, str] = Field(default_factory=dict, description="Label -> fnmatch pattern.")
    status: list[Literal["firing", "resolved"]] | None = None

    def matches(self, event: AlertEventV1) -> bool:
        if self.severity is not None and event.severity not in self.severity:
            return False
        if self.status is not None and event.status not in self.status:
            return False
        if self.rules is not None and not any(fnmatch.fnmatchcase(event.rule, p) for p in self.rules):
            return False
        return all(fnmatch.fnmatchcase(event.labels.get(k, ""), p) for k, p in self.labels.items())


class _Receiver(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    url: HttpUrl
    match: Match = Field(default_factory=Match)
    timeout_s: Positive = Field(default=10.0, le=600, description=(
        "Hard limit on one attempt: connect, send and the whole answer. A receiver that accepts "
        "and never answers (or answers a byte at a time) costs this much, then the attempt is "
        "retried."))
    connect_timeout_s: Positive = Field(default=5.0, le=600,
                                        description="Limit on the TCP/TLS connect alone.")
    concurrency: int | None = Field(default=None, ge=1, le=64, description=(
        "Requests in flight to this receiver at most (default: delivery.workers). Each receiver "
        "has its own: a dead receiver only ever holds its own."))


    def max_in_flight(self, policy: DeliveryPolicy) -> int:
        return self.concurrency or policy.workers


class WebhookReceiver(_Receiver):
    """Generic JSON webhook, HMAC-signed (see :mod:`parrotwatch.services.dispatcher.verify`)."""

    kind: Literal["webhook"]
    secret: SecretStr | None = None
    secret_env: str | None = Field(default=None, description="Environment variable holding it.")

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookReceiver:
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError(f"webhook receiver {self.name!r} needs exactly one of 'secret' or "
                             "'secret_env'")
        if self.secret_env is not None and not os.environ.get(self.secret_env):
            raise ValueError(f"webhook receiver {self.name!r}: environment variable "
                             f"{self.secret_env} (secret_env) is unset or empty")
        return self

    def secret_value(self) -> str:
        return self.secret.get_secret_value() if self.secret else os.environ[self.secret_env or ""]


class SlackReceiver(_Receiver):
    """Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat...)."""

    kind: Literal["slack"]


class AlertmanagerReceiver(_Receiver):
    """Prometheus Alertmanager; alerts are POSTed to ``{url}/api/v2/alerts``."""

    kind: Literal["alertmanager"]
    firing_ttl_s: Positive = Field(
        default=86_400.0,
        description="endsAt of a firing alert = delivery time + this. Alertmanager resolves an alert "
        "by itself at endsAt (or after its resolve_timeout when endsAt is absent), and we send one "
        "firing message per incident (plus renotify), so this must outlast the longest incident.")
    generator_url: str | None = Field(
        default=None, description="generatorURL template; {alert_id} and {rule} are filled in.")


Receiver = Annotated[WebhookReceiver | SlackReceiver | AlertmanagerReceiver, Field(discriminator="kind")]
KINDS: dict[str, type[_Receiver]] = {"webhook": WebhookReceiver, "slack": SlackReceiver,
                                     "alertmanager": AlertmanagerReceiver}


class DeliveryPolicy(_Strict):
    """Retries: attempt n (1-based) failed -> wait uniform(0, min(cap, base * 2**(n-1))) s
    ("full jitter"); after ``max_attempts`` the delivery is marked dead and logged as an error.
    The defaults keep retrying for about 24 minutes on average (see ``retry.expected_window_s``)."""

    max_attempts: int = Field(default=50, ge=1)
    backoff_base_s: Positive = 1.0
    backoff_cap_s: Positive = 60.0
    workers: int = Field(default=4, ge=1, le=64, description=(
        "Requests in flight per receiver, unless the receiver sets 'concurrency'."))
    poll_interval_s: Positive = 0.5
    lease_margin_s: Positive = Field(default=15.0, description=(
        "A claimed delivery is leased for the receiver's timeout_s plus this; a dispatcher that "
        "dies mid-call leaves the row to be claimed again once the lease ends."))
    consumer_group: str = Field(default="parrotwatch-dispatcher",
                                description="Kafka consumer group (prefixed with the topic prefix).")
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        default="earliest", description="Where a new consumer group starts in llm.alerts.v1.")


class Retention(_Strict):
    """How long settled history is kept; the dispatcher deletes older rows every ``interval_s``
    (``services/dispatcher/retention.py``). Pending deliveries are never deleted. 0 days: keep
    forever."""

    outbox_days: float = Field(default=30.0, ge=0, description=(
        "Delivered and dead outbox rows, by the time they settled (their log rows go with them)."))
    delivery_log_days: float = Field(default=30.0, ge=0, description="alert_delivery_log rows by age.")
    dead_letters_days: float = Field(default=30.0, ge=0, description=(
        "dead_letters rows of the alerts topic (records the dispatcher could not use), by age."))
    interval_s: Positive = Field(default=3600.0, description="Seconds between two runs.")
    batch_rows: int = Field(default=5000, ge=1, description="Rows per DELETE (short transactions).")


class ReceiversFile(_Strict):
    receivers: list[Receiver] = Field(min_length=1)
    delivery: DeliveryPolicy = Field(default_factory=DeliveryPolicy)
    retention: Retention = Field(default_factory=Retention)

    @model_validator(mode="after")
    def _unique_names(self) -> ReceiversFile:
        names = [r.name for r in self.receivers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"receiver names must be unique; repeated: {dupes}")
        return self


class ConfigError(ValueError):
    """The receivers file is invalid; the message names the file, the key and the valid keys."""


def parse_receivers(data: object, source: str = "<receivers>") -> ReceiversFile:
    try:
        return ReceiversFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid receivers file:\n" + "\n".join(
            _describe(err) for err in exc.errors(include_url=False))) from None


def load_receivers(path: str | Path) -> ReceiversFile:
    """Read and validate a receivers YAML file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read receivers file: {exc}") from None
    return parse_receivers(data, str(path))


def _describe(err: dict) -> str:
    loc = err["loc"]
    if err["type"] == "extra_forbidden":
        valid = sorted(_model_at(loc[:-1]).model_fields)
        return f"  {_where(loc[:-1])}: unknown key {loc[-1]!r}; valid keys: {', '.join(valid)}"
    if err["type"] == "union_tag_invalid":
        return f"  {_where(loc)}: 'kind' must be one of {', '.join(KINDS)}"
    return f"  {_where(loc)}: {err['msg']}"


def _where(loc: tuple) -> str:
    """``('receivers', 0, 'slack', 'match')`` -> ``receivers[0] (slack).match``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in KINDS and text.endswith("]"):
            text += f" ({part})"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _model_at(loc: tuple) -> type[BaseModel]:
    """The model whose keys are validated at ``loc`` (pydantic puts the union tag in ``loc``)."""
    model: type[BaseModel] = ReceiversFile
    for part in loc:
        if isinstance(part, int):
            continue
        if part in KINDS and part not in model.model_fields:
            model = KINDS[part]
            continue
        model = _first_model(model.model_fields[part].annotation) or model
    return model


def _first_model(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if (found := _first_model(arg)) is not None:
            return found
    return None
