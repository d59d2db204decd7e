"""The API killed with ``kill -9`` in the middle of a client's batch, the client retrying: the topic
ends up with exactly the sent set of request ids (a retry may write an event twice; downstream
deduplicates by ``request_id``), every event of a 202 is on Kafka, and the stream then stores
exactly the sent set in PostgreSQL, each request once.

A client thread sends 40 batches of 50 events, one after the other, and retries a batch until it
gets a 202 (connection errors and 503 alike, 0.2 s apart). Batch 10 is streamed: half its body,
then the test kills the API (``kill -9`` of its process group) and lets the client send the rest
into a dead connection. Batch 25 is killed while its request is in flight (sent whole; the kill
lands wherever the API is: parsing, producing or answering). Each time the API is started again
on the same port.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from parrotwatch.stack.processes import free_port
from parrotwatch.traffic import generate_inference_events
from tests.integration.conftest import wait_for
from tests.integration.test_api_live import SECRET, start_api

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

BATCHES, SIZE = 40, 50
STREAMED_KILL, IN_FLIGHT_KILL = 10, 25


class Client(threading.Thread):
    """Sends every batch until it is acknowledged; records what was acknowledged and when."""

    def __init__(self, url: str, batches: list[list[dict]]) -> None:
        super().__init__(daemon=True)
        self.url, self.batches = url, batches
        self.acked: set[str] = set()
        self.attempts = 0
        self.mid_batch = threading.Event()  # batch STREAMED_KILL is half sent
        self.resume = threading.Event()  # the API was killed: send the rest
        self.in_flight = threading.Event()  # batch IN_FLIGHT_KILL was sent
        self.gaps: list[float] = []  # seconds from a failed attempt to the next 202
        self.error: BaseException | None = None

    def _body(self, index: int, first: bool) -> bytes | Iterator[bytes]:
        body = orjson.dumps(self.batches[index])
        if index != STREAMED_KILL or not first:
            return body

        def halves() -> Iterator[bytes]:
            yield body[: len(body) // 2]
            self.mid_batch.set()
            self.resume.wait(60)
            yield body[len(body) // 2:]

        return halves()

    def run(self) -> None:
        try:
            with httpx.Client(timeout=30, headers={"X-API-Key": SECRET,
                                                   "Content-Type": "application/json"}) as http:
                for index in range(len(self.batches)):
                    self._send(http, index)
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def _send(self, http: httpx.Client, index: int) -> None:
        failed_at, first = None, True
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            self.attempts += 1
            if index == IN_FLIGHT_KILL and first:
                self.in_flight.set()
            try:
                response = http.post(f"{self.url}/v1/inference", content=self._body(index, first))
                status = response.status_code
            except httpx.HTTPError:
                status = None
            first = False
            if status == 202:
                self.acked |= set(response.json()["request_ids"])
                if failed_at is not None:
                    self.gaps.append(time.monotonic() - failed_at)
                return
            assert status in (None, 503), f"batch {index}: unexpected {status}"
            failed_at = failed_at or time.monotonic()
            time.sleep(0.2)
        raise AssertionError(f"batch {index} never acknowledged")


def test_kill_9_mid_batch_with_a_retrying_client_loses_nothing(namespace, stream_job):
    events = generate_inference_events(BATCHES * SIZE, seed=21, id_prefix="kill9")
    batches = [events[i:i + SIZE] for i in range(0, len(events), SIZE)]
    sent = {event["request_id"] for event in events}
    port = free_port()
    proc, url = start_api(namespace.settings, api_port=port)
    client = Client(url, batches)
    client.start()
    try:
        assert client.mid_batch.wait(120), "the client never reached the streamed batch"
        proc.kill()  # kill -9 while the API holds half a request body
        client.resume.set()
        proc, _ = start_api(namespace.settings, api_port=port)
        assert client.in_flight.wait(120), "the client never reached the in-flight batch"
        time.sleep(0.05)  # the request is under way
        proc.kill()
        proc, _ = start_api(namespace.settings, api_port=port)
        client.join(timeout=300)
    finally:
        client.resume.set()
        proc.stop()
    assert not client.is_alive(), "the client did not finish"
    assert client.error is None, client.error
    records = namespace.read_topic("llm.inference.v1", expected=len(sent))
    on_topic = [record.key.decode() for record in records]
    print(f"kill -9 x2: {len(sent)} events sent in {BATCHES} batches, {client.attempts} "
          f"attempts, {len(on_topic)} records on the topic ({len(on_topic) - len(set(on_topic))} "
          f"duplicates from retries), recovery (first failure to 202) "
          f"{[round(g, 1) for g in client.gaps]} s")
    assert client.acked == sent
    assert set(on_topic) == sent  # exactly the sent set: nothing lost, nothing foreign
    assert client.acked <= set(on_topic)  # every acknowledged event is on Kafka
    assert client.gaps, "no attempt failed: the kills missed the client's requests"
    # ... and the stream stores exactly the sent set, each request once (retried duplicates on
    # the topic are absorbed by the idempotent upsert on request_id)
    job = stream_job().start()
    wait_for(lambda: namespace.scalar("SELECT count(*) FROM inference_scores") >= len(sent),
             timeout=240, what="every sent event stored", job=job)
    stored = [r[0] for r in namespace.sql("SELECT request_id FROM inference_scores")]
    assert len(stored) == len(sent) and set(stored) == sent
