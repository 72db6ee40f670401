"""Who may act on a task, and which workflow status changes are allowed (FORMATS.md).

Pure rules over plain data; the services call them before changing anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flowlane.core.errors import Forbidden, Refused

STAFF_ADMIN_ROLES = frozenset({"admin", "owner"})


def _matches(
    selector: str, user_id: str, *, assignee: str | None, users_of: Callable[[str], Sequence[str]]
) -> bool:
    if selector == "assignee":
        return assignee is not None and assignee == user_id
    if selector.startswith("user:"):
        return selector[5:] == user_id
    return user_id in users_of(selector)


def may_act(
    user_id: str,
    *,
    role: str | None,
    assignee: str | None,
    executors: Sequence[str],
    supervisors: Sequence[str],
    users_of: Callable[[str], Sequence[str]],
) -> bool:
    """Answer, claim, comment: the assignee; executors and supervisors; admins and owners.

    Being the object's client gives no rights of its own.
    """
    if assignee is not None and assignee == user_id:
        return True
    if role in STAFF_ADMIN_ROLES:
        return True
    return any(
        _matches(sel, user_id, assignee=assignee, users_of=users_of)
        for sel in [*executors, *supervisors]
    )


def check_transition(
    workflow: dict[str, Any],
    *,
    current: str,
    target: str,
    user_id: str,
    assignee: str | None,
    comment: str | None,
    users_of: Callable[[str], Sequence[str]],
) -> None:
    """Refuse a status change that no listed transition allows to this person.

    No role bypasses a workflow: only the transition's ``by`` counts.
    """
    if target not in workflow.get("statuses", []):
        raise Refused(
            f"status {target!r} does not exist (statuses: "
            f"{', '.join(workflow.get('statuses', []))})"
        )
    candidates = []
    for tr in workflow.get("transitions", []):
        sources = tr["from"] if isinstance(tr["from"], list) else [tr["from"]]
        if current in sources and tr["to"] == target:
            candidates.append(tr)
    if not candidates:
        raise Refused(f"no transition from {current!r} to {target!r}")
    allowed = []
    for tr in candidates:
        by = tr.get("by", "assignee")
        selectors = by if isinstance(by, list) else [by]
        if any(_matches(s, user_id, assignee=assignee, users_of=users_of) for s in selectors):
            allowed.append(tr)
    if not allowed:
        whom = ", ".join(str(tr.get("by", "assignee")) for tr in candidates)
        raise Forbidden(
            f"{user_id} may not move the task from {current!r} to {target!r} (allowed: {whom})"
        )
    if all(tr.get("comment") == "required" for tr in allowed) and not (comment or "").strip():
        raise Refused(f"a comment is required to move the task from {current!r} to {target!r}")
