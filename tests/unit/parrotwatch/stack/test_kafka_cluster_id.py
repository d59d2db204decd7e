"""KRaft cluster ids: never one that Kafka's command-line tools would read as an option."""

from __future__ import annotations

import base64
import uuid

from parrotwatch.stack import kafka


def test_cluster_id_is_redrawn_while_it_starts_with_a_dash(monkeypatch):
    dash_first = uuid.UUID(bytes=base64.urlsafe_b64decode("-AAAAAAAAAAAAAAAAAAAAA=="))
    plain = uuid.UUID(int=1)
    draws = iter([dash_first, dash_first, plain])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(draws))
    cluster_id = kafka.new_cluster_id()
    assert cluster_id == base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")
    assert next(draws, None) is None  # both dash-first draws were refused


def test_cluster_ids_are_22_url_safe_characters_of_a_fresh_uuid():
    ids = {kafka.new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    for cluster_id in ids:
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
