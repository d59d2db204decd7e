"""``parrotwatch dashboards build -o DIR`` and ``parrotwatch dashboards push --url --token``."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Annotated

import typer

from parrotwatch.cli.common import fail, load_settings, say
from parrotwatch.sql import READER_ROLE

app = typer.Typer(help="Grafana dashboards as code (Grafana 11.6, PostgreSQL datasource "
                  "uid parrotwatch-pg): write them as JSON, or push them to a Grafana.",
                  no_args_is_help=True)


@app.command()
def build(
    out: Annotated[Path, typer.Option("-o", "--out", help="Directory for one JSON file per "
                                      "dashboard (Grafana's dashboard JSON model).")],
) -> None:
    """Write every dashboard as JSON: import them in Grafana's UI, or point a file provisioner
    (deploy/) at the directory."""
    from parrotwatch.dashboards import build_all

    out.mkdir(parents=True, exist_ok=True)
    for uid, model in build_all().items():
        path = out / f"{uid}.json"
        path.write_text(json.dumps(model, indent=2, sort_keys=True) + "\n")
        typer.echo(path)


def reader_password_file(home: Path) -> Path:
    """Where ``push`` keeps the generated password of the reader role (mode 0600)."""
    return home / "secrets" / "grafana-reader-password"


def stored_reader_password(home: Path, *, create: bool) -> str | None:
    """The reader's password from :func:`reader_password_file`, generated there on first use
    (``create``); ``None`` when absent and not created."""
    path = reader_password_file(home)
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.parent.chmod(0o700)
        try:  # O_EXCL: two pushes at once keep one password
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


@app.command()
def push(
    url: Annotated[str, typer.Option(envvar="GRAFANA_URL", help="Grafana base URL, e.g. "
                                     "http://localhost:3000.")],
    token: Annotated[str, typer.Option(envvar="GRAFANA_TOKEN", help="Service-account token "
                                       "(Admin role: it creates the datasource).")],
    folder: Annotated[str, typer.Option(help="Folder title for the dashboards.")] = "Parrotwatch",
    database_url: Annotated[str | None, typer.Option(
        help="PostgreSQL server and database as Grafana will reach them (host, port, database); "
             f"Grafana logs in as the read-only role {READER_ROLE}, not as the URL's user. "
             "Default: Parrotwatch's own (PARROTWATCH_DATABASE_URL or the embedded "
             "server).")] = None,
    reader_password: Annotated[str | None, typer.Option(
        envvar="GRAFANA_DB_PASSWORD", show_default=False,
        help=f"Password of {READER_ROLE} for the datasource. Default: generated once and kept "
             "in $PARROTWATCH_HOME/secrets/grafana-reader-password (mode 0600).")] = None,
    provision_reader: Annotated[bool, typer.Option(
        help=f"Give {READER_ROLE} (created NOLOGIN by the migrations) LOGIN and the password, "
             "connected as Parrotwatch's own database account. --no-provision-reader when a "
             "DBA manages the role's login: pass its password.")] = True,
    timeout: Annotated[float, typer.Option(min=0.1, max=3600, help="Seconds per HTTP request.")] = 30.0,
) -> None:
    """Create or update the PostgreSQL datasource (read-only role), the folder and every
    dashboard; running it again updates them in place (no duplicates)."""
    import psycopg
    from grafana_client import GrafanaApi

    from parrotwatch.dashboards import build_all
    from parrotwatch.dashboards.push import PushError
    from parrotwatch.dashboards.push import push as push_all
    from parrotwatch.db import ReaderRoleError
    from parrotwatch.db import provision_reader as provision
    from parrotwatch.stack.urls import database_url as settings_url

    settings = load_settings()
    own_url = settings_url(settings)
    password = reader_password or stored_reader_password(settings.home,
                                                         create=provision_reader)
    if password is None:
        fail("--no-provision-reader needs the reader's password: --reader-password or "
              "GRAFANA_DB_PASSWORD")
    if provision_reader:
        try:
            provision(own_url, password)
        except (ReaderRoleError, psycopg.OperationalError) as exc:
            fail(f"cannot provision {READER_ROLE}: {exc}")
        where = ("given" if reader_password
                 else f"kept in {reader_password_file(settings.home)}")
        say(f"role {READER_ROLE}: LOGIN, password {where}")
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    try:
        result = push_all(api, build_all(), database_url=database_url or own_url,
                          reader_password=password, folder_title=folder, say=say)
    except PushError as exc:
        fail(str(exc))
    base = url.rstrip("/")
    for path in result.dashboards.values():
        typer.echo(f"{base}{path}")
