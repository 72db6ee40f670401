"""A person's inbox, the process's task table, tasks of an object or a client, statistics.

Who may look: a person at their own inbox; admins, owners and supervisors (of any process)
at anyone's; admins, owners and the process's supervisors at its task table and statistics.
The store sorts, filters, pages and aggregates (SQL on a database).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from flowlane.core.errors import Refused
from flowlane.engine.taskrules import STAFF_ADMIN_ROLES, may_act
from flowlane.model.process import TaskSettings
from flowlane.services.launch import condition_scope
from flowlane.store.records import TASK_SORTS, TaskCount, TaskQuery, TaskRecord

if TYPE_CHECKING:
    from flowlane.services.account import Account

MAX_PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class TaskPage:
    tasks: list[TaskRecord]
    total: int
    page: int
    size: int


@dataclass(frozen=True, slots=True)
class TaskStatistics:
    """Tasks per (assignee, status, creation day in the account's zone), with totals."""

    rows: list[TaskCount]
    total: int
    by_assignee: dict[str | None, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    by_day: dict[date, int] = field(default_factory=dict)


def _settings(acc: Account, process: str) -> TaskSettings:
    spec = acc.definition(process).spec
    return spec.task if spec.task is not None else TaskSettings()


def _is_executor(acc: Account, user_id: str, settings: TaskSettings) -> bool:
    return bool(settings.executors) and may_act(
        user_id,
        role=None,
        assignee=None,
        executors=settings.executors,
        supervisors=(),
        users_of=acc.store.users,
    )


def _is_supervisor(acc: Account, user_id: str, settings: TaskSettings) -> bool:
    return bool(settings.supervisors) and may_act(
        user_id,
        role=None,
        assignee=None,
        executors=(),
        supervisors=settings.supervisors,
        users_of=acc.store.users,
    )


def _oversees(acc: Account, user_id: str) -> bool:
    """An admin, an owner, or a supervisor of some process."""
    if acc.role_of(user_id) in STAFF_ADMIN_ROLES:
        return True
    return any(_is_supervisor(acc, user_id, _settings(acc, k)) for k in acc.store.process_keys())


def _page(page: int, size: int) -> tuple[int, int]:
    if page < 1:
        raise Refused(f"page must be 1 or more, not {page}")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise Refused(f"size must be between 1 and {MAX_PAGE_SIZE}, not {size}")
    return (page - 1) * size, size


def executor_processes(acc: Account, user_id: str) -> list[str]:
    """Processes (by their own ``task:`` settings) whose executors include the person."""
    return [
        key for key in acc.store.process_keys() if _is_executor(acc, user_id, _settings(acc, key))
    ]


def inbox(
    acc: Account, user_id: str, *, page: int = 1, size: int = 50, by: str | None = None
) -> TaskPage:
    acc.role_of(user_id)
    if by is not None and by != user_id and not _oversees(acc, by):
        raise Refused(f"{by} may not look at the inbox of {user_id}")
    offset, limit = _page(page, size)
    tasks = acc.store.inbox(
        user_id, executor_processes(acc, user_id), acc.now, offset=offset, limit=limit
    )
    return TaskPage(tasks, len(tasks), page, size)


def check_supervisor(acc: Account, process: str, by: str | None, what: str) -> None:
    """Admins, owners and the process's supervisors; anyone else is refused."""
    settings = _settings(acc, process)
    if by is None or acc.role_of(by) in STAFF_ADMIN_ROLES:
        return
    if not _is_supervisor(acc, by, settings):
        raise Refused(f"{by} may not {what} of process {process!r}")


def task_query(
    acc: Account,
    process: str | None,
    *,
    status: str | None = None,
    assignee: str | None = None,
    unassigned: bool = False,
    object_id: str | None = None,
    open_only: bool = False,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> TaskQuery:
    if unassigned and assignee is not None:
        raise Refused("assignee: give a person or ask for unassigned tasks, not both")
    for name, moment in (("created_from", created_from), ("created_to", created_to)):
        if moment is not None and moment.tzinfo is None:
            raise Refused(f"{name} must have a time zone offset")
    if created_from is not None and created_to is not None and created_to < created_from:
        raise Refused("created_to must not be before created_from")
    return TaskQuery(
        process=process,
        status=status,
        assignee=assignee,
        unassigned=unassigned,
        object_ids=(object_id,) if object_id is not None else None,
        open_only=open_only,
        created_from=created_from,
        created_to=created_to,
    )


def process_tasks(
    acc: Account,
    query: TaskQuery,
    *,
    sort: str = "created_at",
    descending: bool = False,
    page: int = 1,
    size: int = 50,
    by: str | None = None,
) -> TaskPage:
    assert query.process is not None
    check_supervisor(acc, query.process, by, "list the tasks")
    if sort not in TASK_SORTS:
        raise Refused(f"sort must be one of {', '.join(TASK_SORTS)}, not {sort!r}")
    offset, limit = _page(page, size)
    tasks, total = acc.store.task_page(
        query, sort=sort, descending=descending, offset=offset, limit=limit
    )
    return TaskPage(tasks, total, page, size)


def _staff_only(acc: Account, by: str | None, what: str) -> None:
    if by is not None and acc.role_of(by) == "client":
        raise Refused(f"{by} (client) may not {what}")


def object_tasks(acc: Account, object_id: str, *, by: str | None = None) -> list[TaskRecord]:
    """Every task opened on an object (its card), in creation order."""
    acc.get_object(object_id)
    _staff_only(acc, by, f"list the tasks of {object_id}")
    tasks, _n = acc.store.task_page(TaskQuery(object_ids=(object_id,)), limit=MAX_PAGE_SIZE)
    return tasks


def client_tasks(acc: Account, user_id: str, *, by: str | None = None) -> list[TaskRecord]:
    """Tasks on the client's profile: tasks whose object is the client, or an object whose
    ``client`` field is the client; in creation order (the first 500)."""
    acc.role_of(user_id)
    if by != user_id:
        _staff_only(acc, by, f"list the tasks of {user_id}")
    ids = [user_id]
    scope = {**condition_scope(acc), "vars": {"client": user_id}}
    for key, otype in sorted(acc.store.schema.types.items()):
        if "client" in otype.fields:
            ids.extend(acc.store.select_objects(key, "object.client == vars.client", scope))
    tasks, _n = acc.store.task_page(TaskQuery(object_ids=tuple(ids)), limit=MAX_PAGE_SIZE)
    return tasks


def statistics(acc: Account, query: TaskQuery, *, by: str | None = None) -> TaskStatistics:
    assert query.process is not None
    check_supervisor(acc, query.process, by, "see the task statistics")
    rows = acc.store.task_statistics(query)
    by_assignee: dict[str | None, int] = {}
    by_status: dict[str, int] = {}
    by_day: dict[date, int] = {}
    for r in rows:
        by_assignee[r.assignee] = by_assignee.get(r.assignee, 0) + r.count
        by_status[r.status] = by_status.get(r.status, 0) + r.count
        by_day[r.day] = by_day.get(r.day, 0) + r.count
    return TaskStatistics(rows, sum(r.count for r in rows), by_assignee, by_status, by_day)
