"""The one error root of flowlane.

Every error flowlane raises on purpose is a :class:`FlowlaneError` with a stable ``code``;
shells map error classes to exit codes and HTTP statuses in one table each.
"""

from __future__ import annotations

from typing import Any


class FlowlaneError(Exception):
    """Base of every flowlane error. ``code`` is stable; ``fields`` carry structured detail."""

    code = "error"
    retryable = False

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def __str__(self) -> str:
        return self.message


class ValidationError(FlowlaneError):
    """Input (a file, a value, a parameter) breaks its contract; nothing was changed."""

    code = "invalid"


class ExpressionError(ValidationError):
    """An expression does not parse or leaves the safe subset."""

    code = "invalid_expression"


class DurationError(ValidationError):
    """A duration is neither ISO 8601 nor the short form."""

    code = "invalid_duration"


class Refused(FlowlaneError):
    """A request the current state does not allow (wrong person, no such task, bad move)."""

    code = "refused"


class NotFound(Refused):
    """The thing asked for does not exist."""

    code = "not_found"


class Invalid(Refused):
    """A request whose input is not valid (a bad field value, an unknown option): refused,
    nothing changed; ``fields`` name what was wrong."""

    code = "invalid"


class TooLarge(Invalid):
    """An upload over its size limit (``limit``: the largest size accepted, in bytes)."""

    code = "too_large"


class UnsupportedType(Invalid):
    """An upload of a type that is not accepted (its extension, content type or content)."""

    code = "unsupported_type"


class Forbidden(Refused):
    """The person may not do this (their role or permissions do not allow it)."""

    code = "forbidden"


class Conflict(Refused):
    """The thing exists already, or its state does not allow the change."""

    code = "conflict"


class Unauthorized(Refused):
    """No valid credentials: log in, or give an API token."""

    code = "unauthorized"


class TooManyRequests(Refused):
    """Too many attempts; ``retry_after`` is how many seconds to wait."""

    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.retry_after = retry_after
