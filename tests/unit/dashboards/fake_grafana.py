"""A FAKE Grafana HTTP API, because no Grafana server can be installed on these machines.

It implements only the endpoints that grafana-client calls for ``parrotwatch dashboards push``
(see dashboards/push.py), with Grafana's status codes for the cases that matter to
idempotency: creating a datasource whose name or uid exists is 409, saving a dashboard whose
uid exists without ``overwrite`` is 412, a dashboard in a missing folder is 400, a missing
bearer token is 401. Any other path is answered 404 and recorded in ``unknown`` so that tests
can assert that push used nothing else. Served over real HTTP by uvicorn in a thread.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from parrotwatch.stack.processes import free_port


class FakeGrafana:
    def __init__(self, token: str, version: str = "11.6.0") -> None:
        self.token, self.version = token, version
        self.datasources: dict[str, dict[str, Any]] = {}  # uid -> model
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}  # uid -> {dashboard, folderUid, version}
        self.calls: list[tuple[str, str]] = []
        self.unknown: list[tuple[str, str]] = []
        self._ids = iter(range(1, 10**6))
        self.app = self._build()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None

    # -- HTTP ---------------------------------------------------------------------------------
    def _build(self) -> FastAPI:
        app = FastAPI()
        fake = self

        @app.middleware("http")
        async def auth_and_log(request: Request, call_next):
            route = re.sub(r"/uid/[^/]+$|/folders/[^/]+$", lambda m: m.group(0).rsplit("/", 1)[0]
                           + "/{uid}", request.url.path)
            fake.calls.append((request.method, route))
            if request.headers.get("authorization") != f"Bearer {fake.token}":
                return JSONResponse({"message": "Unauthorized"}, 401)
            return await call_next(request)

        @app.get("/api/frontend/settings")
        def settings():
            return {"buildInfo": {"version": fake.version, "edition": "Open Source"}}

        @app.get("/api/datasources/uid/{uid}")
        def get_datasource(uid: str):
            if uid not in fake.datasources:
                return JSONResponse({"message": "Data source not found"}, 404)
            return fake.datasources[uid]

        @app.post("/api/datasources")
        def create_datasource(body: dict[str, Any]):
            if any(d["name"] == body.get("name") for d in fake.datasources.values()):
                return JSONResponse({"message": "data source with the same name already exists"},
                                    409)
            if body.get("uid") in fake.datasources:
                return JSONResponse({"message": "data source with the same uid already exists"},
                                    409)
            model = {**body, "id": next(fake._ids), "version": 1}
            fake.datasources[body["uid"]] = model
            return {"datasource": model, "id": model["id"], "name": model["name"],
                    "message": "Datasource added"}

        @app.put("/api/datasources/uid/{uid}")
        def update_datasource(uid: str, body: dict[str, Any]):
            old = fake.datasources.get(uid)
            if old is None:
                return JSONResponse({"message": "Data source not found"}, 404)
            if any(d["name"] == body.get("name") and u != uid for u, d in fake.datasources.items()):
                return JSONResponse({"message": "data source with the same name already exists"},
                                    409)
            model = {**body, "uid": uid, "id": old["id"], "version": old["version"] + 1}
            fake.datasources[uid] = model
            return {"datasource": model, "id": model["id"], "name": model["name"],
                    "message": "Datasource updated"}

        @app.get("/api/folders/{uid}")
        def get_folder(uid: str):
            if uid not in fake.folders:
                return JSONResponse({"message": "folder not found"}, 404)
            return fake.folders[uid]

        @app.post("/api/folders")
        def create_folder(body: dict[str, Any]):
            if body.get("uid") in fake.folders:
                return JSONResponse({"message": "a folder with the same uid already exists"}, 409)
            if any(f["title"] == body["title"] for f in fake.folders.values()):
                return JSONResponse({"message": "a folder with the same name already exists"}, 409)
            uid = body.get("uid") or f"f{next(fake._ids)}"
            folder = {"id": next(fake._ids), "uid": uid, "title": body["title"], "version": 1}
            fake.folders[uid] = folder
            return folder

        @app.put("/api/folders/{uid}")
        def update_folder(uid: str, body: dict[str, Any]):
            folder = fake.folders.get(uid)
            if folder is None:
                return JSONResponse({"message": "folder not found"}, 404)
            if not body.get("overwrite") and body.get("version") != folder["version"]:
                return JSONResponse({"message": "the folder has been changed by someone else"}, 412)
            folder.update(title=body.get("title", folder["title"]), version=folder["version"] + 1)
            return folder

        @app.post("/api/dashboards/db")
        def save_dashboard(body: dict[str, Any]):
            dash, folder_uid = body.get("dashboard") or {}, body.get("folderUid", "")
            uid = dash.get("uid")
            if not dash.get("title") or not uid:
                return JSONResponse({"message": "Dashboard title and uid are required"}, 400)
            if folder_uid and folder_uid not in fake.folders:
                return JSONResponse({"message": "folder not found"}, 400)
            same_title = [u for u, d in fake.dashboards.items() if u != uid
                          and d["folderUid"] == folder_uid and d["dashboard"]["title"] == dash["title"]]
            if same_title:
                return JSONResponse({"status": "name-exists", "message": "A dashboard with the same "
                                     "name in the folder already exists"}, 412)
            old = fake.dashboards.get(uid)
            if old is not None and not body.get("overwrite"):
                return JSONResponse({"status": "version-mismatch", "message": "The dashboard has "
                                     "been changed by someone else"}, 412)
            version = old["version"] + 1 if old else 1
            stored = {**dash, "id": old["dashboard"]["id"] if old else next(fake._ids),
                      "version": version}
            fake.dashboards[uid] = {"dashboard": stored, "folderUid": folder_uid,
                                    "version": version, "message": body.get("message")}
            slug = re.sub(r"[^a-z0-9]+", "-", dash["title"].lower()).strip("-")
            return {"id": stored["id"], "uid": uid, "url": f"/d/{uid}/{slug}", "status": "success",
                    "version": version, "slug": slug}

        @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
        def unknown(path: str, request: Request):
            fake.unknown.append((request.method, "/" + path))
            return JSONResponse({"message": "Not found (not implemented by the fake)"}, 404)

        return app

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> FakeGrafana:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        threading.Thread(target=self._server.run, daemon=True).start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake Grafana did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
