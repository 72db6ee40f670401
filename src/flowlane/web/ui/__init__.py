"""The web UI: server-rendered pages (Jinja2 + htmx 2) over the same services as the API.

* :mod:`.common` — the page environment, the logged-in person (:data:`UiDep`), rendering,
  CSRF, errors as pages or htmx fragments, gettext per request;
* :mod:`.session` — login, logout, language, home;
* :mod:`.work` — inbox, task page, task kanban by status, client cabinet;
* :mod:`.ops` — incidents with retry, outbox / mail sink, in-app notifications;
* :mod:`.objects` — object lists with the condition builder and mass start, object cards,
  kanban by stage, dictionaries;
* :mod:`.processes` — process list, admin tabs (General, Variables, Tasks, Statistics);
* :mod:`.designer` — the Process tab: the bpmn-js designer (palette, properties, validation,
  normalize, save as a new version, templates, test run with its trace on the diagram).

Browser libraries (htmx, bpmn-js, SortableJS, Chart.js) are served from their npm ``dist``
folders under ``/static/vendor/``; flowlane's own CSS and JS under ``/static/flowlane/``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from flowlane.api.container import Container
from flowlane.web.ui import designer, objects, ops, processes, session, work
from flowlane.web.ui.common import VENDOR_DIRS, VENDOR_FILES, install_handlers, node_modules

STATIC = Path(__file__).resolve().parents[1] / "static"
ROUTERS = (
    session.router,
    work.router,
    ops.router,
    objects.router,
    designer.router,  # before processes: /processes/new is not a process key
    processes.router,
)


def mount_ui(app: FastAPI, container: Container) -> None:
    """Add the UI's routes, static files and error handlers to ``app``."""
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static/flowlane", StaticFiles(directory=STATIC), name="flowlane-static")
    modules = node_modules()
    for name, folder in VENDOR_DIRS.items():
        path = modules / folder
        if path.is_dir():
            app.mount(f"/static/vendor/{name}", StaticFiles(directory=path), name=f"vendor-{name}")

    @app.get("/static/vendor/{name:path}", include_in_schema=False)
    async def vendor_file(name: str) -> FileResponse:
        if name not in VENDOR_FILES or not (modules / VENDOR_FILES[name]).is_file():
            raise HTTPException(404, "not installed: run make")
        return FileResponse(modules / VENDOR_FILES[name])

    install_handlers(app, container)
