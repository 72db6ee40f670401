"""Who gets a task and who gets a message: assignment and recipient rules (FORMATS.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flowlane.core.errors import ValidationError
from flowlane.engine.context import ObjectProxy, Overlay, object_id_of
from flowlane.expr import compile_expression


def _user_of(overlay: Overlay, object_id: str | None, field: str) -> str | None:
    if object_id is None:
        return None
    rec = overlay.load(object_id)
    if rec is None:
        return None
    return object_id_of(rec.data.get(field))


def client_of(overlay: Overlay, object_id: str | None) -> str | None:
    """The client: the user itself for user objects, else the object's ``client``."""
    if object_id is None:
        return None
    rec = overlay.load(object_id)
    if rec is None:
        return None
    return rec.id if rec.type == "user" else object_id_of(rec.data.get("client"))


def personal_manager_of(overlay: Overlay, object_id: str | None) -> str | None:
    """The personal manager of the object's client (of the user itself for users)."""
    return _user_of(overlay, client_of(overlay, object_id), "personal_manager")


def manager_of(overlay: Overlay, object_id: str | None) -> str | None:
    """The object's ``manager``, else the personal manager of its client."""
    return _user_of(overlay, object_id, "manager") or personal_manager_of(overlay, object_id)


def expand(overlay: Overlay, selectors: Sequence[str]) -> list[str]:
    """User ids of ``user:``, ``group:`` and ``role:`` selectors, in selector order, unique."""
    out: list[str] = []
    for sel in selectors:
        for uid in overlay.world.users(sel):
            if uid not in out:
                out.append(uid)
    return out


def least_loaded(
    overlay: Overlay, executors: Sequence[str], extra_load: dict[str, int]
) -> str | None:
    """The executor with the fewest open tasks; ties go to the earlier, then the smaller id."""
    best: tuple[int, int, str] | None = None
    for sel_index, sel in enumerate(executors):
        for uid in sorted(overlay.world.users(sel)):
            load = overlay.world.open_task_count(uid) + extra_load.get(uid, 0)
            key = (load, sel_index, uid)
            if best is None or key < best:
                best = key
    return best[2] if best else None


def _user(overlay: Overlay, user_id: str | None, spec: str) -> str | None:
    """A resolved assignee must be an existing user."""
    if user_id is None:
        return None
    rec = overlay.load(user_id)
    if rec is None or rec.type != "user":
        raise ValidationError(f"assign {spec!r} gives {user_id!r}, which is not a user")
    return user_id


def resolve_assignee(
    spec: str | None,
    *,
    overlay: Overlay,
    object_id: str | None,
    answer_by: str | None,
    executors: Sequence[str],
    extra_load: dict[str, int],
    scope: Callable[[], dict[str, Any]],
) -> str | None:
    """Resolve an ``assign`` value to a user id (None leaves the task unassigned)."""
    if spec is None or spec == "none":
        return None
    if spec == "object_manager":
        return manager_of(overlay, object_id)
    if spec == "personal_manager":
        return personal_manager_of(overlay, object_id)
    if spec == "executors":
        return least_loaded(overlay, executors, extra_load)
    if spec == "answer.by":
        return answer_by
    if spec.startswith("user:"):
        return _user(overlay, spec[5:], spec)
    if spec in ("client", "object"):
        return client_of(overlay, object_id)
    if spec.startswith("="):
        value = compile_expression(spec[1:]).evaluate(scope())
        return _user(overlay, object_id_of(value), spec)
    raise ValidationError(f"unknown assignment {spec!r}")


def _address(overlay: Overlay, user_id: str, channel: str) -> str | None:
    if channel == "inapp":
        return user_id
    rec = overlay.load(user_id)
    if rec is None:
        return None
    email = rec.data.get("email")
    return str(email) if email else None


def _split_recipients(
    spec: str, overlay: Overlay, object_id: str | None, scope: Callable[[], dict[str, Any]]
) -> tuple[list[str | None], list[str]]:
    """One ``to`` entry as (user ids, literal addresses). An ``=expression`` may give users
    (objects or ids), addresses, or ``user:`` / ``group:`` / ``role:`` selectors, one or a
    list."""
    if spec == "client":
        return [client_of(overlay, object_id)], []
    if spec == "manager":
        return [manager_of(overlay, object_id)], []
    if spec.startswith("user:"):
        return [_user(overlay, spec[5:], spec)], []
    if spec.split(":", 1)[0] in ("group", "role"):
        return list(expand(overlay, [spec])), []
    if not spec.startswith("="):
        return [], [spec]
    value = compile_expression(spec[1:]).evaluate(scope())
    users: list[str | None] = []
    literal: list[str] = []
    for v in value if isinstance(value, list | tuple) else [value]:
        if isinstance(v, ObjectProxy) or (isinstance(v, str) and overlay.load(v)):
            users.append(object_id_of(v))
        elif isinstance(v, str) and v.split(":", 1)[0] in ("user", "group", "role"):
            # a computed selector (``="group:" + vars.group``): the people it names
            users.extend(expand(overlay, [v]))
        elif v:
            literal.append(str(v))
    return users, literal


def recipients(
    to: str | list[str],
    *,
    overlay: Overlay,
    object_id: str | None,
    channel: str,
    scope: Callable[[], dict[str, Any]],
) -> list[tuple[str | None, str | None]]:
    """``(user id, address)`` for every recipient of a message; one message each.

    A user without an address for the channel gives ``(user, None)`` (logged, not sent); an
    entry that is no recipient at all (a typo such as ``managr``) is an error.
    """
    out: list[tuple[str | None, str | None]] = []
    for spec in [to] if isinstance(to, str) else list(to):
        users, literal = _split_recipients(spec, overlay, object_id, scope)
        for uid in users:
            if uid is None or channel == "webhook":
                out.append((uid, None))
            else:
                out.append((uid, _address(overlay, uid, channel)))
        for addr in literal:
            if not _is_address(addr, channel):
                raise ValidationError(
                    f"recipient {addr!r} is neither client, manager, user:/group:/role:<key> "
                    f"nor {'a URL' if channel == 'webhook' else 'an address'}"
                )
            out.append((None, addr))
    return _one_per_address(out)


def _is_address(text: str, channel: str) -> bool:
    if channel == "webhook":
        return text.startswith(("http://", "https://"))
    return "@" in text


def _one_per_address(
    pairs: list[tuple[str | None, str | None]],
) -> list[tuple[str | None, str | None]]:
    """One message per recipient: the first of several entries with the same address."""
    seen: set[str] = set()
    unique = []
    for pair in pairs:
        address = pair[1]
        if address is not None:
            if address in seen:
                continue
            seen.add(address)
        unique.append(pair)
    return unique
