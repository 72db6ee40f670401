"""Process instances as the API serves them: the filtered list, one instance (where its
tokens wait, its counters, its variables without secrets), its trace, open incidents, and
the hand actions retry and cancel.

Seeing needs ``see_processes`` (staff); retry and cancel need ``manage_processes``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flowlane.core.errors import NotFound, Refused
from flowlane.engine import events as ev
from flowlane.engine.state import InstanceState
from flowlane.services import permissions

if TYPE_CHECKING:
    from flowlane.services.account import Account

STATUSES = ("running", "incident", "ended", "cancelled")
"""An instance's statuses (``flowlane.engine.state``)."""

HIDDEN = "***"
"""What a secret variable is shown as."""

_SECRET_NAME = re.compile(r"secret|password|passwd|token|api_?key", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Waiting:
    """A token: the block it stands at and what it waits for (None while it moves)."""

    token: int
    block: str
    waits_for: str | None


@dataclass(frozen=True, slots=True)
class InstanceView:
    id: str
    process: str
    version: int
    object_id: str | None
    status: str
    outcome: str | None
    result: str | None
    incident: str | None
    started_at: datetime | None
    ended_at: datetime | None
    parent: str | None
    children: list[str]
    tokens: list[Waiting]
    counters: dict[str, float]
    vars: dict[str, Any]


@dataclass(frozen=True, slots=True)
class InstancePage:
    items: list[InstanceView]
    total: int


@dataclass(frozen=True, slots=True)
class TracePage:
    items: list[dict[str, Any]]
    total: int


@dataclass(frozen=True, slots=True)
class Incident:
    instance_id: str
    process: str | None
    object_id: str | None
    block: str | None
    message: str
    at: datetime


@dataclass(frozen=True, slots=True)
class IncidentPage:
    items: list[Incident]
    total: int


def _secret_vars(acc: Account, state: InstanceState) -> set[str]:
    try:
        variables = acc.store.version(state.process, state.version).spec.variables
    except (NotFound, KeyError, IndexError):
        variables = {}
    return {
        name
        for name in state.vars
        if _SECRET_NAME.search(name) or (variables.get(name) or {}).get("type") == "password"
    }


def view(acc: Account, state: InstanceState) -> InstanceView:
    """An instance as shown: secret variables (type password, or named like a secret,
    token or API key) are masked."""
    secret = _secret_vars(acc, state)
    return InstanceView(
        id=state.id,
        process=state.process,
        version=state.version,
        object_id=state.object_id,
        status=state.status,
        outcome=state.outcome,
        result=state.result,
        incident=state.incident,
        started_at=state.started_at,
        ended_at=state.ended_at,
        parent=str(state.parent["id"]) if state.parent else None,
        children=list(state.children),
        tokens=[
            Waiting(t.id, t.block, None if t.wait is None else str(t.wait.get("k")))
            for t in state.tokens
        ],
        counters=dict(state.counters),
        vars={k: HIDDEN if k in secret else v for k, v in state.vars.items()},
    )


def _seeing(acc: Account, by: str | None, what: str) -> None:
    permissions.require(acc, by, "see_processes", what)


def _state(acc: Account, instance_id: str) -> InstanceState:
    state = acc.store.get_instance(instance_id)
    if state is None:
        raise NotFound(f"instance {instance_id!r} does not exist", instance=instance_id)
    return state


def list_instances(
    acc: Account,
    *,
    process: str | None = None,
    object_id: str | None = None,
    status: str | None = None,
    offset: int = 0,
    limit: int = 50,
    by: str | None,
) -> InstancePage:
    """Instances matching every filter given, newest first."""
    _seeing(acc, by, "see instances")
    found, total = acc.store.find_instances(
        process=process, object_id=object_id, status=status, offset=offset, limit=limit
    )
    return InstancePage([view(acc, st) for st in found], total)


def get_instance(acc: Account, instance_id: str, *, by: str | None) -> InstanceView:
    _seeing(acc, by, "see instances")
    return view(acc, _state(acc, instance_id))


def trace(
    acc: Account, instance_id: str, *, offset: int = 0, limit: int = 50, by: str | None
) -> TracePage:
    """The instance's history lines, oldest first."""
    _seeing(acc, by, "see instances")
    _state(acc, instance_id)
    lines, total = acc.store.history_page(instance_id, offset, limit)
    return TracePage(lines, total)


def incidents(
    acc: Account,
    *,
    process: str | None = None,
    offset: int = 0,
    limit: int = 50,
    by: str | None,
) -> IncidentPage:
    """Open incidents (of ``process``'s instances only, if given), oldest first."""
    _seeing(acc, by, "see incidents")
    out = []
    for inc in acc.store.incidents(open_only=True):
        state = acc.store.get_instance(inc.instance_id)
        if process is not None and (state is None or state.process != process):
            continue
        out.append(
            Incident(
                instance_id=inc.instance_id,
                process=state.process if state else None,
                object_id=state.object_id if state else None,
                block=inc.block,
                message=inc.message,
                at=inc.at,
            )
        )
    return IncidentPage(out[offset : offset + limit], len(out))


def retry(acc: Account, instance_id: str, *, by: str | None) -> InstanceView:
    """Run an instance stopped by an incident again from where its tokens stand."""
    state = _state(acc, instance_id)
    permissions.require(acc, by, "manage_processes", f"retry instance {instance_id}")
    if state.status != "incident":
        raise Refused(f"instance {instance_id} has no incident (it is {state.status})")
    acc.retry(instance_id, by=by)
    return view(acc, _state(acc, instance_id))


def cancel(acc: Account, instance_id: str, *, by: str | None) -> InstanceView:
    """Cancel a running instance (or one stopped by an incident) by hand; its open incident
    is closed with it (nothing is left to retry)."""
    state = _state(acc, instance_id)
    permissions.require(acc, by, "manage_processes", f"cancel instance {instance_id}")
    if state.status not in ("running", "incident"):
        raise Refused(f"instance {instance_id} is {state.status}: only a running one is cancelled")
    if state.status == "incident":
        acc.store.resolve_incidents(instance_id)
    acc.runner.step(instance_id, ev.InstanceCancelled("cancelled by hand"))
    acc.runner.run()
    return view(acc, _state(acc, instance_id))
