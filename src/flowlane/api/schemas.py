"""Response and request models shared by the routers (a router may keep its own too)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from flowlane.engine.context import ObjectRecord
from flowlane.services import users
from flowlane.store.auth import ApiTokenRecord


class Problem(BaseModel):
    """An error (RFC 9457, ``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    fields: dict[str, Any] = Field(default_factory=dict)


class User(BaseModel):
    """A user as shown (never its password)."""

    id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    role: str = "client"
    permissions: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    personal_manager: str | None = None
    data: dict[str, Any] = Field(default_factory=dict, description="Every field but password")

    @classmethod
    def of(cls, record: ObjectRecord) -> User:
        data = users.visible(record)
        return cls(
            id=record.id,
            name=data.get("name"),
            email=data.get("email"),
            phone=data.get("phone"),
            role=str(data.get("role") or "client"),
            permissions=list(data.get("permissions") or []),
            groups=list(data.get("groups") or []),
            personal_manager=data.get("personal_manager"),
            data=data,
        )


class ApiToken(BaseModel):
    """An API token as listed (the secret is shown once, when it is made)."""

    id: str
    user_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @classmethod
    def of(cls, r: ApiTokenRecord) -> ApiToken:
        return cls(
            id=r.id,
            user_id=r.user_id,
            name=r.name,
            created_at=r.created_at,
            last_used_at=r.last_used_at,
            revoked_at=r.revoked_at,
        )


class Strict(BaseModel):
    """Base of request bodies: unknown keys are refused (422)."""

    model_config = ConfigDict(extra="forbid")


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": text}
    for code, text in (
        (400, "A malformed request (say, a body that is not UTF-8 JSON)"),
        (401, "No valid credentials"),
        (403, "Not allowed to this person"),
        (404, "No such thing"),
        (409, "Refused in the current state"),
        (413, "The request body is over the limit"),
        (422, "Invalid input"),
    )
}
"""``responses=`` for routes: the problems they may answer, in the OpenAPI spec."""
