"""The review routes without a database: reviewer keys, the schema, label validation (refused
before any database call), the 503s of a review that is not set up, and the page's files."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from parrotwatch.services.api import create_app, review_store
from parrotwatch.services.api.deps import get_database_url, get_producer
from parrotwatch.settings import Settings

REVIEWER = {"X-Reviewer-Key": "alice-review-key-of-tests"}
GOOD = {"labels": {"toxic": False, "hallucinated": True, "off_topic": False, "helpful": 2}}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Idle:
    """The producer: review never produces."""

    def ping(self, timeout_s: float = 2.0) -> bool:
        return True


def _client(tmp_path, database=None, **settings) -> TestClient:
    base = {"home": tmp_path, "api_keys": [SecretStr("ingest-key")],
            "reviewer_keys": {"alice": SecretStr("alice-review-key-of-tests"),
                              "bob": SecretStr("bob-review-key-of-tests")}}
    app = create_app(Settings(**(base | settings)))
    app.dependency_overrides[get_producer] = Idle
    app.dependency_overrides[get_database_url] = database or (lambda: "postgresql://unused/x")
    return TestClient(app)


@pytest.fixture
def db_calls(monkeypatch) -> list[str]:
    """The database connections the routes open (none succeed here)."""
    calls: list[str] = []

    def refuse(url: str):
        calls.append(url)
        raise psycopg.OperationalError("no database in unit tests")

    monkeypatch.setattr(review_store, "_connect", refuse)
    return calls


@pytest.fixture
def client(tmp_path, db_calls) -> Iterator[TestClient]:
    with _client(tmp_path) as test_client:
        yield test_client


@pytest.mark.parametrize("headers", [{}, {"X-Reviewer-Key": "wrong"},
                                     {"X-Reviewer-Key": "ingest-key"},
                                     {"X-API-Key": "ingest-key"},
                                     {"Authorization": "Bearer ingest-key"}])
def test_review_needs_a_reviewer_key_and_an_ingestion_key_is_not_one(client, db_calls,
                                                                     headers):
    for method, path in (("GET", "/v1/review/schema"), ("GET", "/v1/review/next"),
                         ("POST", "/v1/review/items/1/labels"), ("POST", "/v1/review/items/1/skip")):
        answer = client.request(method, path, headers=headers, json=GOOD)
        assert answer.status_code == 401, (path, answer.text)
        assert "reviewer key" in answer.json()["detail"].lower()
    assert db_calls == []


def test_a_bearer_reviewer_key_works(client):
    answer = client.get("/v1/review/schema", headers={"Authorization": "Bearer bob-review-key-of-tests"})
    assert answer.status_code == 200
    assert [label["key"] for label in answer.json()["labels"]][:2] == ["toxic", "hallucinated"]


def test_without_reviewer_keys_review_is_503_and_ingestion_unaffected(tmp_path):
    with _client(tmp_path, reviewer_keys={}) as client:
        answer = client.get("/v1/review/next", headers=REVIEWER)
        assert answer.status_code == 503
        assert "PARROTWATCH_REVIEWER_KEYS" in answer.json()["detail"]
        assert client.get("/healthz").status_code == 200


def test_without_a_database_review_is_503(tmp_path):
    with _client(tmp_path, database=lambda: None) as client:
        answer = client.get("/v1/review/next", headers=REVIEWER)
    assert answer.status_code == 503
    assert "PARROTWATCH_DATABASE_URL" in answer.json()["detail"]


def test_an_unreachable_database_is_503_with_retry_after_and_no_password(tmp_path):
    url = f"postgresql://u:s3cret@127.0.0.1:{_closed_port()}/db"
    with _client(tmp_path, database=lambda: url) as client:
        for answer in (client.get("/v1/review/next", headers=REVIEWER),
                       client.post("/v1/review/items/1/labels", headers=REVIEWER, json=GOOD),
                       client.post("/v1/review/items/1/skip", headers=REVIEWER)):
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "5"
            assert "cannot be reached" in answer.json()["detail"]
            assert "s3cret" not in answer.text


def test_a_broken_label_schema_is_503_naming_the_fix(tmp_path):
    broken = tmp_path / "labels.yaml"
    broken.write_text("labels:\n  - {key: Toxic, kind: boolean, question: q}\n")
    with _client(tmp_path, review_labels=broken) as client:
        answer = client.get("/v1/review/schema", headers=REVIEWER)
        assert answer.status_code == 503
        assert str(broken) in answer.json()["detail"]
        assert "lower-case identifier" in answer.json()["detail"]


@pytest.mark.parametrize(("body", "says"), [
    ({"labels": {**GOOD["labels"], "toxicc": True}},
     "unknown label(s) 'toxicc'; this schema's labels are toxic, hallucinated"),
    ({"labels": {**GOOD["labels"], "helpful": 7}}, "'helpful' must be from 1 to 5, not 7"),
    ({"labels": {**GOOD["labels"], "toxic": "no"}}, "'toxic' is yes/no"),
    ({"labels": {"toxic": False}}, "label 'hallucinated' is missing"),
    ({"labels": GOOD["labels"], "comment": "x" * 4001}, "at most 4000 characters"),
    ({"labels": GOOD["labels"], "label": {}}, "label: Extra inputs are not permitted"),
    ({"comment": "no labels"}, "labels: Field required"),
    ([1, 2], "Send JSON"),
])
def test_bad_labels_are_422_saying_what_to_fix_before_any_database_call(client, db_calls,
                                                                        body, says):
    answer = client.post("/v1/review/items/1/labels", headers=REVIEWER, json=body)
    assert answer.status_code == 422, answer.text
    assert says in answer.json()["detail"]
    assert db_calls == []


@pytest.mark.parametrize("raw", [b"{not json", b'{"labels": {"toxic": "\\ud800"}}', b""])
def test_unparsable_bodies_are_422(client, raw):
    answer = client.post("/v1/review/items/1/labels", headers=REVIEWER, content=raw)
    assert answer.status_code == 422, answer.text


def test_a_huge_label_body_is_413(client):
    answer = client.post("/v1/review/items/1/labels", headers=REVIEWER,
                         content=b'{"comment": "' + b"x" * 70_000 + b'"}')
    assert answer.status_code == 413


@pytest.mark.parametrize("item", ["0", "-3", "abc", str(2**63)])
def test_an_impossible_item_id_is_422(client, item):
    assert client.post(f"/v1/review/items/{item}/skip", headers=REVIEWER).status_code == 422


def test_the_page_and_its_files_are_served_with_a_strict_policy(client):
    page = client.get("/review")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert '<script src="/review/static/review.js"' in page.text
    assert "<script>" not in page.text  # no inline script: the policy would block it
    for name, kind in (("review.js", "text/javascript"), ("review.css", "text/css")):
        answer = client.get(f"/review/static/{name}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind)
    script = client.get("/review/static/review.js").text
    assert "innerHTML" not in script and "http" not in script  # text only; nothing external
    for name in ("review.html", "..%2Fapp.py", "missing.js"):
        assert client.get(f"/review/static/{name}").status_code == 404


def test_good_labels_do_reach_the_database(client, db_calls):
    answer = client.post("/v1/review/items/1/labels", headers=REVIEWER, json=GOOD)
    assert answer.status_code == 503  # this test's database refuses every connection
    assert len(db_calls) == 1
