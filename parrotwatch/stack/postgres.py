"""The embedded PostgreSQL server: the binaries of the ``pgserver`` wheel, run on 127.0.0.1.

pgserver's own runner listens on a Unix socket only; Grafana and external tools need TCP, so we
drive ``initdb`` / ``pg_ctl`` from its wheel directly. As root, the server runs as the system
user ``pgserver`` (created once), as PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import warnings
from pathlib import Path

from parrotwatch.db import connect
from parrotwatch.stack.errors import StackError, log_tail
from parrotwatch.stack.processes import port_in_use

DB_NAME = "parrotwatch"


def _bin(name: str) -> str:
    try:
        with warnings.catch_warnings():  # pgserver's import asks platformdirs for a runtime dir
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise StackError("the embedded database needs the 'pgserver' package "
                         "(pip install pgserver), or set PARROTWATCH_DATABASE_URL") from exc
    return str(POSTGRES_BIN_PATH / name)


class EmbeddedPostgres:
    def __init__(self, home: Path, port: int) -> None:
        self.data = home / "pgdata"
        self.port = port
        self.log_file = home / "logs" / "postgres.log"
        self.user = _service_user()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DB_NAME}"

    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), capture_output=True, text=True, user=self.user)

    def _prepare_dirs(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.touch()
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            self.data.mkdir(parents=True, exist_ok=True)
            os.chown(self.data, entry.pw_uid, entry.pw_gid)
            os.chown(self.log_file, entry.pw_uid, entry.pw_gid)
            self.data.chmod(0o700)  # PostgreSQL refuses a data directory others can read
            for path in [*self.data.parents, self.log_file.parent]:  # traverse only, no read
                path.chmod(path.stat().st_mode | 0o011)

    def running(self) -> bool:
        out = self._run(_bin("pg_ctl"), "-D", str(self.data), "status")
        return out.returncode == 0

    def start(self) -> None:
        self._prepare_dirs()
        if not (self.data / "PG_VERSION").exists():
            out = self._run(_bin("initdb"), "-D", str(self.data), "-U", "postgres",
                            "--auth=trust", "-E", "UTF8", "--locale=C")
            if out.returncode != 0:
                raise StackError(f"initdb failed: {out.stderr.strip()}")
        if not self.running():
            if port_in_use(self.port):
                raise StackError(f"port {self.port} on 127.0.0.1 is taken by another process; "
                                 "free it or set PARROTWATCH_POSTGRES_PORT")
            out = self._run(_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log_file), "-w",
                            "-t", "60", "-o", f"-p {self.port} -h 127.0.0.1 -k {self.data} -c timezone=UTC",
                            "start")
            if out.returncode != 0:
                raise StackError(f"PostgreSQL did not start; log: {self.log_file}\n"
                                 f"{log_tail(self.log_file)}")
        self._ensure_database()

    def _ensure_database(self) -> None:
        with connect(self.admin_url(), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone():
                return
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')

    def fresh_database(self, name: str) -> str:
        """Drop and create database ``name`` on this server, apply the project's migrations; its URL.
        One test, replay or benchmark run per database keeps runs on one server apart."""
        from parrotwatch.db import migrate

        with connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        url = self.admin_url().rsplit("/", 1)[0] + f"/{name}"
        migrate(url)
        return url

    def stop(self) -> None:
        if self.data.exists() and self.running():
            self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


def _service_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("pgserver")
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run([useradd, "--system", "-s", "/usr/sbin/nologin", "pgserver"], check=True)
    return "pgserver"
