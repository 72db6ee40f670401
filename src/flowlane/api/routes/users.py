"""Users, groups and roles."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from flowlane.api.deps import CallDep
from flowlane.api.pagination import Page, PageDep
from flowlane.api.schemas import PROBLEM_RESPONSES, Strict, User
from flowlane.engine.context import ObjectRecord
from flowlane.services import auth, permissions, users
from flowlane.services.account import Account

router = APIRouter(tags=["users"], responses=PROBLEM_RESPONSES)

Role = Annotated[str, Field(description="owner, admin, manager, employee or client")]


class UserIn(Strict):
    id: str | None = Field(default=None, min_length=1, max_length=100)
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=300)
    phone: str | None = Field(default=None, max_length=50)
    role: Role = "client"
    permissions: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    personal_manager: str | None = Field(default=None, max_length=100)
    birthday: date | None = None
    password: str | None = Field(default=None, max_length=auth.MAX_PASSWORD)


class UserChange(Strict):
    """The fields to change (those not sent stay as they are)."""

    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=300)
    phone: str | None = Field(default=None, max_length=50)
    role: Role | None = None
    permissions: list[str] | None = None
    groups: list[str] | None = None
    personal_manager: str | None = Field(default=None, max_length=100)
    birthday: date | None = None


class PasswordIn(Strict):
    password: str = Field(min_length=1, max_length=auth.MAX_PASSWORD)
    current_password: str | None = Field(
        default=None, max_length=auth.MAX_PASSWORD, description="Needed to change your own"
    )


class GroupIn(Strict):
    key: str = Field(min_length=1, max_length=200)


class RoleOut(BaseModel):
    key: str
    actions: list[str]
    with_permissions: dict[str, list[str]] = Field(
        description="What each permission adds to the role"
    )


class Action(BaseModel):
    key: str
    description: str


class Roles(BaseModel):
    roles: list[RoleOut]
    actions: list[Action]
    permissions: list[str]


def _data(model: BaseModel, *, unset: bool) -> dict[str, Any]:
    return {
        k: v.isoformat() if isinstance(v, date) else v
        for k, v in model.model_dump(exclude_unset=unset, exclude_none=not unset).items()
    }


@router.get("/users")
async def list_users(
    call: CallDep,
    paging: PageDep,
    role: Annotated[str | None, Query(description="Only users of this role")] = None,
    search: Annotated[
        str | None, Query(max_length=200, description="Part of the id, name or email")
    ] = None,
) -> Page[User]:
    """Users sorted by id (staff)."""
    found = await call(
        lambda acc, by: users.list_users(
            acc, role=role, search=search, offset=paging.offset, limit=paging.limit, by=by
        )
    )
    return Page[User].of([User.of(r) for r in found.items], found.total, paging)


@router.post("/users", status_code=201)
async def create_user(body: UserIn, call: CallDep) -> User:
    """A new user (admins and owners); a ``password`` is stored as an argon2 hash."""
    data = _data(body, unset=False)
    user_id = data.pop("id", None)
    data = {k: v for k, v in data.items() if v not in ([], None)}

    def work(acc: Account, by: str) -> ObjectRecord:
        new_id = users.create_user(acc, data, user_id=user_id, by=by)
        return users.get_user(acc, new_id, by=by)

    return User.of(await call(work))


@router.get("/users/{user_id}")
async def get_user(user_id: str, call: CallDep) -> User:
    """One user (yourself; staff: anyone)."""
    return User.of(await call(lambda acc, by: users.get_user(acc, user_id, by=by)))


@router.patch("/users/{user_id}")
async def update_user(user_id: str, body: UserChange, call: CallDep) -> User:
    """Change a user: role, permissions, groups, name, email... (admins and owners); your
    own name (anyone)."""
    changes = _data(body, unset=True)

    def work(acc: Account, by: str) -> ObjectRecord:
        users.update_user(acc, user_id, changes, by=by)
        return users.get_user(acc, user_id, by=by)

    return User.of(await call(work))


@router.put("/users/{user_id}/password", status_code=204)
async def set_password(user_id: str, body: PasswordIn, call: CallDep) -> Response:
    """Set a password (your own with ``current_password``; admins and owners: anyone's).
    Every session of the user ends."""
    await call(
        lambda acc, by: auth.set_password(
            acc, user_id, body.password, by=by, current=body.current_password
        )
    )
    return Response(status_code=204)


@router.get("/groups")
async def list_groups(call: CallDep) -> list[str]:
    """The account's user groups."""
    return await call(lambda acc, by: users.groups(acc, by=by))


@router.post("/groups", status_code=201)
async def add_group(body: GroupIn, call: CallDep) -> list[str]:
    """A new user group (admins and owners); the groups after."""

    def work(acc: Account, by: str) -> list[str]:
        acc.add_group(body.key, by=by)
        return users.groups(acc, by=by)

    return await call(work)


@router.get("/roles")
async def list_roles(call: CallDep) -> Roles:
    """The roles and what each may do (``services/permissions.py``)."""
    return Roles(
        roles=[
            RoleOut(
                key=r.key,
                actions=list(r.actions),
                with_permissions={k: list(v) for k, v in r.with_permissions.items()},
            )
            for r in permissions.roles()
        ],
        actions=[Action(key=k, description=v) for k, v in permissions.ACTIONS.items()],
        permissions=list(permissions.KNOWN_PERMISSIONS),
    )
