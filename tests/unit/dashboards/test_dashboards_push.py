"""``parrotwatch dashboards push`` over real HTTP against a fake Grafana API (tests/unit/dashboards/
fake_grafana.py: no Grafana server can be installed here): creates the datasource, the folder and
the dashboards, and a second push updates them in place."""

from __future__ import annotations

import json

import pytest
from grafana_client import GrafanaApi
from typer.testing import CliRunner

from parrotwatch.cli.dashboards import app
from parrotwatch.dashboards import DATASOURCE_TYPE, DATASOURCE_UID, build_all
from parrotwatch.dashboards.push import FOLDER_UID, PushError, push
from tests.unit.dashboards.fake_grafana import FakeGrafana

TOKEN = "glsa_test_token"
DB_URL = "postgresql://parrotwatch:pipeline-secret@db.internal:5433/parrotwatch"
READER_PW = "reader-s3cret"
IMPLEMENTED = {("GET", "/api/frontend/settings"), ("GET", "/api/datasources/uid/{uid}"),
               ("POST", "/api/datasources"), ("PUT", "/api/datasources/uid/{uid}"),
               ("GET", "/api/folders/{uid}"), ("POST", "/api/folders"),
               ("PUT", "/api/folders/{uid}"), ("POST", "/api/dashboards/db")}


@pytest.fixture
def grafana():
    with FakeGrafana(TOKEN) as fake:
        yield fake


def api(fake: FakeGrafana, token: str = TOKEN) -> GrafanaApi:
    return GrafanaApi.from_url(fake.url, credential=token, timeout=10)


def test_push_creates_then_updates_without_duplicates(grafana):
    models = build_all()
    first = push(api(grafana), models, database_url=DB_URL, reader_password=READER_PW, say=lambda m: None)
    assert (first.grafana_version, first.datasource, first.folder) == ("11.6.0", "created", "created")
    assert set(first.dashboards) == set(models)
    ds = grafana.datasources[DATASOURCE_UID]
    assert (ds["type"], ds["url"], ds["user"], ds["jsonData"]["database"]) == (
        DATASOURCE_TYPE, "db.internal:5433", "parrotwatch_reader", "parrotwatch")
    # the read-only role, never the pipeline's own account and password
    assert ds["secureJsonData"] == {"password": READER_PW} and "password" not in ds["jsonData"]
    assert "pipeline-secret" not in json.dumps(ds)
    assert {u: d["folderUid"] for u, d in grafana.dashboards.items()} == dict.fromkeys(models, FOLDER_UID)
    for uid, stored in grafana.dashboards.items():
        assert stored["dashboard"]["panels"] == models[uid]["panels"] and stored["version"] == 1

    calls_before = len(grafana.calls)
    second = push(api(grafana), models, database_url=DB_URL, reader_password=READER_PW, say=lambda m: None)
    assert (second.datasource, second.folder) == ("updated", "unchanged")
    assert second.dashboards == first.dashboards
    assert len(grafana.datasources) == 1 and len(grafana.folders) == 1
    assert len(grafana.dashboards) == len(models)
    assert {d["version"] for d in grafana.dashboards.values()} == {2}
    assert grafana.datasources[DATASOURCE_UID]["version"] == 2
    again = grafana.calls[calls_before:]
    assert ("POST", "/api/datasources") not in again and ("POST", "/api/folders") not in again

    renamed = push(api(grafana), models, database_url=DB_URL, reader_password=READER_PW,
                   folder_title="LLM observability",
                   say=lambda m: None)
    assert renamed.folder == "updated" and len(grafana.folders) == 1
    assert grafana.folders[FOLDER_UID]["title"] == "LLM observability"
    # only the endpoints the fake implements, each of them exercised
    assert grafana.unknown == [] and set(grafana.calls) == IMPLEMENTED


def test_the_fake_enforces_what_makes_a_naive_push_fail(grafana):
    """A push that POSTs again, or saves without overwrite, would be refused: the idempotency
    assertions above are not vacuous."""
    client = api(grafana)
    push(client, build_all(), database_url=DB_URL, reader_password=READER_PW, say=lambda m: None)
    from grafana_client.client import GrafanaClientError

    with pytest.raises(GrafanaClientError) as dup:
        client.datasource.create_datasource({"uid": DATASOURCE_UID, "name": "Parrotwatch PostgreSQL"})
    assert dup.value.status_code == 409
    with pytest.raises(GrafanaClientError) as stale:
        client.dashboard.update_dashboard({"dashboard": build_all()["parrotwatch-overview"],
                                           "folderUid": FOLDER_UID, "overwrite": False})
    assert stale.value.status_code == 412


def test_wrong_token_and_unreachable_grafana_are_explained(grafana):
    with pytest.raises(PushError, match=r"\(401\).*--token"):
        push(api(grafana, token="wrong"), build_all(), database_url=DB_URL,
             reader_password=READER_PW, say=lambda m: None)
    assert grafana.datasources == {} and grafana.dashboards == {}
    closed = GrafanaApi.from_url("http://127.0.0.1:9", credential=TOKEN, timeout=2)
    with pytest.raises(PushError, match="cannot reach Grafana"):
        push(closed, build_all(), database_url=DB_URL, reader_password=READER_PW, say=lambda m: None)


def test_datasource_needs_a_tcp_host():
    from parrotwatch.dashboards.push import datasource_model

    with pytest.raises(PushError, match="TCP host"):
        datasource_model("postgresql:///parrotwatch?host=/var/run/postgresql", READER_PW)


def test_cli_build_and_push(grafana, tmp_path):
    runner = CliRunner()
    built = runner.invoke(app, ["build", "-o", str(tmp_path / "out")])
    assert built.exit_code == 0, built.output
    files = sorted((tmp_path / "out").glob("*.json"))
    assert [f.stem for f in files] == sorted(build_all())
    assert json.loads(files[0].read_text()) == build_all()[files[0].stem]

    args = ["push", "--url", grafana.url, "--token", TOKEN, "--database-url", DB_URL,
            "--folder", "Parrotwatch", "--no-provision-reader"]
    env = {"GRAFANA_DB_PASSWORD": READER_PW}
    for _ in range(2):
        pushed = runner.invoke(app, args, env=env)
        assert pushed.exit_code == 0, pushed.output
    assert grafana.datasources[DATASOURCE_UID]["secureJsonData"] == {"password": READER_PW}
    assert READER_PW not in pushed.output
    assert f"{grafana.url}/d/parrotwatch-overview/parrotwatch-overview" in pushed.stdout
    assert len(grafana.dashboards) == len(build_all()) and len(grafana.datasources) == 1
    refused = runner.invoke(app, [*args[:3], "--token", "nope", *args[5:]], env=env)
    assert refused.exit_code == 1 and "401" in refused.output


def test_cli_push_without_provisioning_needs_the_readers_password(grafana, tmp_path):
    args = ["push", "--url", grafana.url, "--token", TOKEN, "--database-url", DB_URL,
            "--no-provision-reader"]
    out = CliRunner().invoke(app, args, env={"PARROTWATCH_HOME": str(tmp_path)})
    assert out.exit_code == 1 and "--reader-password" in out.output
    assert grafana.datasources == {}


def test_the_generated_reader_password_is_private_and_stable(tmp_path):
    from parrotwatch.cli.dashboards import reader_password_file, stored_reader_password

    assert stored_reader_password(tmp_path, create=False) is None
    first = stored_reader_password(tmp_path, create=True)
    path = reader_password_file(tmp_path)
    assert len(first) >= 32 and stored_reader_password(tmp_path, create=True) == first
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
