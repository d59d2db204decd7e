"""The ingestion API without a broker: request validation, auth, limits, errors and metrics.

The producer is replaced through ``app.dependency_overrides[get_producer]`` by an in-memory
recorder; tests against the real Kafka broker live in ``tests/integration``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import orjson
import pytest
from fastapi.testclient import TestClient
from kafka.errors import KafkaError, KafkaTimeoutError
from pydantic import SecretStr

from parrotwatch.contracts import FeedbackEventV1, InferenceEventV1
from parrotwatch.services.api import create_app
from parrotwatch.services.api.deps import get_producer, get_settings
from parrotwatch.services.api.producer import KafkaEventProducer
from parrotwatch.services.api.routes import feedback, inference
from parrotwatch.settings import Settings

KEY = "test-key"
AUTH = {"X-API-Key": KEY}
EVENT = {
    "request_id": "req-001",
    "timestamp": "2024-05-01T12:00:00+02:00",
    "model": "gpt-4o-mini",
    "prompt": "What is the capital of France?",
    "response": "The capital of France is Paris.",
    "latency_ms": 412.5,
}
FEEDBACK = {"feedback_id": "fb-1", "request_id": "req-001",
            "timestamp": "2024-05-01T12:01:00Z", "thumb": -1}


class Recorder:
    """Stands in for the broker: records what would be produced, or fails like Kafka."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.error: Exception | None = None
        self.up = True

    def send_all(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
        if self.error is not None:
            raise self.error
        self.sent.extend((topic, key, value) for key, value in records)

    def ping(self, timeout_s: float = 2.0) -> bool:
        return self.up


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        home=tmp_path, api_keys=[SecretStr("other-key"), SecretStr(KEY)], topic_prefix="t-",
        max_event_bytes=2_000, max_request_bytes=10_000,
    )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(settings: Settings, recorder: Recorder) -> Iterator[TestClient]:
    app = create_app(Settings(api_keys=[SecretStr("not-used")]))
    app.dependency_overrides[get_settings] = lambda: settings
    app.dependency_overrides[get_producer] = lambda: recorder
    with TestClient(app) as test_client:
        yield test_client


def _post(client: TestClient, body: object, path: str = "/v1/inference", headers=AUTH):
    return client.post(path, content=orjson.dumps(body), headers=headers)


def _locs(response) -> list[list]:
    return [err["loc"] for err in response.json()["detail"]]


def test_missing_key_is_401_and_says_which_header(client: TestClient, recorder: Recorder):
    response = _post(client, EVENT, headers={})
    assert response.status_code == 401
    assert "X-API-Key" in response.json()["detail"]
    assert response.headers["www-authenticate"] == "Bearer"
    assert recorder.sent == []


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": "wrong"},
        {"Authorization": "Bearer wrong"},
        {"X-API-Key": ""},
        {"X-API-Key": "clé".encode()},  # non-ASCII: compare_digest on str would raise
    ],
)
def test_wrong_key_is_401(client: TestClient, recorder: Recorder, headers: dict):
    response = _post(client, EVENT, headers=headers)
    assert response.status_code == 401
    assert "API key" in response.json()["detail"]
    assert recorder.sent == []


@pytest.mark.parametrize("headers", [AUTH, {"Authorization": f"Bearer {KEY}"}])
def test_accepted_with_either_header(client: TestClient, recorder: Recorder, headers: dict):
    response = _post(client, EVENT, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1, "request_ids": ["req-001"]}
    assert [(topic, key) for topic, key, _ in recorder.sent] == [("t-llm.inference.v1", b"req-001")]


def test_value_is_the_event_as_sent_with_extra_fields(client: TestClient, recorder: Recorder):
    event = {**EVENT, "gen_ai.request.model": "gpt-4o-mini-2024", "tenant": {"tier": [1, 2]},
             "usage": {"input_tokens": 3, "output_tokens": 5, "cached_tokens": 1}}
    assert _post(client, event).status_code == 202
    ((_, key, value),) = recorder.sent
    assert key == b"req-001"
    assert orjson.loads(value) == event  # extras kept; no "app" default, timestamp untouched


def test_batch_keys_each_event_by_request_id(client: TestClient, recorder: Recorder):
    batch = [{**EVENT, "request_id": f"req-{i}"} for i in range(3)]
    response = _post(client, batch)
    assert response.status_code == 202
    assert response.json() == {"accepted": 3, "request_ids": ["req-0", "req-1", "req-2"]}
    assert [key for _, key, _ in recorder.sent] == [b"req-0", b"req-1", b"req-2"]
    assert [orjson.loads(value) for _, _, value in recorder.sent] == batch


def test_missing_field_is_422_naming_it(client: TestClient, recorder: Recorder):
    response = _post(client, {k: v for k, v in EVENT.items() if k != "response"})
    assert response.status_code == 422
    assert ["body", "response"] in _locs(response)
    assert response.json()["detail"][0]["type"] == "missing"
    assert recorder.sent == []


def test_wrong_type_is_422_naming_the_field(client: TestClient, recorder: Recorder):
    response = _post(client, {**EVENT, "latency_ms": "fast"})
    assert response.status_code == 422
    assert _locs(response) == [["body", "latency_ms"]]
    assert "number" in response.json()["detail"][0]["msg"]
    assert recorder.sent == []


def test_model_rule_is_422(client: TestClient):
    event = {k: v for k, v in EVENT.items() if k != "prompt"}
    response = _post(client, event)
    assert response.status_code == 422
    assert "'prompt'" in response.json()["detail"][0]["msg"]


def test_batch_422_names_the_index_and_nothing_is_produced(client: TestClient, recorder):
    batch = [EVENT, {**EVENT, "model": 7}, EVENT, "not an event"]
    response = _post(client, batch)
    assert response.status_code == 422
    assert _locs(response) == [["body", 1, "model"], ["body", 3]]
    assert recorder.sent == []  # all or nothing: the valid events are not written either


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b'{"request_id": ', "not valid JSON"), (b"[]", "empty"), (b'"event"', "got JSON str")],
)
def test_unusable_body_is_422_with_a_hint(client: TestClient, content: bytes, needle: str):
    response = client.post("/v1/inference", content=content, headers=AUTH)
    assert response.status_code == 422
    assert needle in response.json()["detail"][0]["msg"]


def test_event_over_max_event_bytes_is_413_naming_index_and_size(client, recorder, settings):
    big = {**EVENT, "response": "x" * settings.max_event_bytes}
    size = len(orjson.dumps(big))
    response = _post(client, [EVENT, big])
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert f"index 1 is {size} bytes" in detail and str(settings.max_event_bytes) in detail
    assert recorder.sent == []


def test_request_over_max_request_bytes_is_413(client, recorder, settings):
    batch = [{**EVENT, "request_id": f"req-{i}"} for i in range(60)]
    assert len(orjson.dumps(batch)) > settings.max_request_bytes
    response = _post(client, batch)  # refused on Content-Length
    assert response.status_code == 413
    assert "Content-Length" in response.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while reading
        body = orjson.dumps(batch)
        yield from (body[i : i + 1000] for i in range(0, len(body), 1000))

    response = client.post("/v1/inference", content=chunks(), headers=AUTH)
    assert response.status_code == 413
    assert f"{settings.max_request_bytes}-byte limit" in response.json()["detail"]
    assert recorder.sent == []


@pytest.mark.parametrize("error", [KafkaTimeoutError("no ack"), KafkaError("broker down")])
def test_kafka_failure_is_503_with_retry_after(client: TestClient, recorder: Recorder, error):
    recorder.error = error
    response = _post(client, [EVENT, EVENT])
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert set(body) == {"detail"} and "nothing was stored" in body["detail"]
    metrics = client.get("/metrics").text
    assert 'reason="kafka_unavailable",route="/v1/inference"} 2.0' in metrics
    assert "parrotwatch_api_events_accepted_total{" not in metrics


def test_feedback_is_keyed_by_feedback_id(client: TestClient, recorder: Recorder):
    response = _post(client, [FEEDBACK, {**FEEDBACK, "feedback_id": "fb-2", "x": 1}],
                     path="/v1/feedback")
    assert response.status_code == 202
    assert response.json() == {"accepted": 2, "feedback_ids": ["fb-1", "fb-2"]}
    assert [(t, k) for t, k, _ in recorder.sent] == [("t-llm.feedback.v1", b"fb-1"),
                                                     ("t-llm.feedback.v1", b"fb-2")]
    assert orjson.loads(recorder.sent[1][2])["x"] == 1


def test_feedback_without_signal_or_key_is_refused(client: TestClient, recorder: Recorder):
    no_signal = {k: v for k, v in FEEDBACK.items() if k != "thumb"}
    response = _post(client, [FEEDBACK, no_signal], path="/v1/feedback")
    assert response.status_code == 422
    assert _locs(response) == [["body", 1]]
    assert "'thumb'" in response.json()["detail"][0]["msg"]
    assert _post(client, FEEDBACK, path="/v1/feedback", headers={}).status_code == 401
    assert recorder.sent == []


@pytest.mark.parametrize(("up", "status", "ready"), [(True, "ok", 200), (False, "degraded", 503)])
def test_probes_need_no_key(client: TestClient, recorder: Recorder, up: bool, status: str,
                            ready: int):
    recorder.up = up
    response = client.get("/readyz")  # waits (briefly) for the first Kafka check
    assert response.status_code == ready
    assert response.json()["ready"] is up and response.json()["kafka"] is up
    response = client.get("/healthz")  # liveness: 200 either way, the last check in the body
    assert response.status_code == 200
    assert response.json() == {"status": status, "kafka": up}


def test_metrics_count_by_route_and_reason(client: TestClient, settings: Settings):
    assert _post(client, [EVENT, EVENT]).status_code == 202
    assert _post(client, FEEDBACK, path="/v1/feedback").status_code == 202
    assert _post(client, EVENT, headers={}).status_code == 401
    assert _post(client, [EVENT, {**EVENT, "model": 1}]).status_code == 422
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'parrotwatch_api_events_accepted_total{route="/v1/inference"} 2.0' in text
    assert 'parrotwatch_api_events_accepted_total{route="/v1/feedback"} 1.0' in text
    assert ('parrotwatch_api_events_rejected_total{reason="unauthorized",'
            'route="/v1/inference"} 1.0') in text
    assert ('parrotwatch_api_events_rejected_total{reason="invalid_event",'
            'route="/v1/inference"} 2.0') in text
    assert 'parrotwatch_api_produce_seconds_count{route="/v1/inference"} 1.0' in text
    # Each app has its own registry: a fresh app starts from zero.
    fresh = create_app(settings)
    fresh.dependency_overrides[get_producer] = Recorder
    with TestClient(fresh) as other:
        assert "parrotwatch_api_events_accepted_total{" not in other.get("/metrics").text


def test_openapi_docs_and_examples_follow_the_contracts(client: TestClient):
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert schema["info"]["title"] == "Parrotwatch ingestion API"
    assert {"InferenceEventV1", "FeedbackEventV1"} <= set(schema["components"]["schemas"])
    InferenceEventV1.model_validate(inference.EXAMPLE)
    FeedbackEventV1.model_validate(feedback.EXAMPLE)


def test_real_producer_without_broker_answers_503(tmp_path):
    settings = Settings(home=tmp_path, kafka_bootstrap="127.0.0.1:1", api_keys=[SecretStr(KEY)])
    with TestClient(create_app(settings)) as client:  # start-up survives the missing broker
        started = time.monotonic()
        response = _post(client, EVENT)
        assert response.status_code == 503
        assert time.monotonic() - started < 10
        assert response.headers["retry-after"] == "5"
        assert client.get("/healthz").json() == {"status": "degraded", "kafka": False}
        assert client.get("/readyz").status_code == 503


def test_waiting_callers_share_one_failed_connection_attempt(monkeypatch):
    """Four callers arrive while the first bootstrap is under way: one attempt, four errors. The attempt
    (kafka-python's real ``KafkaProducer`` against a closed port) starts only once every caller has
    taken its ``asked_at`` time (its first clock reading), so the test does not depend on thread timing."""
    import time as real_time

    from parrotwatch.services.api import producer as producer_module

    asked, attempts, real_producer = threading.Semaphore(0), [], producer_module.KafkaProducer

    def attempt(**config):
        attempts.append(config["bootstrap_servers"])
        for _ in range(4):  # every caller has asked and waits on the lock (or is this one)
            assert asked.acquire(timeout=30)
        return real_producer(**config)

    class Clock:
        """The producer module's ``time``: a caller's first reading is its ``asked_at``."""

        seen = threading.local()

        @classmethod
        def monotonic(cls) -> float:
            now = real_time.monotonic()
            if not getattr(cls.seen, "asked", False):
                cls.seen.asked = True
                asked.release()
            return now

    producer = KafkaEventProducer("127.0.0.1:1", bootstrap_timeout_ms=500)
    monkeypatch.setattr(producer_module, "time", Clock)
    monkeypatch.setattr(producer_module, "KafkaProducer", attempt, raising=True)
    errors: list[Exception] = []

    def send() -> None:
        try:
            producer.send_all("t", [(b"k", b"{}")])
        except KafkaError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 4
    assert attempts == ["127.0.0.1:1"]  # one bootstrap, not four in a row
    assert not producer.connected
    producer.close()
    with pytest.raises(KafkaError, match="closed"):
        producer.send_all("t", [(b"k", b"{}")])
