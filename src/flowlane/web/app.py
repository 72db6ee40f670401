"""``create_app(container)``: the FastAPI application, with no global state.

The container holds what a request needs: the store and a way to make the account a request
works with. Every route parses input, calls one service and renders the answer; the rules
live in the services. The REST API (:mod:`flowlane.api`) is mounted at ``/api/v1``; the
web UI (:mod:`flowlane.web.ui`) serves the pages people work in.
"""

from __future__ import annotations

from fastapi import FastAPI

from flowlane.api import errors
from flowlane.api.app import create_api
from flowlane.api.container import Container
from flowlane.web import hooks, public
from flowlane.web.ui import mount_ui

__all__ = ["Container", "create_app"]

API_PREFIX = "/api/v1"


def create_app(container: Container) -> FastAPI:
    app = FastAPI(title="flowlane", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.container = container
    app.include_router(hooks.router)
    app.include_router(public.router)
    app.mount(API_PREFIX, create_api(container))
    mount_ui(app, container)
    errors.install_outer(app, API_PREFIX)  # paths the mount does not match: problems too
    return app
