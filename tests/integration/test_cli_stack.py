"""``parrotwatch up | status --json | down`` as a user runs them: real processes, real ports."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from parrotwatch.stack.jars import ensure_kafka_jars
from parrotwatch.stack.kafka import KafkaBroker
from parrotwatch.stack.processes import stack_ports
from parrotwatch.traffic import generate_inference_events
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parrotwatch.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_up_is_idempotent_status_reports_and_down_stops(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PARROTWATCH_")},
           "PARROTWATCH_HOME": str(tmp_path / "home"),
           **{f"PARROTWATCH_{name.upper()}": str(port) for name, port in stack_ports().items()}}
    try:
        first = cli(env, "up")
        assert first.returncode == 0, first.stderr[-3000:]
        second = cli(env, "up")  # idempotent: nothing restarted
        assert second.returncode == 0, second.stderr[-3000:]
        assert "starting" not in second.stderr

        status = json.loads(cli(env, "status", "--json").stdout)
        assert {"kafka_bootstrap", "database_url", "api_url"} <= status.keys()
        assert status["components"] == {"kafka": True, "postgres": True, "stream": True,
                                        "api": True}

        # no PARROTWATCH_API_KEYS: `up` generated a key, stored it 0600 and never printed it
        key_file = Path(status["api_key_file"])
        assert key_file == tmp_path / "home" / "api-key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = key_file.read_text().strip()
        assert len(key) >= 32 and key not in first.stdout + first.stderr
        assert str(key_file) in first.stderr
        assert key_file.read_text().strip() == key  # the second `up` reused it
        event = generate_inference_events(1, seed=9, id_prefix="cli")[0]
        r = httpx.post(f"{status['api_url']}/v1/inference", json=event,
                       headers={"X-API-Key": key}, timeout=30)
        assert r.status_code == 202, r.text
        assert httpx.post(f"{status['api_url']}/v1/inference", json=event,
                          headers={"X-API-Key": "dev-key"}, timeout=30).status_code == 401

        def stored() -> bool:
            with psycopg.connect(status["database_url"], autocommit=True) as conn:
                return conn.execute("SELECT count(*) FROM inference_scores WHERE request_id = %s",
                                    (event["request_id"],)).fetchone()[0] == 1
        wait_for(stored, timeout=120, what="the API's event in PostgreSQL")
    finally:
        down = cli(env, "down")
    assert down.returncode == 0, down.stderr[-3000:]
    after = json.loads(cli(env, "status", "--json").stdout)
    assert not any(after["components"].values())


def test_storage_format_takes_a_cluster_id_that_starts_with_a_dash(stack, base_settings,
                                                                   tmp_path):
    """Regression: ``-t -AbC...`` failed ``up`` 1 time in 64 (argparse took the id for an option)."""
    broker = KafkaBroker(base_settings, name="kafka-format-check")
    java = broker._java(ensure_kafka_jars(base_settings.jars_dir, tmp_path / "maven.log"))
    broker._format_storage(java, broker._write_config(), cluster_id="-AAAAAAAAAAAAAAAAAAAAA")
    meta = (broker.dir / "data" / "meta.properties").read_text()
    assert "cluster.id=-AAAAAAAAAAAAAAAAAAAAA" in meta
