"""Upload the PostgreSQL datasource, a folder and the dashboards to Grafana over its HTTP API,
through grafana-client. Idempotent: a second push updates the same objects (keyed by uid).

Grafana API calls made (and nothing else): ``GET /api/frontend/settings`` (the version);
``GET /api/datasources/uid/{uid}`` then ``POST /api/datasources`` or
``PUT /api/datasources/uid/{uid}``; ``GET /api/folders/{uid}`` then ``POST /api/folders`` or
``PUT /api/folders/{uid}``; ``POST /api/dashboards/db`` with ``overwrite: true`` per dashboard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg.conninfo import conninfo_to_dict

from parrotwatch.dashboards.grafana import DATASOURCE_TYPE, DATASOURCE_UID
from parrotwatch.db import READER_ROLE

log = logging.getLogger(__name__)
FOLDER_UID = "parrotwatch"


class PushError(RuntimeError):
    """Grafana refused something; the message says what and how to fix it."""


@dataclass
class PushResult:
    grafana_version: str
    datasource: str  # "created" | "updated"
    folder: str  # "created" | "updated" | "unchanged"
    dashboards: dict[str, str] = field(default_factory=dict)  # uid -> URL path in Grafana


def datasource_model(database_url: str, reader_password: str | None,
                     name: str = "Parrotwatch PostgreSQL") -> dict[str, Any]:
    """Grafana's PostgreSQL datasource for the server and database of ``database_url`` (as
    Grafana will reach them), logging in as the read-only role :data:`READER_ROLE` with
    ``reader_password``: never as the URL's own user, which is the pipeline's account."""
    info = conninfo_to_dict(database_url)
    if not info.get("host") or info["host"].startswith("/"):
        raise PushError(f"the database URL needs a TCP host Grafana can reach, got "
                        f"host={info.get('host')!r}; pass --database-url postgresql://HOST:PORT/DB")
    database = info.get("dbname") or info.get("user") or "postgres"
    model: dict[str, Any] = {
        "uid": DATASOURCE_UID, "name": name, "type": DATASOURCE_TYPE, "access": "proxy",
        "url": f"{info['host']}:{info.get('port') or 5432}", "user": READER_ROLE,
        "database": database, "isDefault": False,
        "jsonData": {"database": database, "sslmode": info.get("sslmode", "disable"),
                     "postgresVersion": 1500, "timescaledb": False, "maxOpenConns": 10,
                     "timeInterval": "1m"},
    }
    if reader_password:
        model["secureJsonData"] = {"password": reader_password}
    return model


def _status(exc: Exception) -> int | None:
    return getattr(exc, "status_code", None)


def _get_or_none(call: Callable[[], Any]) -> Any:
    from grafana_client.client import GrafanaClientError

    try:
        return call()
    except GrafanaClientError as exc:
        if _status(exc) == 404:
            return None
        raise


def push(api: Any, dashboards: Mapping[str, dict[str, Any]], *, database_url: str,
         reader_password: str | None, folder_title: str = "Parrotwatch",
         datasource_name: str = "Parrotwatch PostgreSQL",
         say: Callable[[str], None] = log.info) -> PushResult:
    """Create or update the datasource (read-only role, :func:`datasource_model`), the folder
    and every dashboard on ``api`` (a ``grafana_client.GrafanaApi``)."""
    from grafana_client.client import GrafanaException
    from niquests.exceptions import RequestException

    try:
        version = str(api.health.check().get("version", "unknown"))
        say(f"Grafana {version} at {api.client.url}")
        if version[:2].isdigit() and int(version.split(".")[0]) < 11:
            say(f"warning: the dashboards target Grafana 11.6 (schemaVersion 41); {version} may "
                "migrate or misread them")
        model = datasource_model(database_url, reader_password, datasource_name)
        existing = _get_or_none(lambda: api.datasource.get_datasource_by_uid(DATASOURCE_UID))
        if existing is None:
            api.datasource.create_datasource(model)
            ds_state = "created"
        else:
            api.datasource.update_datasource_by_uid(DATASOURCE_UID, {**model, "id": existing["id"]})
            ds_state = "updated"
        say(f"datasource {DATASOURCE_UID} ({READER_ROLE}@{model['url']}/{model['database']}): "
            f"{ds_state}")

        folder = _get_or_none(lambda: api.folder.get_folder(FOLDER_UID))
        if folder is None:
            api.folder.create_folder(folder_title, uid=FOLDER_UID)
            folder_state = "created"
        elif folder.get("title") != folder_title:
            api.folder.update_folder(FOLDER_UID, title=folder_title, overwrite=True)
            folder_state = "updated"
        else:
            folder_state = "unchanged"
        say(f"folder {folder_title!r} ({FOLDER_UID}): {folder_state}")

        result = PushResult(version, ds_state, folder_state)
        for uid, model_json in dashboards.items():
            reply = api.dashboard.update_dashboard({
                "dashboard": {**model_json, "id": None}, "folderUid": FOLDER_UID,
                "overwrite": True, "message": "parrotwatch dashboards push"})
            result.dashboards[uid] = reply.get("url", f"/d/{uid}")
            say(f"dashboard {model_json.get('title', uid)}: version {reply.get('version')} "
                f"{result.dashboards[uid]}")
        return result
    except GrafanaException as exc:
        hint = {401: "check --token (a service-account token with the Editor or Admin role)",
                403: "the token's role cannot write datasources/folders: use an Admin token"}
        raise PushError(f"Grafana refused the request ({_status(exc)}): {exc}; "
                        f"{hint.get(_status(exc), 'see the Grafana server log')}") from exc
    except RequestException as exc:
        raise PushError(f"cannot reach Grafana at {api.client.url}: {exc}; check --url") from exc
