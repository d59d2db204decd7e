"""The ingestion API over real HTTP (uvicorn process) against the real broker and stream."""

from __future__ import annotations

import sys
import time
import uuid

import httpx
import pytest
from pydantic import SecretStr

from parrotwatch.settings import Settings
from parrotwatch.stack.local import REPO_ROOT, settings_env
from parrotwatch.stack.processes import ManagedProcess, free_port, wait_until
from parrotwatch.traffic import generate_inference_events
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration
SECRET = "live-test-key"
KEY = {"X-API-Key": SECRET}


def start_api(settings: Settings, key: str = SECRET, **overrides) -> tuple[ManagedProcess, str]:
    """``python -m parrotwatch.services.api`` for ``settings`` on a free port with ``key``, once ready;
    its process (to stop or ``kill -9``) and its URL. The other API test modules use it too."""
    settings = settings.model_copy(
        update={"api_port": free_port(), "api_keys": [SecretStr(key)], **overrides})
    name = f"api-{settings.topic_prefix.strip('.')}"
    proc = ManagedProcess(name, settings.run_dir, settings.logs_dir / f"{name}.log")
    proc.start([sys.executable, "-m", "parrotwatch.services.api"], env=settings_env(settings), cwd=REPO_ROOT)
    wait_until(lambda: httpx.get(f"{settings.api_url}/readyz", timeout=2).status_code == 200,
               timeout=60, proc=proc, what="/readyz")
    return proc, settings.api_url


@pytest.fixture
def api(namespace):
    proc, url = start_api(namespace.settings)
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client
    proc.stop()


def test_api_rejects_bad_requests_with_what_to_fix(api, namespace):
    event = generate_inference_events(1, seed=5, id_prefix="api-bad")[0]
    assert api.post("/v1/inference", json=event).status_code == 401
    assert api.post("/v1/inference", json=event, headers={"X-API-Key": "wrong"}).status_code == 401

    missing = {k: v for k, v in event.items() if k != "model"}
    r = api.post("/v1/inference", json=missing, headers=KEY)
    assert r.status_code == 422 and "model" in r.text

    wrong = {**event, "latency_ms": "fast"}
    r = api.post("/v1/inference", json=wrong, headers=KEY)
    assert r.status_code == 422 and "latency_ms" in r.text

    huge = {**event, "response": "x" * (namespace.settings.max_event_bytes + 10)}
    assert api.post("/v1/inference", json=huge, headers=KEY).status_code == 413

    assert "parrotwatch_api_events_rejected_total" in api.get("/metrics").text
    assert api.get("/openapi.json").json()["info"]["title"]


def test_accepted_events_reach_postgres_and_feedback_is_stored_once(api, namespace, stream_job):
    events = generate_inference_events(30, seed=6, id_prefix="api-ok")
    r = api.post("/v1/inference", json=events[:20], headers=KEY)
    assert r.status_code == 202 and r.json()["accepted"] == 20
    r = api.post("/v1/inference", json=events[20], headers={"Authorization": f"Bearer {SECRET}"})
    assert r.status_code == 202

    feedback = {"feedback_id": f"fb-{uuid.uuid4()}", "request_id": events[0]["request_id"],
                "timestamp": "2026-11-28T01:00:00Z", "thumb": -1, "label": "hallucination"}
    for _ in range(3):  # a client retrying the same feedback
        assert api.post("/v1/feedback", json=feedback, headers=KEY).status_code == 202

    job = stream_job().start()
    wait_for(lambda: namespace.scalar("SELECT count(*) FROM inference_scores") >= 21
             and namespace.scalar("SELECT count(*) FROM sink_batches WHERE sink LIKE "
                                  "'feedback-%%' AND rows_in >= 3") >= 1,
             timeout=180, what="API events scored and feedback stored", job=job)
    assert namespace.scalar("SELECT count(*) FROM inference_scores") == 21
    rows = namespace.sql("SELECT feedback_id, thumb, label FROM feedback")
    assert rows == [(feedback["feedback_id"], -1, "hallucination")]


def test_api_answers_503_while_the_broker_is_down(api, stack):
    event = generate_inference_events(1, seed=7, id_prefix="api-down")[0]
    assert api.post("/v1/inference", json=event, headers=KEY).status_code == 202
    stack.broker.stop()
    try:
        started = time.monotonic()
        r = api.post("/v1/inference", json=event, headers=KEY)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"]
        assert time.monotonic() - started < 30
    finally:
        stack.broker.start()
    wait_for(lambda: api.post("/v1/inference", json=event, headers=KEY).status_code == 202,
             timeout=90, what="the API to accept again once the broker is back")
