"""People of the account: list, read, create and change users; groups.

Rules (``services/permissions.py``): staff see the user list; a person always sees and may
rename themself; those who manage users (owner, admin) create users and change anything but
passwords (``services/auth.py``). Only an owner makes or unmakes an owner, and the last owner
stays one. A user is shown without its ``password`` (write-only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowlane.core.errors import Forbidden, NotFound, Refused
from flowlane.engine.context import ObjectRecord
from flowlane.services import permissions
from flowlane.services.launch import condition_scope

if TYPE_CHECKING:
    from flowlane.services.account import Account

SELF_EDITABLE = frozenset({"name"})
"""Fields a person may change on themself without managing users."""
EDITABLE = frozenset(
    {"name", "email", "phone", "role", "permissions", "groups", "personal_manager", "birthday"}
)
"""Fields ``update_user`` changes (the password has its own call)."""


@dataclass(frozen=True, slots=True)
class UserPage:
    items: list[ObjectRecord]
    total: int


def visible(record: ObjectRecord) -> dict[str, Any]:
    """A user's data as shown: without write-only fields, with ``role`` filled in."""
    data = {k: v for k, v in record.data.items() if k != "password"}
    data.setdefault("role", "client")
    return data


def list_users(
    acc: Account,
    *,
    role: str | None = None,
    search: str | None = None,
    offset: int = 0,
    limit: int = 50,
    by: str | None,
) -> UserPage:
    """Users sorted by id, of a role, whose id, name or email contains ``search`` (any case)."""
    permissions.require(acc, by, "see_users", "list users")
    if role is not None and role not in permissions.ROLES:
        raise Refused(f"role {role!r} does not exist (roles: {', '.join(permissions.ROLES)})")
    where = None if role is None else "object.role == vars.role"
    scope = condition_scope(acc, {"role": role})
    ids = acc.store.select_objects("user", where, scope)
    records = [r for r in (acc.store.get_object(i) for i in ids) if r is not None]
    if search:
        needle = search.strip().lower()
        records = [
            r
            for r in records
            if needle in r.id.lower()
            or needle in str(r.data.get("name") or "").lower()
            or needle in str(r.data.get("email") or "").lower()
        ]
    return UserPage(records[offset : offset + limit], len(records))


def get_user(acc: Account, user_id: str, *, by: str | None) -> ObjectRecord:
    """The user (oneself always; others for staff)."""
    if by is not None and by != user_id and not permissions.can(acc, by, "see_users"):
        raise NotFound(f"user {user_id!r} does not exist")
    rec = acc.store.get_object(user_id)
    if rec is None or rec.type != "user":
        raise NotFound(f"user {user_id!r} does not exist")
    return rec


def _check_changes(acc: Account, data: dict[str, Any], by: str | None, before: str | None) -> None:
    perms = data.get("permissions")
    if perms is not None:
        if not isinstance(perms, list) or not all(isinstance(p, str) for p in perms):
            raise Refused("permissions: a list of names", field="permissions")
        unknown = sorted(set(perms) - set(permissions.KNOWN_PERMISSIONS))
        if unknown:
            known = ", ".join(permissions.KNOWN_PERMISSIONS)
            raise Refused(
                f"permissions: unknown {unknown[0]!r} (known: {known})", field="permissions"
            )
    groups = data.get("groups")
    if isinstance(groups, list):
        unknown = sorted({str(g) for g in groups} - set(acc.store.schema.groups))
        if unknown:
            raise Refused(f"groups: group {unknown[0]!r} does not exist", field="groups")
    role = data.get("role")
    changes_owner = "role" in data and "owner" in (role, before) and role != before
    if by is not None and changes_owner and permissions.person(acc, by).role != "owner":
        raise Forbidden(f"{by} may not make or unmake an owner (owners may)")
    if changes_owner and before == "owner" and len(acc.store.users("role:owner")) <= 1:
        raise Refused("role: the last owner stays an owner", field="role")


def create_user(
    acc: Account, data: dict[str, Any], *, user_id: str | None = None, by: str | None
) -> str:
    """A new user from its fields (a ``password`` is stored hashed); its id."""
    permissions.require(acc, by, "manage_users", "create users")
    _check_changes(acc, data, by, None)
    email = data.get("email")
    if isinstance(email, str) and email and acc.store.user_by_email(email) is not None:
        raise Refused(f"email: a user with {email!r} exists already", field="email")
    return acc.create_object("user", data, object_id=user_id)


def update_user(acc: Account, user_id: str, changes: dict[str, Any], *, by: str | None) -> None:
    """Change a user's fields (:data:`EDITABLE`): those who manage users; a person may change
    :data:`SELF_EDITABLE` fields of their own."""
    rec = get_user(acc, user_id, by=by)
    unknown = sorted(set(changes) - EDITABLE)
    if unknown:
        raise Refused(f"field {unknown[0]!r} cannot be changed here", field=unknown[0])
    own = by == user_id and set(changes) <= SELF_EDITABLE
    if by is not None and not own and not permissions.can(acc, by, "manage_users"):
        what = "change" if by != user_id else f"change {', '.join(sorted(changes))} of"
        raise Forbidden(f"{by} may not {what} user {user_id}")
    _check_changes(acc, changes, by, str(rec.data.get("role") or "client"))
    email = changes.get("email")
    if isinstance(email, str) and email:
        other = acc.store.user_by_email(email)
        if other is not None and other != user_id:
            raise Refused(f"email: a user with {email!r} exists already", field="email")
    acc.update_object(user_id, changes)


def groups(acc: Account, *, by: str | None) -> list[str]:
    """The account's user groups."""
    permissions.require(acc, by, "see_users", "list groups")
    return list(acc.store.schema.groups)
