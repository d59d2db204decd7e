"""The API's bounds without a broker: events per batch, JSON depth, 64-bit integers, capped error
answers, probes that never wait on Kafka, no default API key and the local stack's generated key.
"""

from __future__ import annotations

import json
import os
import random
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence

import orjson
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from parrotwatch.services.api import create_app
from parrotwatch.services.api.app import MissingApiKeys
from parrotwatch.services.api.deps import get_producer
from parrotwatch.services.api.errors import MAX_ERRORS, MAX_RESPONSE_BYTES, capped
from parrotwatch.services.api.ingest import MAX_JSON_DEPTH
from parrotwatch.services.api.jsonscan import INT_MAX, INT_MIN, scan
from parrotwatch.settings import Settings
from parrotwatch.stack.errors import StackError
from parrotwatch.stack.local import REPO_ROOT, LocalStack, local_api_key

KEY = "limits-key"
AUTH = {"X-API-Key": KEY}
EVENT = {"request_id": "req-1", "timestamp": "2024-05-01T12:00:00Z", "model": "m",
         "prompt": "p", "response": "r"}


class Recorder:
    def __init__(self, ping_seconds: float = 0.0) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.ping_seconds = ping_seconds

    def send_all(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
        self.sent.extend((topic, key, value) for key, value in records)

    def ping(self, timeout_s: float = 2.0) -> bool:
        time.sleep(self.ping_seconds)
        return True


def _client(recorder: Recorder, **limits) -> TestClient:
    settings = Settings(api_keys=[SecretStr(KEY)], **limits)
    app = create_app(settings)
    app.dependency_overrides[get_producer] = lambda: recorder
    return TestClient(app)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(recorder: Recorder) -> Iterator[TestClient]:
    with _client(recorder, max_batch_events=100) as test_client:
        yield test_client


def _post(client: TestClient, content: bytes):
    return client.post("/v1/inference", content=content, headers=AUTH)


# -- the byte-level scan ---------------------------------------------------------------------
def _reference(value) -> tuple[int, int | None, bool]:
    def depth(x) -> int:
        if isinstance(x, list | dict):
            return 1 + max((depth(y) for y in (x if isinstance(x, list) else x.values())),
                           default=0)
        return 0

    def big(x) -> bool:
        if isinstance(x, bool):
            return False
        if isinstance(x, int):
            return not INT_MIN <= x <= INT_MAX
        if isinstance(x, list | dict):
            return any(big(y) for y in (x if isinstance(x, list) else x.values()))
        return False

    return depth(value), len(value) if isinstance(value, list) else None, big(value)


def _random_json(rnd: random.Random, level: int = 0):
    pick = rnd.random()
    if level > 6 or pick < 0.3:
        return rnd.choice([
            lambda: rnd.randint(-10**25, 10**25) if rnd.random() < 0.2 else rnd.randint(-5, 5),
            lambda: rnd.random() * 10 ** rnd.randint(-30, 30),
            lambda: "".join(rnd.choice('ab"\\[]{},0123456789 \n\u00e9')
                            for _ in range(rnd.randint(0, 12))),
            lambda: "1" * rnd.randint(18, 22),
            lambda: None,
        ])()
    if pick < 0.65:
        return [_random_json(rnd, level + 1) for _ in range(rnd.randint(0, 4))]
    return {"".join(rnd.choice('k"\\[') for _ in range(rnd.randint(0, 3))) + str(i):
            _random_json(rnd, level + 1) for i in range(rnd.randint(0, 4))}


def test_scan_agrees_with_a_parser_whatever_the_chunking():
    """Escaped quotes, brackets and digits in strings, numbers cut at a chunk's end: the scan's
    depth, element count and big-integer verdict match a full parse at every chunk size."""
    rnd = random.Random(12)
    for _ in range(200):
        value = _random_json(rnd)
        body = json.dumps(value, indent=rnd.choice([None, 1])).encode()
        expected = _reference(value)
        for chunk in (1, 3, 64, 1 << 20):
            shape = scan(body, chunk_bytes=chunk)
            assert (shape.depth, shape.items, shape.big_int is not None) == expected, (body, chunk)


def test_scan_names_the_first_out_of_range_integer():
    body = b'[{"a": "123456789012345678901234"}, {"b": [1.5e300, -9223372036854775809]}]'
    shape = scan(body)
    assert shape.big_int == "-9223372036854775809"
    assert body[shape.big_int_offset:].startswith(b"-9223372036854775809")
    assert scan(b"[18446744073709551615, -9223372036854775808, 1e30]").big_int is None
    assert scan(b"[" + b"9" * 10_000 + b"]").big_int.endswith("(10000 digits)")


# -- limits at the API -----------------------------------------------------------------------
def test_batch_over_the_event_limit_is_422_naming_the_limit(client: TestClient, recorder):
    batch = [{**EVENT, "request_id": f"r{i}"} for i in range(101)]
    response = _post(client, orjson.dumps(batch))
    assert response.status_code == 422
    ((error,),) = [response.json()["detail"]]
    assert error["type"] == "too_many_events"
    detail = error["msg"]
    assert "101 events" in detail and "100 events per request" in detail
    assert "PARROTWATCH_MAX_BATCH_EVENTS" in detail
    assert _post(client, orjson.dumps(batch[:100])).status_code == 202
    assert len(recorder.sent) == 100
    assert 'reason="too_many_events"' in client.get("/metrics").text


def test_8_mib_of_empty_events_is_refused_small(recorder: Recorder):
    body = b"[" + b"{}, " * (2**21 - 1) + b"{}]"
    with _client(recorder, max_request_bytes=len(body)) as client:
        response = _post(client, body)
    assert response.status_code == 422
    assert len(response.content) < 1_000 and "2097152 events" in response.text


def test_many_errors_are_capped_and_counted(recorder: Recorder):
    with _client(recorder, max_batch_events=100_000) as client:
        response = _post(client, b"[" + b"{}, " * 49_999 + b"{}]")
    assert response.status_code == 422
    assert len(response.content) <= MAX_RESPONSE_BYTES
    body = response.json()
    assert 0 < len(body["detail"]) <= MAX_ERRORS
    assert body["error_count"] >= 50_000 * 4  # every event misses its ids, time, model...
    assert body["errors_omitted"] == body["error_count"] - len(body["detail"])
    assert body["detail"][0]["loc"][:2] == ["body", 0]
    assert recorder.sent == []


def test_capped_shortens_each_error_and_bounds_the_total():
    huge = {"type": "x" * 10_000, "loc": ["body", 3, "k" * 100_000], "msg": "m" * 100_000}
    out = capped([huge] * 1_000, 1_000)
    assert len(orjson.dumps(out)) <= MAX_RESPONSE_BYTES
    assert out["error_count"] == 1_000 and out["errors_omitted"] == 1_000 - len(out["detail"])
    first = out["detail"][0]
    assert first["loc"][:2] == ["body", 3] and len(first["loc"][2]) < 200
    assert "(100000 characters)" in first["msg"]


def _nested(levels: int) -> dict:
    value: object = "leaf"
    for _ in range(levels):
        value = {"k": value}
    return value  # type: ignore[return-value]


@pytest.mark.parametrize("levels", [300, 1_100, 10_000])
def test_deep_json_is_422_not_500(client: TestClient, recorder: Recorder, levels: int):
    body = b'{"request_id": "d", "metadata": ' + b'{"k": ' * levels + b"1" + b"}" * levels + b"}"
    response = _post(client, body)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["type"] == "json_too_deep"
    assert f"limit of {MAX_JSON_DEPTH}" in error["msg"] and "flatten" in error["msg"]
    assert recorder.sent == []


def test_depth_at_the_limit_is_not_refused_for_its_depth(client: TestClient):
    event = {**EVENT, "metadata": _nested(MAX_JSON_DEPTH - 1)}  # + the event itself
    assert scan(orjson.dumps(event)).depth == MAX_JSON_DEPTH
    response = _post(client, orjson.dumps(event))
    assert response.status_code in (202, 422), response.text
    if response.status_code == 422:
        assert "json_too_deep" not in response.text


def test_integers_beyond_64_bits_are_refused_and_others_kept_exactly(client, recorder):
    response = _post(client, b'[{"request_id": "i", "metadata": {"n": 1180591620717411303424}}]')
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["type"] == "integer_out_of_range" and "1180591620717411303424" in error["msg"]
    assert "string" in error["msg"]
    kept = {**EVENT, "metadata": {"u": 2**64 - 1, "i": -(2**63), "s": "1180591620717411303424"}}
    assert _post(client, orjson.dumps(kept)).status_code == 202
    assert orjson.loads(recorder.sent[-1][2])["metadata"] == kept["metadata"]


def test_openapi_states_the_batch_limit(client: TestClient):
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/inference"]["post"]["requestBody"]["content"]["application/json"]
    (array,) = [s for s in body["schema"]["anyOf"] if s.get("type") == "array"]
    assert array["maxItems"] == 100
    assert "RejectedPublic" in schema["components"]["schemas"]


# -- probes ----------------------------------------------------------------------------------
def test_probes_answer_while_the_kafka_check_hangs():
    recorder = Recorder(ping_seconds=5.0)
    with _client(recorder) as client:
        started = time.monotonic()
        live = client.get("/healthz")
        assert live.status_code == 200 and live.json() == {"status": "ok", "kafka": None}
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["kafka"] is None
        assert time.monotonic() - started < 3.0  # the check itself takes 5 s
        assert client.get("/healthz").status_code == 200


def test_healthz_is_served_while_a_large_batch_is_parsed(recorder: Recorder):
    """Parsing runs in a worker thread: a probe sent meanwhile is answered before it ends."""
    batch = orjson.dumps([{**EVENT, "request_id": f"r{i}", "response": "x" * 3_000}
                          for i in range(2_500)])
    with _client(recorder, max_batch_events=10_000, max_request_bytes=len(batch)) as client:
        done: list[float] = []
        thread = threading.Thread(target=lambda: (_post(client, batch),
                                                  done.append(time.monotonic())))
        thread.start()
        time.sleep(0.05)
        probes = []
        while thread.is_alive() and len(probes) < 200:
            started = time.monotonic()
            assert client.get("/healthz").status_code == 200
            probes.append(time.monotonic() - started)
        thread.join()
    assert len(recorder.sent) == 2_500
    assert probes and max(probes) < 2.0


# -- keys ------------------------------------------------------------------------------------
def test_no_default_api_key():
    assert Settings().api_keys == [] or "PARROTWATCH_API_KEYS" in os.environ
    with pytest.raises(MissingApiKeys, match="PARROTWATCH_API_KEYS"):
        create_app(Settings(api_keys=[]))


def test_the_api_refuses_to_start_without_keys(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARROTWATCH_")}
    env.update(PARROTWATCH_HOME=str(tmp_path), PARROTWATCH_KAFKA_BOOTSTRAP="127.0.0.1:1")
    done = subprocess.run([sys.executable, "-m", "parrotwatch.services.api"], env=env, capture_output=True,
                          text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 2
    assert "PARROTWATCH_API_KEYS" in done.stderr and "parrotwatch up" in done.stderr


def test_local_stack_key_is_generated_once_private_and_not_printed(tmp_path):
    said: list[str] = []
    stack = LocalStack(Settings(home=tmp_path / "home"), say=said.append)
    stack.use_local_api_key()
    key_file = tmp_path / "home" / "api-key"
    key = stack.settings.api_keys[0].get_secret_value()
    assert key_file.read_text().strip() == key and len(key) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert said and str(key_file) in said[0] and key not in said[0]
    key_file.chmod(0o644)
    again = LocalStack(Settings(home=tmp_path / "home"), say=said.append)
    again.use_local_api_key()
    assert again.settings.api_keys[0].get_secret_value() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    configured = LocalStack(Settings(home=tmp_path / "other", api_keys=[SecretStr("mine")]))
    configured.use_local_api_key()  # a configured key wins: no file
    assert not (tmp_path / "other" / "api-key").exists()
    key_file.write_text("")
    with pytest.raises(StackError, match="delete it"):
        local_api_key(tmp_path / "home")
