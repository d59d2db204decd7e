"""The dashboards' read-only role (parrotwatch/sql/012_reader_role.sql) and the SQL safety of
dashboard variables, on the real PostgreSQL of the test stack (a fresh migrated database per
test). tests/integration/test_dashboards_sql.py runs every panel as this role on real data."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import errors
from typer.testing import CliRunner

from parrotwatch.cli.dashboards import app as dashboards_app
from parrotwatch.dashboards import DASHBOARDS
from parrotwatch.dashboards.macros import TimeRange, render
from parrotwatch.db import READER_ROLE, connect, provision_reader, reader_conninfo
from tests.unit.dashboards.fake_grafana import FakeGrafana

pytestmark = pytest.mark.integration
PASSWORD = "reader-test-password"
TR = TimeRange(datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC))
CRAFTED = ["toxicity FROM inference_scores s; DROP TABLE x; --", "x'; DROP TABLE x; --",
           "\\'; DROP TABLE x; --"]


@pytest.fixture
def reader(namespace) -> str:
    """The namespace database's connection string for the reader role, with a login."""
    provision_reader(namespace.database_url, PASSWORD)
    return reader_conninfo(namespace.database_url, PASSWORD)


def execute(url: str, sql: str) -> None:
    """One statement that returns no rows, as the pipeline's own account."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def scram_matches(verifier: str, password: str) -> bool:
    """Whether a stored ``SCRAM-SHA-256$iter:salt$StoredKey:ServerKey`` verifier is of
    ``password`` (RFC 5802: StoredKey = H(HMAC(SaltedPassword, "Client Key")))."""
    mechanism, params, keys = verifier.split("$")
    iterations, salt = params.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt),
                                 int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return mechanism == "SCRAM-SHA-256" and \
        hashlib.sha256(client_key).digest() == base64.b64decode(stored_key)


def test_the_reader_cannot_write_nor_read_payloads_or_state(namespace, reader):
    execute(namespace.database_url, "INSERT INTO dead_letters (source_topic, kafka_partition, "
            "kafka_offset, reason, payload) VALUES ('t', 0, 1, 'bad json', 'SECRET-PAYLOAD')")
    with psycopg.connect(reader, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (READER_ROLE,)
        assert conn.execute("SELECT reason, payload_bytes FROM dead_letter_reasons").fetchall() \
            == [("bad json", 14)]
        conn.execute("SET default_transaction_read_only = off")  # the grants hold regardless
        denied = [
            "INSERT INTO inference_scores (request_id, event_time, model, app, kafka_partition, "
            "kafka_offset, sink_batch) VALUES ('r', now(), 'm', 'a', 0, 0, 's')",
            "UPDATE alerts SET status = 'resolved'", "DELETE FROM window_counts",
            "TRUNCATE feedback", "SELECT payload FROM dead_letters", "SELECT * FROM dead_letters",
            "SELECT * FROM alert_evaluator_state", "SELECT excerpt FROM drift_reference",
            "SELECT * FROM drift_samples", "SELECT * FROM schema_migrations",
            "COPY dead_letters TO STDOUT", "DROP VIEW dead_letter_reasons",
            "CREATE TABLE mine (x int)",
            # review (014): the texts, the labels and who gave them, the scores shown to nobody
            "SELECT prompt FROM review_texts", "SELECT * FROM review_texts",
            "SELECT labels FROM review_labels", "SELECT reviewer FROM review_labels",
            "SELECT comment FROM review_labels", "SELECT scores FROM review_items",
            "SELECT request_id FROM review_items", "SELECT * FROM review_skips",
            "INSERT INTO calibration_applied (version, detector, threshold, applied_by) "
            "VALUES (1, 'toxicity', 0.5, 'me')"]
        for sql in denied:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(sql)
        assert conn.execute("SELECT count(*) FROM drift_reference").fetchone() == (0,)
        assert conn.execute("SELECT count(item_id), count(labelled_at) FROM review_labels"
                            ).fetchone() == (0, 0)  # what the review-progress panels count
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('statement_timeout', "
            "'standard_conforming_strings', 'lock_timeout')").fetchall())
        assert settings == {"statement_timeout": "30000", "standard_conforming_strings": "on",
                            "lock_timeout": "5000"}


def test_a_slow_query_of_the_reader_is_cancelled_by_its_timeout(reader):
    with psycopg.connect(reader, autocommit=True) as conn:
        started = time.monotonic()
        with pytest.raises(errors.QueryCanceled, match="statement timeout"):
            conn.execute("SELECT pg_sleep(60)")
        assert 29 < time.monotonic() - started < 45


def test_provisioning_sends_a_verifier_of_the_password_and_is_idempotent(namespace, reader):
    provision_reader(namespace.database_url, PASSWORD)  # again: same result
    (row,) = namespace.sql("SELECT rolcanlogin, rolsuper, rolpassword FROM pg_authid "
                           "WHERE rolname = %s", READER_ROLE)
    assert row[0] is True and row[1] is False
    assert scram_matches(row[2], PASSWORD) and not scram_matches(row[2], PASSWORD + "x")


def test_crafted_variable_values_do_no_harm_even_as_the_owner(namespace, reader):
    """Every query of every dashboard, with crafted values in each variable it uses, run on
    the pipeline's own (superuser) connection: nothing fails, the canary table survives. Grafana's
    driver sends a query as one simple-protocol message (several statements allowed): so does
    psycopg for a query without parameters, as the negative control shows."""
    execute(namespace.database_url, "CREATE TABLE x (keep int)")
    ran = 0
    with connect(namespace.database_url, autocommit=True) as conn:
        for d in DASHBOARDS:
            multi = {v.name: v.multi for v in d.variables}
            base = {v.name: ["m"] if v.multi else v.default for v in d.variables}
            sqls = [q.sql for p in d.panels() for q in p.queries] + [a.sql for a in d.annotations]
            for sql in sqls:
                for name in (n for n in multi if f"${n}" in sql or f"${{{n}}}" in sql):
                    for value in CRAFTED:
                        values = {**base, name: [value, "m"] if multi[name] else value}
                        conn.execute(render(sql, TR, timedelta(minutes=1), values, multi)).fetchall()
                        ran += 1
        assert ran > 300
        assert conn.execute("SELECT to_regclass('x') IS NOT NULL").fetchone() == (True,)
        # negative control: the old raw `s.$worst_by` runs the crafted statement
        old = "SELECT s.$worst_by FROM inference_scores s"
        conn.execute(render(old, TR, timedelta(minutes=1), {"worst_by": CRAFTED[0]}, {}))
        assert conn.execute("SELECT to_regclass('x') IS NOT NULL").fetchone() == (False,)


def test_push_provisions_the_reader_and_the_datasource_logs_in_as_it(namespace, tmp_path):
    with FakeGrafana("tok") as grafana:
        env = {"PARROTWATCH_HOME": str(tmp_path), "PARROTWATCH_DATABASE_URL": namespace.database_url}
        out = CliRunner().invoke(dashboards_app, ["push", "--url", grafana.url, "--token", "tok"],
                                 env=env)
        assert out.exit_code == 0, out.output
        ds = grafana.datasources["parrotwatch-pg"]
    password = (tmp_path / "secrets" / "grafana-reader-password").read_text().strip()
    assert ds["user"] == READER_ROLE and ds["secureJsonData"] == {"password": password}
    assert password not in out.output
    (verifier,) = namespace.sql("SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                                READER_ROLE)[0]
    assert scram_matches(verifier, password)
    info = f"host={ds['url'].split(':')[0]} port={ds['url'].split(':')[1]} " \
           f"dbname={ds['jsonData']['database']} user={ds['user']} password={password}"
    with psycopg.connect(info) as conn:
        assert conn.execute("SELECT current_user, count(*) FROM inference_scores").fetchone() \
            == (READER_ROLE, 0)


def test_connect_sets_the_timeouts_on_the_server(namespace):
    """parrotwatch.db.connect: the statement timeout reaches the session (and ends a slow
    statement), None leaves the server's default, extra options are kept."""
    with connect(namespace.database_url, statement_timeout_ms=300, options="-c TimeZone=UTC",
                 autocommit=True) as conn:
        assert conn.execute("SELECT current_setting('statement_timeout'), "
                            "current_setting('TimeZone')").fetchone() == ("300ms", "UTC")
        with pytest.raises(errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(5)")
    with connect(namespace.database_url, statement_timeout_ms=None) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)
