"""No secret in any log or status line: a real ``parrotwatch up`` (stream job, API) against a
database URL that carries a password and with a configured API key, some traffic (accepted,
refused with a wrong key, malformed), ``status``, ``status --json`` and ``down``; then every
file under PARROTWATCH_HOME and everything the commands printed is searched for the password
and the keys. The session stack's broker and PostgreSQL serve as the "external" ones (trust
authentication: the password is carried everywhere a real one would be, and never checked)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from parrotwatch.stack.kafka import produce
from parrotwatch.stack.processes import free_port
from parrotwatch.traffic import generate_inference_events
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parrotwatch.cli", *args], env=env,
                          capture_output=True, text=True, timeout=400)


def files_holding(root: Path, needles: dict[str, str]) -> list[str]:
    """``"<file>: <needle name>"`` for every file under ``root`` (jars aside) that holds a needle,
    as text or as bytes."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "jars" not in p.parts):
        data = path.read_bytes()
        found += [f"{path}: {name}" for name, value in needles.items() if value.encode() in data]
    return found


def test_no_password_or_api_key_in_logs_or_status(stack, base_settings, tmp_path):
    password, api_key, wrong_key = (f"{kind}-{secrets.token_hex(12)}"
                                    for kind in ("pw", "key", "wrongkey"))
    url = stack.postgres.fresh_database("secrets_in_logs")
    secret_url = url.replace("postgres@", f"postgres:{password}@", 1)
    assert password in secret_url
    home = tmp_path / "home"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PARROTWATCH_")},
           "PARROTWATCH_HOME": str(home), "PARROTWATCH_DATABASE_URL": secret_url,
           "PARROTWATCH_KAFKA_BOOTSTRAP": base_settings.bootstrap,
           "PARROTWATCH_TOPIC_PREFIX": "secrets.", "PARROTWATCH_API_PORT": str(free_port()),
           "PARROTWATCH_API_KEYS": json.dumps([api_key]), "PARROTWATCH_QUALITY_DETECTORS": "[]",
           "PARROTWATCH_TRIGGER_SECONDS": "0.5", "PARROTWATCH_SILENCE_AFTER_SECONDS": "0"}
    printed = []
    try:
        up = cli(env, "-v", "up")  # -v: INFO logs too
        printed.append(up.stdout + up.stderr)
        assert up.returncode == 0, up.stderr[-3000:]
        status = json.loads(cli(env, "status", "--json").stdout)
        assert status["database_url"] == secret_url.replace(password, "***")
        assert status["components"]["stream"] is True and status["components"]["api"] is True
        text = cli(env, "status")
        printed.append(text.stdout + text.stderr)
        assert "postgres:***@" in text.stdout

        events = generate_inference_events(2, seed=3, id_prefix="secrets")
        api = status["api_url"]
        ok = httpx.post(f"{api}/v1/inference", json=events[0], headers={"X-API-Key": api_key},
                        timeout=30)
        assert ok.status_code == 202, ok.text
        refused = httpx.post(f"{api}/v1/inference", json=events[1],
                             headers={"Authorization": f"Bearer {wrong_key}"}, timeout=30)
        assert refused.status_code == 401
        produce(base_settings.bootstrap, "secrets.llm.inference.v1", [(b"bad", b"{not json")])

        def stored() -> bool:
            with psycopg.connect(secret_url, autocommit=True) as conn:
                return conn.execute(
                    "SELECT (SELECT count(*) FROM inference_scores) + "
                    "(SELECT count(*) FROM dead_letters)").fetchone()[0] == 2
        wait_for(stored, timeout=180, what="the event and the dead letter in PostgreSQL")
    finally:
        down = cli(env, "down")
        printed.append(down.stdout + down.stderr)
    assert down.returncode == 0, down.stderr[-3000:]

    needles = {"database password": password, "API key": api_key, "refused key": wrong_key}
    assert (home / "logs").is_dir() and any((home / "logs").iterdir())
    assert files_holding(home, needles) == []
    assert [name for name, value in needles.items() if any(value in p for p in printed)] == []
    control = home / "logs" / "control.log"  # negative control: the scan does find a leak
    control.write_text(f"connecting to {secret_url}\n")
    assert files_holding(home, needles) == [f"{control}: database password"]
