"""``parrotwatch dashboards build -o DIR`` and ``parrotwatch dashboards push --url --token``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Grafana dashboards as code (Grafana 11.6, PostgreSQL datasource "
                  "uid parrotwatch-pg): write them as JSON, or push them to a Grafana.",
                  no_args_is_help=True)


def _say(message: str) -> None:
    typer.echo(message, err=True)


@app.command()
def build(
    out: Annotated[Path, typer.Option("-o", "--out", help="Directory for one JSON file per "
                                      "dashboard (Grafana's dashboard JSON model).")],
) -> None:
    """Write every dashboard as JSON: import them in Grafana's UI, or point a file provisioner
    (deploy/) at the directory."""
    from dashboards import build_all

    out.mkdir(parents=True, exist_ok=True)
    for uid, model in build_all().items():
        path = out / f"{uid}.json"
        path.write_text(json.dumps(model, indent=2, sort_keys=True) + "\n")
        typer.echo(path)


@app.command()
def push(
    url: Annotated[str, typer.Option(envvar="GRAFANA_URL", help="Grafana base URL, e.g. "
                                     "http://localhost:3000.")],
    token: Annotated[str, typer.Option(envvar="GRAFANA_TOKEN", help="Service-account token "
                                       "(Admin role: it creates the datasource).")],
    folder: Annotated[str, typer.Option(help="Folder title for the dashboards.")] = "Parrotwatch",
    database_url: Annotated[str | None, typer.Option(
        help="PostgreSQL URL as Grafana will reach it; default: Parrotwatch's own "
             "(PARROTWATCH_DATABASE_URL or the embedded server).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per HTTP request.")] = 30.0,
) -> None:
    """Create or update the PostgreSQL datasource, the folder and every dashboard; running it
    again updates them in place (no duplicates)."""
    from grafana_client import GrafanaApi

    from dashboards import build_all
    from dashboards.push import PushError
    from dashboards.push import push as push_all

    if database_url is None:
        from parrotwatch.cli import load_settings
        from parrotwatch.stack.urls import database_url as settings_url

        database_url = settings_url(load_settings())
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    try:
        result = push_all(api, build_all(), database_url=database_url, folder_title=folder,
                          say=_say)
    except PushError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    base = url.rstrip("/")
    for path in result.dashboards.values():
        typer.echo(f"{base}{path}")
