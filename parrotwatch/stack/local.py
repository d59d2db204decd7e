"""``parrotwatch up | down | status``: the local stack as idempotent, pid-file-tracked processes."""

from __future__ import annotations

import json
import os
import secrets
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from pydantic import SecretStr, ValidationError

from parrotwatch.db import migrate
from parrotwatch.settings import Settings
from parrotwatch.stack.errors import StackError
from parrotwatch.stack.kafka import KafkaBroker, create_topics
from parrotwatch.stack.postgres import EmbeddedPostgres
from parrotwatch.stack.processes import ManagedProcess, port_in_use, wait_until
from parrotwatch.stack.urls import database_url, redact_url

REPO_ROOT = Path(__file__).resolve().parents[2]
API_KEY_FILE = "api-key"
REVIEWER_KEYS_FILE = "reviewer-keys.json"
#: the local stack's reviewers: you, on the review page, and the demo's two simulated reviewers
LOCAL_REVIEWERS = ("reviewer", "simulated-alice", "simulated-bob")


def _private_file(path: Path, make: Callable[[], str]) -> str:
    """The text of ``path``, a secret of the local stack: written once with ``make()`` (mode
    0600, created exclusively, so two ``up`` calls agree), then read back (its mode tightened
    if someone loosened it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)  # readable by others: tighten it
        return path.read_text(encoding="utf-8")
    text = make()
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return text


def local_api_key(home: Path) -> tuple[str, Path]:
    """The local stack's API key and its file, ``home/api-key``: created on first use (random,
    mode 0600), then reused, so that a running API and its clients agree across ``up`` calls."""
    path = home / API_KEY_FILE
    key = _private_file(path, lambda: secrets.token_urlsafe(32) + "\n").strip()
    if not key:
        raise StackError(f"{path} is empty; delete it and run `parrotwatch up` again to "
                         "generate a new key")
    return key, path


def local_reviewer_keys(home: Path) -> tuple[dict[str, str], Path]:
    """The local stack's reviewer keys (name -> key, :data:`LOCAL_REVIEWERS`) and their file,
    ``home/reviewer-keys.json``: created on first use (random, mode 0600), then reused."""
    path = home / REVIEWER_KEYS_FILE
    text = _private_file(path, lambda: json.dumps(
        {name: secrets.token_urlsafe(32) for name in LOCAL_REVIEWERS}, indent=1))
    try:
        keys = json.loads(text)
    except ValueError:
        keys = None
    if not isinstance(keys, dict) or not keys or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in keys.items()):
        raise StackError(f"{path} is not a JSON object of reviewer name -> key; delete it and "
                         "run `parrotwatch up` again to generate new keys")
    return keys, path


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a child process needs to see the same stack as ``settings``."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, list):
            value = json.dumps([v.get_secret_value() if isinstance(v, SecretStr) else v
                                for v in getattr(settings, name)])
        elif isinstance(value, dict):  # e.g. reviewer_keys: name -> key
            value = json.dumps({k: v.get_secret_value() if isinstance(v, SecretStr) else v
                                for k, v in getattr(settings, name).items()}, default=str)
        elif isinstance(getattr(settings, name), SecretStr):  # model_dump masks it
            value = getattr(settings, name).get_secret_value()
        env[f"PARROTWATCH_{name.upper()}"] = str(value)
    env["PARROTWATCH_KAFKA_BOOTSTRAP"] = settings.bootstrap
    env["PARROTWATCH_DATABASE_URL"] = database_url(settings)
    return env


class LocalStack:
    def __init__(self, settings: Settings, say: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.say = say
        self.broker = KafkaBroker(settings) if settings.local_kafka else None
        self.postgres = (EmbeddedPostgres(settings.home, settings.postgres_port)
                         if settings.local_database else None)
        suffix = f"-{settings.topic_prefix.strip('.')}" if settings.topic_prefix else ""
        self.stream = ManagedProcess(f"stream{suffix}", settings.run_dir,
                                     settings.logs_dir / f"stream{suffix}.log")
        self.api = ManagedProcess("api", settings.run_dir, settings.logs_dir / "api.log")
        self.dispatcher = ManagedProcess("dispatcher", settings.run_dir,
                                         settings.logs_dir / "dispatcher.log")

    @property
    def status_file(self) -> Path:
        return self.settings.stream_status_file

    # -- up ------------------------------------------------------------------------------------
    def up(self, *, stream: bool = True, api: bool = True) -> dict:
        s = self.settings
        for d in (s.home, s.logs_dir, s.run_dir):
            d.mkdir(parents=True, exist_ok=True)
        if self.postgres:
            if not self.postgres.running():
                self.say(f"postgres: starting on 127.0.0.1:{s.postgres_port} "
                         f"(log {self.postgres.log_file})")
            self.postgres.start()
        url = database_url(s)
        migrate(url)
        if self.broker:
            if not self.broker.process.alive():
                self.say(f"kafka: starting on {s.bootstrap} (log {self.broker.log_file})")
            self.broker.start()
        create_topics(s.bootstrap, s.topic_prefix)
        if stream:
            self.start_stream()
        if api:
            self.start_api()
        if s.receivers is not None:
            self.start_dispatcher()
        return self.status()

    def start_dispatcher(self) -> None:
        """Deliver ``llm.alerts.v1`` to the receivers of ``PARROTWATCH_RECEIVERS``."""
        if self.dispatcher.alive():
            return
        self.say(f"dispatcher: starting (log {self.dispatcher.log_path})")
        self.dispatcher.start([sys.executable, "-m", "parrotwatch.services.dispatcher", "--receivers",
                               str(self.settings.receivers)], env=settings_env(self.settings),
                              cwd=REPO_ROOT)
        time.sleep(2)
        if not self.dispatcher.alive():
            raise self.dispatcher.fail("dispatcher exited at start")

    def start_stream(self, timeout: float = 180.0) -> None:
        if not self.stream.alive():
            self.say(f"stream: starting Spark scoring job (log {self.stream.log_path})")
            self.status_file.unlink(missing_ok=True)
            self.stream.start([sys.executable, "-m", "parrotwatch.streaming.job"],
                              env=settings_env(self.settings), cwd=REPO_ROOT)
        wait_until(self._stream_running, timeout=timeout, proc=self.stream,
                   what="streaming queries to run")

    def _stream_running(self) -> bool:
        try:
            status = json.loads(self.status_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return False
        fresh = time.time() - status["updated_at"] < 30
        return fresh and all(q["active"] for q in status["queries"].values())

    def use_local_api_key(self) -> None:
        """With no ``PARROTWATCH_API_KEYS``, give the API (and this stack's clients, through
        ``self.settings``) the key generated for the local stack; say where it is, never what."""
        if self.settings.api_keys:
            return
        key, path = local_api_key(self.settings.home)
        self.settings = self.settings.model_copy(update={"api_keys": [SecretStr(key)]})
        self.say(f"api: no PARROTWATCH_API_KEYS set; using the local stack's key in {path} "
                 "(mode 0600): send it as X-API-Key")

    def use_local_reviewer_keys(self) -> None:
        """With no ``PARROTWATCH_REVIEWER_KEYS``, the local stack's reviewers (see
        :func:`local_reviewer_keys`); say where the keys are, never what."""
        if self.settings.reviewer_keys:
            return
        keys, path = local_reviewer_keys(self.settings.home)
        try:  # the same checks as PARROTWATCH_REVIEWER_KEYS (a hand-edited file may break them)
            checked = Settings.model_validate({**self.settings.model_dump(), "reviewer_keys": keys})
        except ValidationError as exc:
            raise StackError(f"{path}: {exc.errors()[0]['msg']}; fix it, or delete it and run "
                             "`parrotwatch up` again to generate new keys") from None
        self.settings = self.settings.model_copy(update={"reviewer_keys": checked.reviewer_keys})
        self.say(f"api: review page {self.settings.api_url}/review; reviewer keys in {path} "
                 "(mode 0600)")

    def start_api(self, timeout: float = 60.0) -> None:
        self.use_local_api_key()
        self.use_local_reviewer_keys()
        s = self.settings
        if not self.api.alive():
            if port_in_use(s.api_port, s.api_host):
                raise StackError(f"port {s.api_port} is taken by another process; free it or "
                                 "set PARROTWATCH_API_PORT")
            self.say(f"api: starting on {s.api_url} (log {self.api.log_path})")
            self.api.start([sys.executable, "-m", "parrotwatch.services.api"], env=settings_env(s),
                           cwd=REPO_ROOT)
        wait_until(lambda: httpx.get(f"{s.api_url}/healthz", timeout=2).status_code == 200,
                   timeout=timeout, proc=self.api, what="GET /healthz")

    # -- down / status -------------------------------------------------------------------------
    def down(self) -> None:
        for name, proc in (("dispatcher", self.dispatcher), ("api", self.api),
                           ("stream", self.stream)):
            if proc.alive():
                self.say(f"{name}: stopping")
            proc.stop(timeout=60)
        if self.broker:
            self.say("kafka: stopping")
            self.broker.stop()
        if self.postgres:
            self.say("postgres: stopping")
            self.postgres.stop()

    def stream_progress(self) -> dict:
        """Last micro-batch of each streaming query: id, rows in, rows/s (from the job)."""
        try:
            queries = json.loads(self.status_file.read_text())["queries"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return {}
        out = {}
        for name, q in queries.items():
            p = q.get("progress") or {}
            out[name] = {"active": q["active"], "batch_id": p.get("batchId"),
                         "rows": p.get("numInputRows"),
                         "input_rows_per_s": p.get("inputRowsPerSecond"),
                         "processed_rows_per_s": p.get("processedRowsPerSecond"),
                         "at": p.get("timestamp")}
        return out

    def status(self) -> dict:
        s = self.settings
        components = {
            "kafka": self.broker.process.alive() if self.broker else "external",
            "postgres": self.postgres.running() if self.postgres else "external",
            "stream": self.stream.alive() and self._stream_running(),
            "api": self.api.alive(),
        }
        if s.receivers is not None:
            components["dispatcher"] = self.dispatcher.alive()
        return {
            "stream_progress": self.stream_progress(),
            "kafka_bootstrap": s.bootstrap,
            "database_url": redact_url(database_url(s)),  # printed: no password
            "api_url": s.api_url,
            "api_key_file": str(key_file) if (key_file := s.home / API_KEY_FILE).exists() else None,
            "home": str(s.home),
            "components": components,
            "logs": {
                "kafka": str(self.broker.log_file) if self.broker else None,
                "postgres": str(self.postgres.log_file) if self.postgres else None,
                "stream": str(self.stream.log_path),
                "api": str(self.api.log_path),
                "dispatcher": str(self.dispatcher.log_path),
            },
        }
