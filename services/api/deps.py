"""Dependencies of the routes, as ``Annotated`` aliases; tests override the ``get_*`` functions.

``create_app`` puts the settings, the producer and the metrics on ``app.state``; the routes
reach them only through these dependencies, so ``app.dependency_overrides[get_settings]`` and
``app.dependency_overrides[get_producer]`` replace them everywhere.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from parrotwatch.services.api.metrics import ApiMetrics
from parrotwatch.services.api.producer import EventSink
from parrotwatch.settings import Settings


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
