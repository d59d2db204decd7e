"""The poison corpus on the real stack (Kafka, Spark with the drift, grounding and toxicity
detectors, PostgreSQL, the API over HTTP): every record is scored or dead-lettered with its
reason, and valid events sent after them are all scored within two micro-batches."""

from __future__ import annotations

import hashlib
import sys

import httpx
import orjson
import pytest
from kafka import KafkaProducer
from pydantic import SecretStr

from parrotwatch.poison import poison_corpus
from parrotwatch.stack.local import REPO_ROOT, settings_env
from parrotwatch.stack.processes import ManagedProcess, free_port, wait_until
from parrotwatch.traffic import generate_inference_events
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration
KEY = "poison-test-key"
# The API takes a JSON array as a batch: one valid event in a list is accepted there.
API_ACCEPTS = {"top_level_array"}


@pytest.fixture
def api(namespace):
    settings = namespace.settings.model_copy(update={"api_port": free_port(),
                                                     "api_keys": [SecretStr(KEY)]})
    name = f"api-{settings.topic_prefix.strip('.')}"
    proc = ManagedProcess(name, settings.run_dir, settings.logs_dir / f"{name}.log")
    proc.start([sys.executable, "-m", "parrotwatch.services.api"], env=settings_env(settings), cwd=REPO_ROOT)
    wait_until(lambda: httpx.get(f"{settings.api_url}/healthz", timeout=2).status_code == 200,
               timeout=60, proc=proc, what="/healthz")
    with httpx.Client(base_url=settings.api_url, timeout=60,
                      headers={"X-API-Key": KEY}) as client:
        yield client
    proc.stop()


def _counts(namespace) -> tuple[int, int]:
    return (namespace.scalar("SELECT count(*) FROM inference_scores")
            + namespace.scalar("SELECT count(*) FROM feedback"),
            namespace.scalar("SELECT count(*) FROM dead_letters"))


def test_poison_corpus_through_kafka_and_the_api(namespace, stream_job, api):
    job = stream_job(quality_detectors=["drift", "hallucination", "toxicity"],
                     drift_reference_size=20, max_offsets_per_trigger=200,
                     review_pool_rate=1.0).start()  # every stored request keeps its review text
    direct = poison_corpus("kafka")
    via_api = poison_corpus("api")

    producer = KafkaProducer(bootstrap_servers=namespace.settings.bootstrap, acks="all",
                             max_request_size=8 << 20)
    for case in direct:
        producer.send(namespace.topic(f"llm.{case.topic}.v1"), key=case.key or case.name.encode(),
                      value=case.raw)
    producer.flush()

    accepted = []
    for case in via_api:
        r = api.post(case.api_path, content=case.raw or b"",
                     headers={"Content-Type": "application/json"})
        assert r.status_code < 500, (case.name, r.status_code, r.text[:300])
        assert len(r.content) <= 64 * 1024, (case.name, len(r.content))
        expect_ok = case.expect == "ok" or case.name in API_ACCEPTS
        if expect_ok:
            assert r.status_code == 202, (case.name, r.text[:300])
            accepted.append(case)
        else:  # 4xx with a message that says what to fix
            assert 400 <= r.status_code < 500 and r.text, case.name

    expected_stored = sum(c.expect == "ok" for c in direct) + len(accepted)
    expected_dead = sum(c.expect == "dlq" for c in direct)
    wait_for(lambda: _counts(namespace) >= (expected_stored, expected_dead), timeout=420,
             what=f"{expected_stored} stored and {expected_dead} dead letters", job=job)

    # Every direct case landed as expected: stored under its id, or dead-lettered with a reason.
    stored = {r[0] for r in namespace.sql("SELECT request_id FROM inference_scores UNION ALL "
                                          "SELECT feedback_id FROM feedback")}
    letters = namespace.sql("SELECT payload_sha256, reason, stage FROM dead_letters")
    by_hash = {sha: reason for sha, reason, _ in letters}
    assert all(reason and len(reason) <= 2_000 for _, reason, _ in letters)
    for case in direct:
        if case.expect == "ok":
            assert case.request_id in stored, case.name
        elif case.raw is None:
            assert any("null payload" in r for _, r, _ in letters)
        else:
            assert hashlib.sha256(case.raw).hexdigest() in by_hash, case.name
    assert {stage for *_, stage in letters} <= {"parse", "score", "build", "store"}
    for case in accepted:
        if case.request_id:
            assert case.request_id in stored, case.name
    assert _counts(namespace) == (expected_stored, expected_dead)  # nothing twice, nothing more

    # Each stored request kept its review text, bounded and storable, whatever it held.
    assert namespace.sql("SELECT request_id FROM review_texts EXCEPT "
                         "SELECT request_id FROM inference_scores") == []
    assert namespace.scalar("SELECT count(*) FROM review_texts") == namespace.scalar(
        "SELECT count(*) FROM inference_scores")
    assert namespace.scalar("SELECT max(octet_length(prompt) + octet_length(response) "
                            "+ octet_length(sources::text)) FROM review_texts") <= 16 * 1024

    # Valid events after the poison: all scored, within two micro-batches.
    valid = generate_inference_events(40, seed=77, id_prefix="after-poison")
    for e in valid[:30]:
        producer.send(namespace.topic("llm.inference.v1"), key=e["request_id"].encode(),
                      value=orjson.dumps(e))
    producer.flush()
    producer.close()
    assert api.post("/v1/inference", json=valid[30:]).status_code == 202
    ids = [e["request_id"] for e in valid]
    wait_for(lambda: namespace.scalar("SELECT count(*) FROM inference_scores WHERE request_id = "
                                      "ANY(%s)", ids) == 40, timeout=300,
             what="the 40 valid events after the poison", job=job)
    for path, sent in (("Kafka", ids[:30]), ("the API", ids[30:])):  # each sent at once
        batches = namespace.scalar("SELECT count(DISTINCT sink_batch) FROM inference_scores "
                                   "WHERE request_id = ANY(%s)", sent)
        assert batches <= 2, f"the valid events sent through {path} took {batches} micro-batches"
    assert job.process.alive()
