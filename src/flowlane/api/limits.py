"""Request body limits per route: the first pattern that matches the path wins.

Patterns are :func:`fnmatch.fnmatchcase` patterns over the path inside the API (without
``/api/v1``). A body over the limit is refused with a 413 problem before a route reads it.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowlane.api.errors import problem

MB = 1024 * 1024
DEFAULT_LIMITS: tuple[tuple[str, int], ...] = (
    ("/tasks/*/attachments*", 30 * MB),
    ("/tasks/*/comments*", 30 * MB),
    ("*", 1 * MB),
)
"""(pattern, bytes): attachments and comments with files may be larger than JSON."""


def limit_for(limits: tuple[tuple[str, int], ...], path: str) -> int:
    for pattern, size in limits:
        if fnmatchcase(path, pattern):
            return size
    return limits[-1][1] if limits else MB


class BodyLimit:
    """ASGI middleware: refuse bodies over the limit of their path (413)."""

    def __init__(self, app: ASGIApp, limits: tuple[tuple[str, int], ...] = DEFAULT_LIMITS):
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        root = str(scope.get("root_path", ""))
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        limit = limit_for(self.limits, path)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(limit, scope, receive, send)
            return
        seen = 0
        refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Answer now; the route then sees the client gone and its answer is dropped.
                    refused = True
                    await self._refuse(limit, scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def watch(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, counted, watch)
        except Exception:
            if not refused:
                raise

    @staticmethod
    async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, f"the body is over {limit} bytes", code="too_large")
        await response(scope, receive, send)
