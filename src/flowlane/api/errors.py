"""Errors as RFC 9457 problems (``application/problem+json``), from ONE table.

:data:`STATUS` maps flowlane error classes to HTTP statuses; an error takes the status of the
nearest class in its MRO. A problem is ``{type, title, status, detail, code, fields}``:
``code`` is the error's stable code, ``fields`` its structured detail. Request validation
errors are 422 problems naming the parameter; any other exception is a 500 problem that says
nothing about the internals (the exception is logged on the server).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowlane.core.errors import (
    Conflict,
    FlowlaneError,
    Forbidden,
    Invalid,
    NotFound,
    Refused,
    TooLarge,
    TooManyRequests,
    Unauthorized,
    UnsupportedType,
    ValidationError,
)

log = logging.getLogger("flowlane.api")

PROBLEM_JSON = "application/problem+json"

STATUS: dict[type[FlowlaneError], int] = {
    TooLarge: 413,
    UnsupportedType: 415,
    ValidationError: 422,
    Invalid: 422,
    NotFound: 404,
    Unauthorized: 401,
    Forbidden: 403,
    TooManyRequests: 429,
    Conflict: 409,
    Refused: 409,
    FlowlaneError: 400,
}
"""The one table: error class -> HTTP status (the nearest class in the MRO wins)."""


def status_of(exc: FlowlaneError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def problem(
    status: int,
    detail: str,
    *,
    code: str,
    fields: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response."""
    body = {
        "type": f"urn:flowlane:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "fields": jsonable_encoder(dict(fields or {})),
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def flowlane_problem(exc: FlowlaneError) -> JSONResponse:
    status = status_of(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return problem(status, exc.message, code=exc.code, fields=exc.fields, headers=headers)


def _where(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def validation_problem(exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"loc": _where(e.get("loc", ())), "msg": str(e.get("msg", "invalid"))} for e in exc.errors()
    ]
    detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors) or "the request is invalid"
    return problem(422, detail, code="invalid_request", fields={"errors": errors})


def http_problem(exc: StarletteHTTPException) -> JSONResponse:
    code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    headers = dict(exc.headers or {})
    return problem(exc.status_code, str(exc.detail), code=code, headers=headers)


def install_outer(app: FastAPI, prefix: str) -> None:
    """Make the HTTP errors the outer app ``app`` answers for paths under the API's mount
    ``prefix`` problems too (the mount does not match every path: one with a newline)."""

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        path = request.url.path
        if path == prefix or path.startswith(f"{prefix}/"):
            return http_problem(exc)
        return await http_exception_handler(request, exc)

    app.add_exception_handler(StarletteHTTPException, on_http)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app`` and the last-resort 500 middleware."""

    async def on_flowlane(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, FlowlaneError)
        return flowlane_problem(exc)

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return validation_problem(exc)

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return http_problem(exc)

    app.add_exception_handler(FlowlaneError, on_flowlane)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_middleware(ServerErrors)
    document_problems(app)


PROBLEM_REF = "#/components/schemas/Problem"


def problem_media_types(spec: dict[str, Any]) -> dict[str, Any]:
    """Declare problem responses as ``application/problem+json`` (what they are sent as):
    FastAPI puts every ``model=Problem`` response under ``application/json``. In place."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                declared = content.get("application/json", {})
                if declared.get("schema", {}).get("$ref") == PROBLEM_REF:
                    content[PROBLEM_JSON] = content.pop("application/json")
    return spec


def document_problems(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI spec say problems are ``application/problem+json``."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        return problem_media_types(make())  # idempotent: the spec is made once, then cached

    app.openapi = openapi  # type: ignore[method-assign]


class ServerErrors:
    """Any exception no handler took becomes a 500 problem without a trace (logged here)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = problem(500, "an internal error occurred", code="internal")
            await response(scope, receive, send)
