"""OpenAPI documentation of the event bodies, which the routes read themselves (as raw bytes).

The routes parse the body by hand (to enforce byte limits and forward events as received), so
FastAPI cannot infer the request schema: each route declares it with :func:`event_body`, and
:func:`install_event_schemas` adds the referenced v1 models to ``components.schemas``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from parrotwatch.contracts import FeedbackEventV1, InferenceEventV1
from parrotwatch.services.api.errors import ErrorPublic, RejectedPublic

_REF = "#/components/schemas/{model}"

#: the documented refusals of the ingestion routes (``responses=`` of their decorators)
REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "Missing or wrong API key."},
    413: {"model": ErrorPublic, "description": "Request body or one event over its byte limit; "
          "the message names the limit."},
    422: {"model": RejectedPublic, "description": "The body is not usable JSON (too deep, an "
          "integer beyond 64 bits), the batch has more events than `maxItems`, or an event "
          "breaks the contract; `loc` names the index and field. The first 50 errors are "
          "listed, the rest counted."},
    503: {"model": ErrorPublic, "description": "Kafka unavailable; nothing was accepted. Retry "
          "the same request after `Retry-After` seconds."},
}


def event_body(model: type[BaseModel], example: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a route taking one ``model`` object or a non-empty array of them."""
    ref = {"$ref": _REF.format(model=model.__name__)}
    schema = {"anyOf": [ref, {"type": "array", "items": ref, "minItems": 1}]}
    examples = {
        "single": {"summary": "One event", "value": example},
        "batch": {"summary": "A batch (a JSON array of events)", "value": [example]},
    }
    content = {"application/json": {"schema": schema, "examples": examples}}
    return {"requestBody": {"required": True, "content": content}}


def install_event_schemas(app: FastAPI) -> None:
    """Make ``app.openapi()`` include the v1 event models referenced by :func:`event_body`."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes,
            )
            _, defs = models_json_schema(
                [(InferenceEventV1, "validation"), (FeedbackEventV1, "validation")],
                ref_template=_REF,
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(defs["$defs"])
            _limit_batches(schema, app.state.settings.max_batch_events)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _limit_batches(schema: dict[str, Any], max_items: int) -> None:
    """``maxItems`` on every batch body: the routes are declared before settings exist."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            for option in content.get("application/json", {}).get("schema", {}).get("anyOf", ()):
                if option.get("type") == "array":
                    option["maxItems"] = max_items
