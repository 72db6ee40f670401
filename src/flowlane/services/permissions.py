"""Who may do what (DESIGN.md §7, SCENARIOS S2): the one table of roles and actions.

A person is a ``user`` object; its ``role`` (owner, admin, manager, employee, client) and its
``permissions`` (a list; known: :data:`KNOWN_PERMISSIONS`) give the actions it may take.
Services call :func:`require` (or :func:`can`) with the acting user id; ``None`` is the
system, which may do everything. Which *task* a person may act on is decided afterwards by
:func:`flowlane.engine.taskrules.may_act` (assignee, executors, supervisors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowlane.core.errors import Forbidden

if TYPE_CHECKING:
    from flowlane.services.account import Account

ROLES = ("owner", "admin", "manager", "employee", "client")
"""The roles, most powerful first (the enum of the user type's ``role`` field)."""

KNOWN_PERMISSIONS = ("work_with_tasks",)
"""Permissions a user's ``permissions`` list may hold."""

ACTIONS: dict[str, str] = {
    "manage_processes": "create, edit, deploy, approve, stop, restart processes; migrate",
    "manage_types": "define object types, dictionaries and groups",
    "manage_users": "create users, change roles, permissions, groups; anyone's API tokens",
    "start_processes": "start a process on an object, mass start",
    "see_processes": "see processes, their versions, instances, traces and incidents",
    "work_with_objects": "create and change objects, move them between stages",
    "work_with_tasks": "answer, claim, comment on tasks and change their status",
    "see_users": "list the users of the account",
    "see_objects": "see every object (others see the objects linked to them: own cabinet)",
    "own_cabinet": "own profile, own tasks, own API tokens",
    "read_messages": "the outbox with its delivery state, the mail sink, webhook URLs",
}
"""Every action, with what it covers."""

_ALL = frozenset(ACTIONS)
_MANAGER = frozenset(
    {
        "start_processes",
        "see_processes",
        "work_with_objects",
        "work_with_tasks",
        "see_users",
        "see_objects",
        "own_cabinet",
    }
)
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "owner": _ALL,
    "admin": _ALL,
    "manager": _MANAGER,
    "employee": frozenset({"see_users", "see_objects", "see_processes", "own_cabinet"}),
    "client": frozenset({"own_cabinet"}),
}
"""What each role may do without extra permissions."""

PERMISSION_ACTIONS: dict[str, frozenset[str]] = {
    "work_with_tasks": frozenset({"work_with_tasks"}),
}
"""What each permission adds (to an employee; other roles have it or may not get it)."""

PERMISSION_ROLES = frozenset({"employee"})
"""The roles whose ``permissions`` count."""


@dataclass(frozen=True, slots=True)
class Person:
    """A user as the rules see it."""

    id: str
    role: str
    permissions: frozenset[str]

    @property
    def actions(self) -> frozenset[str]:
        return actions_for(self.role, self.permissions)


def actions_for(role: str, permissions: frozenset[str] | tuple[str, ...] = ()) -> frozenset[str]:
    """The actions of a role with these permissions."""
    out = set(ROLE_ACTIONS.get(role, frozenset()))
    if role in PERMISSION_ROLES:
        for name in permissions:
            out |= PERMISSION_ACTIONS.get(name, frozenset())
    return frozenset(out)


def person(account: Account, user_id: str) -> Person:
    """The user's role and permissions (refused when there is no such user)."""
    role = account.role_of(user_id) or "client"
    rec = account.store.get_object(user_id)
    raw = rec.data.get("permissions") if rec is not None else None
    return Person(user_id, role, frozenset(str(p) for p in raw or ()))


def can(account: Account, user_id: str | None, action: str) -> bool:
    """Whether the person may take the action (``None``, the system, may do everything)."""
    assert action in ACTIONS, action
    if user_id is None:
        return True
    return action in person(account, user_id).actions


def require(account: Account, user_id: str | None, action: str, what: str) -> None:
    """Refuse with :class:`Forbidden` unless the person may take the action; ``what`` says
    what was asked ("start order", "change user anna")."""
    assert action in ACTIONS, action
    if user_id is None:
        return
    who = person(account, user_id)
    if action not in who.actions:
        raise Forbidden(f"{user_id} ({who.role}) may not {what}", action=action)


def require_task_work(account: Account, user_id: str | None, what: str) -> None:
    """Staff need ``work_with_tasks`` to act on tasks; a client may act on own tasks only
    (which tasks: :func:`~flowlane.engine.taskrules.may_act` decides next)."""
    if user_id is None:
        return
    who = person(account, user_id)
    if who.role != "client" and "work_with_tasks" not in who.actions:
        hint = " (without the permission work_with_tasks)" if who.role == "employee" else ""
        raise Forbidden(f"{user_id} ({who.role}{hint}) may not {what}", action="work_with_tasks")


@dataclass(frozen=True, slots=True)
class RoleInfo:
    """A role and what it may do (``GET /roles``)."""

    key: str
    actions: tuple[str, ...]
    with_permissions: dict[str, tuple[str, ...]]


def roles() -> list[RoleInfo]:
    """Every role with its actions, and what each known permission adds to it."""
    out = []
    for key in ROLES:
        base = ROLE_ACTIONS[key]
        extra = {}
        if key in PERMISSION_ROLES:
            for perm in KNOWN_PERMISSIONS:
                added = actions_for(key, (perm,)) - base
                extra[perm] = tuple(sorted(added))
        out.append(RoleInfo(key, tuple(sorted(base)), extra))
    return out
