"""Inbound webhooks: ``POST /hooks/{key}?token=<t>`` fires ``webhook:<key>``.

The body is a JSON object or a form (``application/x-www-form-urlencoded``), up to
:data:`MAX_BODY` bytes; its fields are the event's data. A body with a ``text`` (or
``message``) field is a bot-like message as well: it fires a ``message`` event too, so that
``keyword:<word>`` launches match its words. The token is the hook key signed with the
account secret (``flowlane hooks url`` prints the URL); a wrong or missing token gets a bare
404, as if there were no such hook. A call with an ``Idempotency-Key`` (or ``X-Request-Id``)
header seen before fires nothing and gets the first call's answer. The answer is
``{"started": [instance ids]}``. A refused event is 422 with a fixed ``detail`` (the reason
goes to the log, not to the caller); only a problem with one of the caller's own fields is
named (``detail`` and ``field``).
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from flowlane.core.errors import FlowlaneError, ValidationError
from flowlane.services.inbound import hook_token_ok, receive_hook
from flowlane.services.signing import account_secret

MAX_BODY = 256 * 1024
"""Largest body a hook accepts, in bytes (larger: 413)."""

REFUSED = "the event was refused"

log = logging.getLogger("flowlane.hooks")

router = APIRouter()


class _BadBody(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise _BadBody(413, f"the body is over {MAX_BODY} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY:
            raise _BadBody(413, f"the body is over {MAX_BODY} bytes")
    return bytes(body)


def _parse(content_type: str, body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("", "application/json") or kind.endswith("+json"):
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise _BadBody(422, "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise _BadBody(422, "the body must be a JSON object")
        return data
    if kind == "application/x-www-form-urlencoded":
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise _BadBody(422, "the form is not UTF-8") from None
    raise _BadBody(415, "send a JSON object or a form (application/x-www-form-urlencoded)")


def _refusal(exc: FlowlaneError, data: dict[str, Any]) -> dict[str, Any]:
    """What the caller learns of a refusal: a fixed text, and for a bad value of one of its
    own fields (an object field checked against the type) that field and the problem;
    nothing about the account's internals (processes, users, other objects)."""
    name = exc.fields.get("field")
    if isinstance(exc, ValidationError) and isinstance(name, str) and name in data:
        return {"detail": str(exc), "field": name}
    return {"detail": REFUSED}


@router.post("/hooks/{key}")
async def inbound_hook(key: str, request: Request) -> Response:
    container = request.app.state.container
    token = request.query_params.get("token", "")
    secret = await run_in_threadpool(account_secret, container.store)
    if not hook_token_ok(secret, key, token):
        return Response(status_code=404)
    try:
        data = _parse(request.headers.get("content-type", ""), await _read_body(request))
    except _BadBody as exc:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)
    idempotency = (
        request.headers.get("idempotency-key") or request.headers.get("x-request-id") or None
    )

    def fire() -> dict[str, Any]:
        return receive_hook(container.account(), key, data, idempotency)

    try:
        result = await run_in_threadpool(fire)
    except FlowlaneError as exc:
        log.warning("hook %s: event refused: %s", key, exc)
        return JSONResponse(_refusal(exc, data), status_code=422)
    return JSONResponse({"started": list(result.get("started", []))})
