"""Dependencies of the routes, as ``Annotated`` aliases; tests override the ``get_*`` functions.

``create_app`` puts the settings, the producer and the metrics on ``app.state``; the routes
reach them only through these dependencies, so ``app.dependency_overrides[get_settings]`` and
``app.dependency_overrides[get_producer]`` replace them everywhere.
"""

from __future__ import annotations

import functools
import hmac
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from parrotwatch.contracts.review_labels import LabelSchema, LabelSchemaError, load_label_schema
from parrotwatch.services.api.metrics import ApiMetrics
from parrotwatch.services.api.producer import EventSink
from parrotwatch.settings import Settings
from parrotwatch.stack.urls import database_url


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_producer(request: Request) -> EventSink:
    producer = getattr(request.app.state, "producer", None)
    if producer is None:
        raise RuntimeError(
            "No producer on app.state: it is made in the app's lifespan, so serve the app with "
            "uvicorn or enter it with 'with TestClient(app):'"
        )
    return producer


def get_metrics(request: Request) -> ApiMetrics:
    return request.app.state.metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
ProducerDep = Annotated[EventSink, Depends(get_producer)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]

_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="One of the keys in PARROTWATCH_API_KEYS."
)
_bearer = HTTPBearer(
    auto_error=False, description="`Authorization: Bearer <key>`, the same keys as X-API-Key."
)


def _matches(candidate: str, settings: Settings) -> bool:
    sent = candidate.encode("utf-8")
    matched = False
    for key in settings.api_keys:  # no early exit: the time does not tell which key matched
        matched |= hmac.compare_digest(sent, key.get_secret_value().encode("utf-8"))
    return matched


def require_api_key(
    request: Request,
    settings: SettingsDep,
    metrics: MetricsDep,
    api_key: Annotated[str | None, Security(_api_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> None:
    """401 unless ``X-API-Key`` or ``Authorization: Bearer`` carries a configured key."""
    candidate = api_key if api_key is not None else (bearer.credentials if bearer else None)
    if candidate and _matches(candidate, settings):
        return
    if not settings.api_keys:
        detail = ("This server has no API keys configured (PARROTWATCH_API_KEYS is an empty "
                  "list), so it refuses every request; configure at least one key.")
    elif not candidate:
        detail = ("Missing API key: send it in the X-API-Key header or as "
                  "'Authorization: Bearer <key>'.")
    else:
        detail = ("Invalid API key: it is not one of the keys configured in "
                  "PARROTWATCH_API_KEYS; check it for typos or ask the operator for a key.")
    metrics.reject(request.url.path, "unauthorized")
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


ApiKeyDep = Annotated[None, Depends(require_api_key)]


# -- human review (routes/review.py) ---------------------------------------------------------

_reviewer_header = APIKeyHeader(
    name="X-Reviewer-Key", auto_error=False, scheme_name="ReviewerKey",
    description="A reviewer's key: one of the values of PARROTWATCH_REVIEWER_KEYS.")
_reviewer_bearer = HTTPBearer(
    auto_error=False, scheme_name="ReviewerBearer",
    description="`Authorization: Bearer <reviewer key>`, the same keys as X-Reviewer-Key.")


def _reviewer_named(candidate: str, settings: Settings) -> str | None:
    sent, found = candidate.encode("utf-8"), None
    for name, key in settings.reviewer_keys.items():  # no early exit, as in _matches
        if hmac.compare_digest(sent, key.get_secret_value().encode("utf-8")):
            found = name
    return found


def require_reviewer(
    settings: SettingsDep,
    reviewer_key: Annotated[str | None, Security(_reviewer_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_reviewer_bearer)] = None,
) -> str:
    """The name of the reviewer whose key came in ``X-Reviewer-Key`` or ``Authorization:
    Bearer``; 503 when no reviewer is configured, 401 otherwise. Ingestion keys do not count."""
    if not settings.reviewer_keys:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="Human review is off: no reviewer keys are configured. Set "
                   "PARROTWATCH_REVIEWER_KEYS to a JSON object of reviewer name -> key, e.g. "
                   "'{\"alice\": \"<key>\"}', and restart the API.")
    candidate = reviewer_key if reviewer_key is not None else (
        bearer.credentials if bearer else None)
    name = _reviewer_named(candidate, settings) if candidate else None
    if name is not None:
        return name
    detail = ("Missing reviewer key: send it in the X-Reviewer-Key header or as "
              "'Authorization: Bearer <key>'." if not candidate else
              "Invalid reviewer key: it is not one of PARROTWATCH_REVIEWER_KEYS (ingestion API "
              "keys are not reviewer keys); check it for typos or ask the operator for one.")
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail,
                        headers={"WWW-Authenticate": "Bearer"})


def get_database_url(settings: SettingsDep) -> str | None:
    """The review database: ``settings.database_url``, else the local embedded server's URL
    (``parrotwatch up`` passes the URL to the API it starts). ``None`` = no database."""
    if settings.database_url:
        return settings.database_url
    return database_url(settings)


def require_database(url: Annotated[str | None, Depends(get_database_url)]) -> str:
    if not url:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="Human review needs the database and none is configured: set "
                   "PARROTWATCH_DATABASE_URL, or start the local stack with `parrotwatch up`.")
    return url


def get_label_schema(settings: SettingsDep) -> LabelSchema:
    """The label schema of ``settings.review_labels`` (cached per path); 503 saying what to fix
    when it is broken, so that ingestion keeps running while review waits for the fix."""
    try:
        return _schema_at(settings.review_labels)
    except LabelSchemaError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from exc


@functools.lru_cache(maxsize=8)
def _schema_at(path: Path | None) -> LabelSchema:
    return load_label_schema(path)


ReviewerDep = Annotated[str, Depends(require_reviewer)]
DatabaseDep = Annotated[str, Depends(require_database)]
LabelSchemaDep = Annotated[LabelSchema, Depends(get_label_schema)]
