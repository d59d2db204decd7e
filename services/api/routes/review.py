"""Human review (docs/api.md, "Review"): the queue, labels and skips under ``/v1/review``, and the
review page at ``/review``.

Every ``/v1/review`` call needs a reviewer key (``PARROTWATCH_REVIEWER_KEYS``); labels are stored
with the reviewer's name. Detector scores are shown only when ``review_show_scores`` is on: they
anchor a reviewer's judgement.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parrotwatch.contracts.review_labels import COMMENT_MAX_CHARS, LabelError
from parrotwatch.services.api import review_store
from parrotwatch.services.api.deps import DatabaseDep, LabelSchemaDep, ReviewerDep, SettingsDep
from parrotwatch.stack.urls import redact_url

router = APIRouter(tags=["review"])
STATIC = FilePath(__file__).resolve().parents[1] / "static"
#: the page's files: name -> media type (nothing else is served from the folder)
PAGE_FILES = {"review.js": "text/javascript", "review.css": "text/css"}
MAX_BODY_BYTES = 65_536
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
ItemId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A review item's item_id.")]


class LabelSubmission(BaseModel):
    """A reviewer's answer to one item: every required label of the schema, and a comment."""

    model_config = ConfigDict(extra="forbid")
    labels: dict[str, Any] = Field(description="Label key -> value (true/false for a yes/no "
                                   "label, an integer for a scale); see GET /v1/review/schema.",
                                   examples=[{"toxic": False, "hallucinated": True,
                                              "off_topic": False, "helpful": 2}])
    comment: str | None = Field(default=None, max_length=COMMENT_MAX_CHARS,
                                description="Free text, optional; NUL characters become U+FFFD.")


class LabelStored(BaseModel):
    item_id: int
    reviewer: str
    labels: dict[str, bool | int]
    labelled_at: datetime


async def _in_db(url: str, call, *args, **kwargs):
    """``call(url, ...)`` in a worker thread; 404 / 409 for the queue's refusals, 503 when the
    database cannot be reached or lacks the review tables."""
    try:
        return await run_in_threadpool(call, url, *args, **kwargs)
    except review_store.NotInQueue as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except review_store.AlreadyDone as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except psycopg.errors.UndefinedTable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "The review tables are missing in the database: apply the "
                            "migrations (`parrotwatch up`, or the image's migrate role).") from exc
    except psycopg.OperationalError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            f"The review database ({redact_url(url)}) cannot be reached; check "
                            "PARROTWATCH_DATABASE_URL or start it with `parrotwatch up`, then "
                            "retry.", headers={"Retry-After": "5"}) from exc


@router.get("/v1/review/schema", summary="The label schema")
async def get_schema(_reviewer: ReviewerDep, schema: LabelSchemaDep) -> dict[str, Any]:
    """The labels a reviewer answers, in order: key, kind (boolean | scale), question, required,
    the detector it calibrates, the page's shortcut, and min / max of a scale."""
    return schema.public()


@router.get("/v1/review/next", summary="The reviewer's next item",
            responses={204: {"description": "Nothing left in the queue for this reviewer."}})
async def get_next(reviewer: ReviewerDep, url: DatabaseDep, settings: SettingsDep) -> Response:
    """The oldest item in the queue that this reviewer has neither labelled nor skipped and that
    still needs a label: item_id, request_id, model, app, event_time, prompt, response, sources,
    progress (labelled_by_you, remaining_for_you, this item included); scores only when
    PARROTWATCH_REVIEW_SHOW_SCORES is on."""
    item = await _in_db(url, review_store.next_item, reviewer,
                        show_scores=settings.review_show_scores)
    if item is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT,
                        headers={"Cache-Control": "no-store"})
    item["event_time"] = item["event_time"].isoformat()
    return JSONResponse(item, headers={"Cache-Control": "no-store"})


@router.post("/v1/review/items/{item_id}/labels", status_code=status.HTTP_201_CREATED,
             summary="Label an item", openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": LabelSubmission.model_json_schema()}}}},
             responses={404: {"description": "No such item, or its text expired."},
                        409: {"description": "Already labelled by you, or fully labelled."},
                        422: {"description": "Labels that do not fit the schema."}})
async def post_labels(item_id: ItemId, request: Request, reviewer: ReviewerDep,
                      url: DatabaseDep, schema: LabelSchemaDep) -> LabelStored:
    """Store the reviewer's labels of one item, once: a second label by the same reviewer, or
    one beyond the item's reviewers_needed, is a 409 and stores nothing."""
    submission = _parse(await _small_body(request))
    try:
        labels = schema.validate(submission.labels)
    except LabelError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"Labels refused: {exc}.") from exc
    comment = (submission.comment or "").replace("\x00", "\ufffd").strip() or None
    labelled_at = await _in_db(url, review_store.add_label, item_id, reviewer, labels, comment)
    return LabelStored(item_id=item_id, reviewer=reviewer, labels=labels,
                       labelled_at=labelled_at)


@router.post("/v1/review/items/{item_id}/skip", status_code=status.HTTP_204_NO_CONTENT,
             summary="Skip an item", responses={404: {"description": "No such item."}})
async def post_skip(item_id: ItemId, reviewer: ReviewerDep, url: DatabaseDep) -> Response:
    """The reviewer passes on an item: it is not offered to them again (idempotent)."""
    await _in_db(url, review_store.skip, item_id, reviewer)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _small_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                                f"A label body is at most {MAX_BODY_BYTES} bytes.")
    return bytes(body)


def _parse(body: bytes) -> LabelSubmission:
    try:
        return LabelSubmission.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
            for e in exc.errors(include_input=False)[:10])
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            'Send JSON {"labels": {...}, "comment": "..."}; ' + problems) from exc


@router.get("/review", include_in_schema=False)
async def review_page() -> FileResponse:
    return FileResponse(STATIC / "review.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/review/static/{name}", include_in_schema=False)
async def review_file(name: str) -> FileResponse:
    if name not in PAGE_FILES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No page file {name[:60]!r}.")
    return FileResponse(STATIC / name, media_type=PAGE_FILES[name], headers=PAGE_HEADERS)
