"""``create_api(container)``: the REST API as a FastAPI app (mounted at ``/api/v1``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from flowlane.api import errors
from flowlane.api.container import Container
from flowlane.api.limits import DEFAULT_LIMITS, BodyLimit
from flowlane.api.routes import auth, users
from flowlane.api.routes import instances as instances_routes
from flowlane.api.routes import messages as messages_routes
from flowlane.api.routes import objects as objects_routes
from flowlane.api.routes import processes as processes_routes
from flowlane.api.routes import tasks as tasks_routes

try:
    VERSION = version("flowlane")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    VERSION = "0"

ROUTERS = (
    auth.router,
    users.router,
    objects_routes.router,
    tasks_routes.router,
    messages_routes.router,
    processes_routes.router,
    instances_routes.router,
)
"""Every router of the API, in the order of the OpenAPI spec."""


def create_api(container: Container) -> FastAPI:
    """The API app over the container (no global state); OpenAPI at ``/openapi.json``,
    docs at ``/docs`` (under the mount: ``/api/v1/openapi.json``, ``/api/v1/docs``)."""
    api = FastAPI(
        title="flowlane API",
        version=VERSION,
        description="Business processes bound to objects. Authenticate with an API token "
        "(`Authorization: Bearer flowlane_...`) or the session cookie of POST /auth/login "
        "(then send `X-CSRF-Token` with unsafe requests). Errors are RFC 9457 problems.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    api.state.container = container
    for router in ROUTERS:
        api.include_router(router)
    api.add_middleware(BodyLimit, limits=container.body_limits or DEFAULT_LIMITS)
    errors.install(api)  # last: its 500 middleware is the outermost
    return api
