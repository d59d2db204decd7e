"""Database URLs: passwords hidden wherever a URL is printed, and connection strings with connect
and statement timeouts (parrotwatch.stack.urls, parrotwatch.db)."""

from __future__ import annotations

import json
import os

import pytest
from psycopg.conninfo import conninfo_to_dict
from typer.testing import CliRunner

from parrotwatch.cli import app
from parrotwatch.db import conninfo, reader_conninfo
from parrotwatch.settings import Settings
from parrotwatch.stack.local import LocalStack
from parrotwatch.stack.urls import redact_url


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://pw:s3cret@db:5432/parrotwatch?sslmode=require",
     "postgresql://pw:***@db:5432/parrotwatch?sslmode=require"),
    ("postgresql://pw:p@ss:w0rd@db/x", "postgresql://pw:***@db/x"),
    ("postgresql://pw:@db/x", "postgresql://pw:***@db/x"),
    ("postgresql://postgres@127.0.0.1:5433/parrotwatch",
     "postgresql://postgres@127.0.0.1:5433/parrotwatch"),
    ("postgresql://db/x?user=u&password=s3cret&sslmode=verify-full",
     "postgresql://db/x?user=u&password=***&sslmode=verify-full"),
    ("host=db user=u password=s3cret dbname=x", "host=db user=u password=*** dbname=x"),
    ("host=db password = 'se cr\\'et' dbname=x", "host=db password = *** dbname=x"),
    ("http://[::1]:8088", "http://[::1]:8088"),
])
def test_redact_url_hides_passwords_and_keeps_where_it_points(url, shown):
    assert redact_url(url) == shown
    assert "s3cret" not in shown and "w0rd" not in shown


def test_redact_url_keeps_none_and_hides_what_it_cannot_parse():
    assert redact_url(None) is None
    assert redact_url("postgresql://u:secret@[::1/x") == "***"


def test_status_shows_the_database_url_without_its_password(tmp_path, monkeypatch):
    url = "postgresql://pipeline:hunter22@db.internal:5432/parrotwatch"
    settings = Settings(home=tmp_path, database_url=url, kafka_bootstrap="kafka:9092")
    assert LocalStack(settings, say=lambda m: None).status()["database_url"] == \
        "postgresql://pipeline:***@db.internal:5432/parrotwatch"
    for key in [k for k in os.environ if k.startswith("PARROTWATCH_")]:
        monkeypatch.delenv(key)
    env = {"PARROTWATCH_HOME": str(tmp_path), "PARROTWATCH_DATABASE_URL": url,
           "PARROTWATCH_KAFKA_BOOTSTRAP": "kafka:9092"}
    for args in (["status"], ["status", "--json"]):
        out = CliRunner().invoke(app, args, env=env)
        assert out.exit_code == 0, out.output
        assert "hunter22" not in out.output and "pipeline:***@db.internal" in out.output
    as_json = json.loads(CliRunner().invoke(app, ["status", "--json"], env=env).stdout)
    assert as_json["database_url"] == "postgresql://pipeline:***@db.internal:5432/parrotwatch"


def test_conninfo_adds_timeouts_and_keepalives_unless_the_url_sets_them(monkeypatch):
    monkeypatch.delenv("PGOPTIONS", raising=False)
    info = conninfo_to_dict(conninfo("postgresql://u:p@h:5/db"))
    assert (info["connect_timeout"], info["options"], info["keepalives_idle"]) == (
        "10", "-c statement_timeout=30000", "30")
    assert info["password"] == "p" and info["dbname"] == "db"
    own = conninfo_to_dict(conninfo(
        "postgresql://h/db?connect_timeout=3&options=-c%20statement_timeout%3D5s%20-c%20x%3Dy",
        lock_timeout_ms=500))
    assert own["connect_timeout"] == "3"
    assert own["options"] == "-c statement_timeout=5s -c x=y -c lock_timeout=500"
    assert "options" not in conninfo_to_dict(conninfo("postgresql://h/db",
                                                      statement_timeout_ms=None))
    merged = conninfo_to_dict(conninfo("postgresql://h/db?options=-c%20a%3Db", options="-c TimeZone=UTC"))
    assert merged["options"] == "-c a=b -c TimeZone=UTC -c statement_timeout=30000"
    monkeypatch.setenv("PGOPTIONS", "-c search_path=s")  # kept, as libpq would have used it
    assert conninfo_to_dict(conninfo("postgresql://h/db"))["options"] == \
        "-c search_path=s -c statement_timeout=30000"


def test_reader_conninfo_names_the_reader_and_never_the_pipelines_password():
    info = conninfo_to_dict(reader_conninfo("postgresql://pipeline:p1@h:5/db?sslmode=require", "r"))
    assert info == {"user": "parrotwatch_reader", "password": "r", "host": "h", "port": "5",
                    "dbname": "db", "sslmode": "require"}
