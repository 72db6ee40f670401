"""Process administration: the lifecycle (active / stopped, approval, restart), the process
list with search and tags, templates, and the summary a process's "General" tab shows.

GetCourse ("CRM — Processes", seed 001): a process that runs creates tasks automatically;
"restart" switches off the creation of new tasks and deletes the ones created; a process that
must be approved starts only after an admin approved it, and an approved running process
cannot be changed. :class:`~flowlane.services.account.Account` exposes these as methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from flowlane.core.errors import Refused
from flowlane.model.definition import Definition
from flowlane.services import launch
from flowlane.store.records import ProcessStatus

if TYPE_CHECKING:
    from flowlane.services.account import Account

ACTIVE = "active"
STOPPED = "stopped"


@dataclass(frozen=True)
class ProcessInfo:
    """What the process list and the "General" tab show of one process (its latest version)."""

    key: str
    name: str
    description: str | None
    object: str
    version: int
    launch: str
    """How objects enter: manual, once, periodic, create, update, stage or event."""
    status: str
    """``active`` (automatic launches fire, manual starts allowed) or ``stopped``."""
    approval: bool
    """Whether the process must be approved before it starts."""
    approved: bool
    started_at: datetime | None
    """When the process was last started (deployed first, activated or approved)."""
    stopped_at: datetime | None
    tags: tuple[str, ...]
    template: bool
    draft: bool
    last_launch: datetime | None
    """When its latest instance started (None if it never ran)."""


@dataclass(frozen=True)
class Restarted:
    """What a restart did: the instances it cancelled and the tasks it deleted."""

    cancelled: list[str]
    deleted_tasks: list[str]


def status_of(account: Account, key: str) -> ProcessStatus:
    """The stored lifecycle, or the default: active, never (re)started."""
    return account.store.process_status(key) or ProcessStatus(key)


def is_locked(account: Account, definition: Definition) -> bool:
    """An approved process that runs cannot be edited (stop it first)."""
    settings = definition.spec.launch
    return (
        settings is not None
        and settings.approval
        and account.store.is_approved(definition.key)
        and status_of(account, definition.key).active
    )


def check_deploy(account: Account, before: Definition | None, new: Definition) -> None:
    """Refuse a changed version of an approved running process, or a new object type."""
    if before is None or before.spec == new.spec:
        return
    if new.spec.object != before.spec.object:
        raise Refused(
            f"process {new.key} runs on type {before.spec.object!r}: "
            f"its object type cannot change (to {new.spec.object!r})"
        )
    if is_locked(account, before):
        raise Refused(f"process {new.key} is approved and running: stop it before editing")


def after_deploy(account: Account, before: Definition | None, deployed: Definition) -> None:
    """A first deploy starts the process; an edit of an approved one must be approved again;
    a new version (re)starts or stops its periodic checks, unless the process is stopped."""
    if before is None:
        settings = deployed.spec.launch
        waits = settings is not None and settings.approval
        account.store.put_process_status(
            ProcessStatus(deployed.key, ACTIVE, None if waits else account.now)
        )
        if not waits and not deployed.spec.draft and settings is not None and settings.on == "once":
            launch.run_once(account, deployed)  # deployed onto existing objects: its start
    elif deployed.version != before.version and account.store.is_approved(deployed.key):
        account.store.revoke_approval(deployed.key)
    if before is None or deployed.version != before.version:
        if status_of(account, deployed.key).active:
            launch.schedule_periodic(account, deployed)  # (re)starts or stops the checks
        else:
            launch.cancel_periodic(account, deployed.key)


def stop(account: Account, key: str) -> None:
    status = status_of(account, key)
    if not status.active:
        raise Refused(f"process {key} is stopped already")
    status.status = STOPPED
    status.stopped_at = account.now
    account.store.put_process_status(status)
    launch.cancel_periodic(account, key)


def activate(account: Account, definition: Definition, *, refuse_if_active: bool = True) -> None:
    """Start the process: automatic launches fire again, ``once`` launches run, the periodic
    chain is scheduled anew if it was stopped. Refused unless approved (when it must be)."""
    if not launch.is_approved(account, definition):
        raise Refused(f"process {definition.key} must be approved before it starts")
    status = status_of(account, definition.key)
    if status.active and refuse_if_active:
        raise Refused(f"process {definition.key} is active already")
    was_active = status.active
    status.status = ACTIVE
    status.started_at = account.now
    account.store.put_process_status(status)
    if definition.spec.draft:
        return
    if definition.spec.launch is not None and definition.spec.launch.on == "once":
        launch.run_once(account, definition)
    if not was_active:
        launch.schedule_periodic(account, definition)


def stop_after_restart(account: Account, key: str) -> None:
    """``restart`` leaves the process stopped: nothing enters until it is activated."""
    status = status_of(account, key)
    status.status = STOPPED
    status.stopped_at = account.now
    account.store.put_process_status(status)
    launch.cancel_periodic(account, key)
    account.store.set_matched(key, set())


def info(account: Account, key: str) -> ProcessInfo:
    d = account.definition(key)
    status = status_of(account, key)
    settings = d.spec.launch
    instances = account.store.instances_of(key)
    return ProcessInfo(
        key=d.key,
        name=d.spec.name,
        description=d.spec.description,
        object=d.spec.object,
        version=d.version,
        launch=settings.on if settings is not None else "manual",
        status=status.status,
        approval=bool(settings and settings.approval),
        approved=account.store.is_approved(key),
        started_at=status.started_at,
        stopped_at=status.stopped_at,
        tags=tuple(d.spec.tags),
        template=d.spec.template,
        draft=d.spec.draft,
        last_launch=max(
            (st.started_at for st in instances if st.started_at is not None), default=None
        ),
    )


def matches(definition: Definition, search: str | None, tag: str | None) -> bool:
    """Search by name (case-insensitive substring) or by key; filter by tag (exact)."""
    spec = definition.spec
    if tag is not None and tag.casefold() not in {t.casefold() for t in spec.tags}:
        return False
    if search is None or not search.strip():
        return True
    needle = search.strip().casefold()
    return needle in spec.name.casefold() or needle == definition.key.casefold()


def listing(account: Account, search: str | None, tag: str | None) -> list[ProcessInfo]:
    out = []
    for key in account.store.process_keys():
        d = account.definition(key)
        if matches(d, search, tag):
            out.append(info(account, key))
    return out


def templates_for(account: Account, object_type: str) -> list[ProcessInfo]:
    """Templates are offered only for the object type they were made for."""
    out = []
    for key in account.store.process_keys():
        d = account.definition(key)
        if d.spec.template and d.spec.object == object_type:
            out.append(info(account, key))
    return out


__all__ = ["ProcessInfo", "Restarted"]
