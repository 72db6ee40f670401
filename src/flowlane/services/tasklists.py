"""A person's inbox, the process's task table, tasks of an object or a client, statistics.

Who may look: a person at their own inbox; admins, owners and supervisors (of any process)
at anyone's; admins, owners and the process's supervisors at its task table and statistics,
and they may reassign its tasks in bulk. The store sorts, filters, pages, aggregates and
reassigns (SQL on a database).

A process without ``task:`` settings uses those of the process that starts it (FORMATS.md;
:func:`flowlane.engine.step.effective_settings`): its executors find its unassigned tasks in
their inbox and its supervisors oversee it. Which process starts which is read from the
deployed definitions (``subprocess`` and ``for_each`` blocks, latest versions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from flowlane.core.errors import Forbidden, Invalid, Refused
from flowlane.engine.taskrules import STAFF_ADMIN_ROLES, may_act
from flowlane.model.process import ForEachBlock, ProcessFile, SubprocessBlock, TaskSettings
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
        users_of=acc.members_for(user_id),
    )


def _is_supervisor(acc: Account, user_id: str, settings: TaskSettings) -> bool:
    return bool(settings.supervisors) and may_act(
        user_id,
        role=None,
        assignee=None,
        executors=(),
        supervisors=settings.supervisors,
        users_of=acc.members_for(user_id),
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


def _specs(acc: Account) -> dict[str, ProcessFile]:
    return {key: acc.definition(key).spec for key in acc.store.process_keys()}


def _started_by(specs: dict[str, ProcessFile]) -> dict[str, set[str]]:
    """Process → the deployed processes that start it (``subprocess``, ``for_each``)."""
    starters: dict[str, set[str]] = {}
    for key, spec in specs.items():
        for block in spec.blocks.values():
            if isinstance(block, SubprocessBlock | ForEachBlock):
                starters.setdefault(block.process, set()).add(key)
    return starters


def governing_settings(acc: Account, process: str) -> list[TaskSettings]:
    """The ``task:`` settings that may govern the process's tasks: its own; without them,
    those of every process that starts it, by the same rule up the chain."""
    specs = _specs(acc)
    starters = _started_by(specs)
    found: list[TaskSettings] = []
    seen = {process}
    todo = [process]
    while todo:
        spec = specs.get(todo.pop())
        if spec is None:
            continue
        if spec.task is not None:
            found.append(spec.task)
            continue
        for parent in sorted(starters.get(spec.key, set()) - seen):
            seen.add(parent)
            todo.append(parent)
    return found


def executor_processes(acc: Account, user_id: str) -> list[str]:
    """Processes whose executors include the person: by their own ``task:`` settings, and
    the processes without settings that those start (down any depth of such processes).

    A process without settings started both by one of the person's processes and by
    another counts as theirs: the inbox cannot tell its instances apart (acting on such a
    task still follows the instance's own parent, see ``Account._check_actor``)."""
    specs = _specs(acc)
    mine = {
        key
        for key, spec in specs.items()
        if spec.task is not None and _is_executor(acc, user_id, spec.task)
    }
    children: dict[str, set[str]] = {}
    for child, parents in _started_by(specs).items():
        for parent in parents:
            children.setdefault(parent, set()).add(child)
    todo = list(mine)
    while todo:
        for child in children.get(todo.pop(), set()):
            spec = specs.get(child)
            if spec is not None and spec.task is None and child not in mine:
                mine.add(child)
                todo.append(child)
    return sorted(mine)


def inbox(
    acc: Account, user_id: str, *, page: int = 1, size: int = 50, by: str | None = None
) -> TaskPage:
    acc.role_of(user_id)
    if by is not None and by != user_id and not _oversees(acc, by):
        raise Forbidden(f"{by} may not look at the inbox of {user_id}")
    offset, limit = _page(page, size)
    processes = executor_processes(acc, user_id)
    tasks = acc.store.inbox(user_id, processes, acc.now, offset=offset, limit=limit)
    if len(tasks) < limit and (tasks or offset == 0):
        total = offset + len(tasks)  # the last page: no need to count
    else:
        total = acc.store.inbox_count(user_id, processes)
    return TaskPage(tasks, total, page, size)


def is_supervisor(acc: Account, process: str, user_id: str) -> bool:
    """Whether the person is a supervisor of the process (or of a process whose settings
    govern it, see :func:`governing_settings`)."""
    return any(_is_supervisor(acc, user_id, s) for s in governing_settings(acc, process))


def check_supervisor(acc: Account, process: str, by: str | None, what: str) -> None:
    """Admins, owners and the process's supervisors; anyone else is refused."""
    acc.definition(process)
    if by is None or acc.role_of(by) in STAFF_ADMIN_ROLES:
        return
    if not is_supervisor(acc, process, by):
        raise Forbidden(f"{by} may not {what} of process {process!r}")


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
    block: str | None = None,
) -> TaskQuery:
    if unassigned and assignee is not None:
        raise Invalid(
            "assignee: give a person or ask for unassigned tasks, not both", parameter="assignee"
        )
    for name, moment in (("created_from", created_from), ("created_to", created_to)):
        if moment is not None and moment.tzinfo is None:
            raise Invalid(f"{name} must have a time zone offset", parameter=name)
    if created_from is not None and created_to is not None and created_to < created_from:
        raise Invalid("created_to must not be before created_from", parameter="created_to")
    return TaskQuery(
        process=process,
        status=status,
        assignee=assignee,
        unassigned=unassigned,
        object_ids=(object_id,) if object_id is not None else None,
        open_only=open_only,
        created_from=created_from,
        created_to=created_to,
        block=block,
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
        raise Invalid(
            f"sort must be one of {', '.join(TASK_SORTS)}, not {sort!r}", parameter="sort"
        )
    offset, limit = _page(page, size)
    tasks, total = acc.store.task_page(
        query, sort=sort, descending=descending, offset=offset, limit=limit
    )
    return TaskPage(tasks, total, page, size)


def _staff_only(acc: Account, by: str | None, what: str) -> None:
    if by is not None and acc.role_of(by) == "client":
        raise Forbidden(f"{by} (client) may not {what}")


def object_tasks(acc: Account, object_id: str, *, by: str | None = None) -> list[TaskRecord]:
    """Every task opened on an object (its card), in creation order."""
    acc.get_object(object_id)
    _staff_only(acc, by, f"list the tasks of {object_id}")
    tasks, _n = acc.store.task_page(TaskQuery(object_ids=(object_id,)), limit=MAX_PAGE_SIZE)
    return tasks


def client_tasks(acc: Account, user_id: str, *, by: str | None = None) -> list[TaskRecord]:
    """Tasks on the client's profile: tasks whose object is the client, or an object whose
    ``client`` field is the client; in creation order (the first 500).

    Staff see them all (the client's card); the client sees only those they may act on
    (their homework), never the staff's tasks about them ("Take order A-1001?")."""
    acc.role_of(user_id)
    if by != user_id:
        _staff_only(acc, by, f"list the tasks of {user_id}")
    ids = [user_id]
    scope = {**condition_scope(acc), "vars": {"client": user_id}}
    for key, otype in sorted(acc.store.schema.types.items()):
        if "client" in otype.fields:
            ids.extend(acc.store.select_objects(key, "object.client == vars.client", scope))
    tasks, _n = acc.store.task_page(TaskQuery(object_ids=tuple(ids)), limit=MAX_PAGE_SIZE)
    if by != user_id:
        return tasks
    return [t for t in tasks if _may_act(acc, t, user_id)]


def _may_act(acc: Account, task: TaskRecord, user_id: str) -> bool:
    try:
        acc.check_actor(task, user_id, "see")
    except Forbidden:
        return False
    return True


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


def reassign(
    acc: Account,
    process: str,
    *,
    from_: str | None,
    from_given: bool,
    status: str | None,
    to: str | None,
    by: str | None,
    object_id: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    block: str | None = None,
) -> int:
    """Give the process's matching tasks to ``to`` (None: nobody) in one set-based store
    call; admins, owners and the process's supervisors may. Filters: the tasks of ``from_``
    (None: unassigned ones) when ``from_given``; status ``status``, else every open task; the
    object; created in [``created_from``, ``created_to``). Tasks ``to`` holds already stay
    as they are. Returns how many tasks changed; each gets a ``reassigned`` history entry."""
    acc.definition(process)
    if by is not None:
        role = acc.role_of(by)
        if role not in STAFF_ADMIN_ROLES and not is_supervisor(acc, process, by):
            raise Forbidden(
                f"{by} ({role}) may not reassign tasks of {process}: "
                "admins, owners and the process's supervisors may"
            )
    if to is not None:
        acc.role_of(to)
    query = task_query(
        acc,
        process,
        status=status,
        assignee=from_ if from_given else None,
        unassigned=from_given and from_ is None,
        object_id=object_id,
        open_only=status is None,
        created_from=created_from,
        created_to=created_to,
        block=block,
    )
    entry = {"at": acc.now, "by": by, "what": "reassigned", "to": to}
    return acc.store.reassign_tasks(query, to, entry)
