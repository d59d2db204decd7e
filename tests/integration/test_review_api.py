"""The review queue against the real PostgreSQL: next / label / skip, the bad-input cases of issue
14 (each a clear 4xx, nothing stored twice), two-reviewer items, hidden scores, NUL comments and
expired texts. Review rows are inserted with SQL, as `parrotwatch review sample` leaves them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from parrotwatch.services.api import create_app, review_store
from parrotwatch.services.api.deps import get_producer

pytestmark = pytest.mark.integration
REVIEWERS = ("alice", "bob", "carol")
LABELS = {"toxic": False, "hallucinated": True, "off_topic": False, "helpful": 2}
SCORES = {"toxicity": 0.91, "hallucination": 0.12, "ood_score": None}


def reviewer_key(name: str) -> str:
    """The reviewer's key in these tests (16 characters or more, as the settings demand)."""
    return f"{name}-review-key-of-tests"


def key(name: str) -> dict[str, str]:
    return {"X-Reviewer-Key": reviewer_key(name)}


class Queue:
    """Review rows of one test database, inserted as the sampling job leaves them."""

    def __init__(self, namespace) -> None:
        self.ns = namespace
        self.sample_id = namespace.scalar(
            "INSERT INTO review_samples (model, app, period_start, period_end, population, pool,"
            " drawn, budget, design) VALUES ('m', 'a', '2026-01-01', '2026-01-02', 100, 20, 5,"
            " 5, '{}') RETURNING id")
        self.n = 0

    def add(self, *, needed: int = 1, expires: str = "now() + interval '1 day'",
            text: bool = True) -> int:
        """One item, younger than every item added before; its item_id."""
        self.n += 1
        request_id = f"req-{self.n}"
        if text:
            self.execute(
                "INSERT INTO review_texts (request_id, event_time, model, app, pool_probability,"
                " prompt, response, sources, sink_batch) VALUES (%s, '2026-01-01T10:00:00Z',"
                " 'm', 'a', 0.5, %s, %s, %s, 'b1')",
                request_id, f"prompt {self.n} <script>x()</script>", f"response {self.n}",
                json.dumps([f"source of {self.n}"]))  # a list of texts, as the stream keeps them
        return self.ns.scalar(
            "INSERT INTO review_items (sample_id, request_id, event_time, model, app,"
            " inclusion_probability, reviewers_needed, scores, expires_at, created_at)"
            f" VALUES (%s, %s, '2026-01-01T10:00:00Z', 'm', 'a', 0.25, %s, %s, {expires},"
            " now() + %s * interval '1 second') RETURNING item_id",
            self.sample_id, request_id, needed, json.dumps(SCORES), self.n)

    def execute(self, query: str, *params) -> None:
        with psycopg.connect(self.ns.database_url, autocommit=True) as conn:
            conn.execute(query, params)

    def labels(self, item_id: int | None = None) -> list[tuple]:
        where = "" if item_id is None else f" WHERE item_id = {int(item_id)}"
        return self.ns.sql(f"SELECT item_id, reviewer, labels, comment FROM review_labels{where}"
                           " ORDER BY labelled_at")


def make_client(namespace, **settings) -> TestClient:
    config = namespace.settings.model_copy(update={
        "api_keys": [SecretStr("ingest-key")],
        "reviewer_keys": {name: SecretStr(reviewer_key(name)) for name in REVIEWERS}, **settings})
    app = create_app(config)
    app.dependency_overrides[get_producer] = lambda: None
    return TestClient(app)


@pytest.fixture
def queue(namespace) -> Queue:
    return Queue(namespace)


@pytest.fixture
def api(namespace) -> Iterator[TestClient]:
    with make_client(namespace) as client:
        yield client


def label(api: TestClient, item_id: int, who: str, labels=None, comment=None):
    body = {"labels": LABELS if labels is None else labels}
    if comment is not None:
        body["comment"] = comment
    return api.post(f"/v1/review/items/{item_id}/labels", headers=key(who), json=body)


def test_next_label_and_skip_walk_the_queue_oldest_first(api, queue):
    first, second, third = queue.add(), queue.add(), queue.add()
    item = api.get("/v1/review/next", headers=key("alice")).json()
    assert item["item_id"] == first
    assert item["prompt"] == "prompt 1 <script>x()</script>"
    assert item["response"] == "response 1"
    assert item["sources"] == ["source of 1"]
    assert (item["model"], item["app"], item["request_id"]) == ("m", "a", "req-1")
    assert item["event_time"].startswith("2026-01-01T10:00:00")
    assert item["progress"] == {"labelled_by_you": 0, "remaining_for_you": 3}

    stored = label(api, first, "alice", comment="  clear case ")
    assert stored.status_code == 201, stored.text
    assert stored.json()["reviewer"] == "alice" and stored.json()["labels"] == LABELS
    assert queue.labels() == [(first, "alice", LABELS, "clear case")]

    assert api.get("/v1/review/next", headers=key("alice")).json()["item_id"] == second
    for _ in range(2):  # idempotent
        assert api.post(f"/v1/review/items/{second}/skip",
                        headers=key("alice")).status_code == 204
    assert queue.ns.scalar("SELECT count(*) FROM review_skips") == 1
    item = api.get("/v1/review/next", headers=key("alice")).json()
    assert item["item_id"] == third
    assert item["progress"] == {"labelled_by_you": 1, "remaining_for_you": 1}
    # bob still gets the item alice skipped; the one she labelled needed one reviewer only
    assert api.get("/v1/review/next", headers=key("bob")).json()["item_id"] == second

    assert label(api, third, "alice").status_code == 201
    done = api.get("/v1/review/next", headers=key("alice"))
    assert done.status_code == 204 and done.content == b""


def test_bad_input_gets_a_clear_4xx_and_nothing_is_stored_twice(api, queue):
    item = queue.add()
    unknown = label(api, item, "alice", labels={**LABELS, "toxicity": True})
    assert unknown.status_code == 422
    assert "unknown label(s) 'toxicity'" in unknown.json()["detail"]
    assert "toxic, hallucinated, off_topic, helpful" in unknown.json()["detail"]
    assert queue.labels() == []

    missing = label(api, 999_999, "alice")
    assert missing.status_code == 404 and "no review item 999999" in missing.json()["detail"]
    assert api.post("/v1/review/items/999999/skip", headers=key("alice")).status_code == 404

    assert label(api, item, "alice").status_code == 201
    again = label(api, item, "alice", labels={**LABELS, "helpful": 5})
    assert again.status_code == 409
    assert "already labelled" in again.json()["detail"]
    full = label(api, item, "bob")
    assert full.status_code == 409 and "already has all its labels" in full.json()["detail"]
    assert queue.labels() == [(item, "alice", LABELS, None)]


def test_a_two_reviewer_item_takes_two_labels_then_leaves_the_queue(api, queue):
    item = queue.add(needed=2)
    assert label(api, item, "alice").status_code == 201
    assert api.get("/v1/review/next", headers=key("alice")).status_code == 204
    assert api.get("/v1/review/next", headers=key("bob")).json()["item_id"] == item
    assert label(api, item, "bob", labels={**LABELS, "toxic": True}).status_code == 201
    assert api.get("/v1/review/next", headers=key("carol")).status_code == 204
    assert label(api, item, "carol").status_code == 409
    assert [(r[1], r[2]["toxic"]) for r in queue.labels(item)] == [("alice", False),
                                                                   ("bob", True)]


def test_concurrent_labels_never_exceed_the_reviewers_needed(namespace, queue):
    item = queue.add(needed=1)

    def attempt(who: str) -> str:
        try:
            review_store.add_label(namespace.database_url, item, who, LABELS, None)
            return "stored"
        except review_store.AlreadyDone:
            return "refused"

    with ThreadPoolExecutor(len(REVIEWERS) * 2) as pool:
        outcomes = list(pool.map(attempt, REVIEWERS * 2))
    assert sorted(outcomes) == ["refused"] * 5 + ["stored"]
    assert len(queue.labels(item)) == 1


def test_scores_are_hidden_unless_configured(namespace, queue, api):
    queue.add()
    assert "scores" not in api.get("/v1/review/next", headers=key("alice")).json()
    with make_client(namespace, review_show_scores=True) as shown:
        assert shown.get("/v1/review/next", headers=key("alice")).json()["scores"] == SCORES


def test_a_nul_in_a_comment_is_replaced_not_a_500(api, queue):
    item = queue.add()
    stored = label(api, item, "alice", comment="bad\x00byte")
    assert stored.status_code == 201, stored.text
    assert queue.labels(item)[0][3] == "bad\ufffdbyte"


def test_expired_or_deleted_texts_are_not_served_nor_labelled(api, queue):
    expired = queue.add(expires="now() - interval '1 minute'")
    deleted = queue.add(text=False)
    live = queue.add()
    item = api.get("/v1/review/next", headers=key("alice")).json()
    assert item["item_id"] == live
    assert item["progress"]["remaining_for_you"] == 1
    for gone in (expired, deleted):
        refused = label(api, gone, "alice")
        assert refused.status_code == 404 and "text expired" in refused.json()["detail"]
    assert queue.labels() == []


def _plan_nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _plan_nodes(child)


def test_the_queue_reads_live_items_only_however_many_expired(api, queue, namespace):
    """200,000 expired items (texts deleted, each labelled twice) behind 1,000 live ones: the next
    item and the count of remaining ones reach review_items by the expires_at index alone, and
    read a number of pages of the order of the live items, not of the history."""
    live = [queue.add() for _ in range(3)]
    queue.execute(
        "INSERT INTO review_items (sample_id, request_id, event_time, model, app,"
        " inclusion_probability, reviewers_needed, scores, expires_at, created_at)"
        " SELECT %s, 'old-' || g, now(), 'm', 'a', 0.5, 1, '{}',"
        " now() - interval '1 day', now() - interval '60 days' + g * interval '1 second'"
        " FROM generate_series(1, 200000) g", queue.sample_id)
    queue.execute("INSERT INTO review_labels (item_id, reviewer, labels) SELECT item_id, r, '{}'"
                  " FROM review_items, unnest(array['alice', 'bob']) r"
                  " WHERE request_id LIKE 'old-%%'")
    queue.execute("INSERT INTO review_texts (request_id, event_time, model, app, pool_probability,"
                  " prompt, response, sink_batch) SELECT 'live-' || g, now(), 'm', 'a', 0.5, 'p',"
                  " 'r', 'b' FROM generate_series(1, 997) g")
    queue.execute(
        "INSERT INTO review_items (sample_id, request_id, event_time, model, app,"
        " inclusion_probability, reviewers_needed, scores, expires_at, created_at)"
        " SELECT %s, 'live-' || g, now(), 'm', 'a', 0.5, 2, '{}', now() + interval '1 day',"
        " now() + interval '1 hour' + g * interval '1 second' FROM generate_series(1, 997) g",
        queue.sample_id)
    queue.execute("ANALYZE")

    item = api.get("/v1/review/next", headers=key("carol")).json()
    assert item["item_id"] == live[0]
    assert item["progress"] == {"labelled_by_you": 0, "remaining_for_you": 1000}
    with psycopg.connect(namespace.database_url) as conn:
        for query in (review_store.NEXT_ITEM, review_store.REMAINING):
            (plan,), = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query,
                                    {"reviewer": "carol"}).fetchone()
            nodes = list(_plan_nodes(plan["Plan"]))
            items = [n for n in nodes if n.get("Relation Name") == "review_items"]
            assert [(n["Node Type"], n["Index Name"]) for n in items] == [
                ("Index Scan", "review_items_live")], items
            assert items[0]["Actual Rows"] == 1000
            pages = plan["Plan"]["Shared Hit Blocks"] + plan["Plan"]["Shared Read Blocks"]
            assert pages < 6 * 1000  # its labels, skips and text: a few index pages per live item
