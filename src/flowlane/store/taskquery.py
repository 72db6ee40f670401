"""The inbox order, the task table's filters and sorts, and the statistics, over records.

:class:`~flowlane.store.memory.MemoryStore` uses these directly; ``SqlStore`` computes the
same in SQL (from the ``due_at``, ``priority_rank``, ``inbox`` and ``created_day`` columns)
and the contract tests hold both to it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from datetime import datetime, tzinfo
from typing import Any

from flowlane.store.records import PRIORITY_RANKS, TaskCount, TaskQuery, TaskRecord

_LAST = (1, "")


def priority_rank(priority: str) -> int:
    return PRIORITY_RANKS.get(priority, PRIORITY_RANKS["normal"])


def in_inbox(task: TaskRecord, user_id: str, executor_processes: Collection[str]) -> bool:
    """An open task of an inbox process held by the person, or held by nobody in a process
    whose executors include them."""
    if task.closed or not task.inbox:
        return False
    if task.assignee is None:
        return task.process in executor_processes
    return task.assignee == user_id


def inbox_key(task: TaskRecord, now: datetime, order: int) -> tuple[Any, ...]:
    """Overdue first (due strictly before ``now``), then priority, then due time (tasks
    without one last), then creation order."""
    due = task.due_at
    overdue = due is not None and due < now
    return (
        0 if overdue else 1,
        priority_rank(task.priority),
        (0, due) if due is not None else _LAST,
        order,
    )


def matches(task: TaskRecord, q: TaskQuery) -> bool:
    return (
        (q.process is None or task.process == q.process)
        and (q.status is None or task.status == q.status)
        and (not q.unassigned or task.assignee is None)
        and (q.unassigned or q.assignee is None or task.assignee == q.assignee)
        and (q.object_ids is None or task.object_id in q.object_ids)
        and not (q.open_only and task.closed)
        and (q.created_from is None or task.created_at >= q.created_from)
        and (q.created_to is None or task.created_at < q.created_to)
        and (q.block is None or task.block == q.block)
    )


def sort_value(task: TaskRecord, sort: str) -> Any:
    """The value the task table sorts on; None sorts last in both directions."""
    if sort == "created_at":
        return task.created_at
    if sort == "due_at":
        return task.due_at
    if sort == "priority":
        return priority_rank(task.priority)
    if sort == "status":
        return task.status.encode()
    if sort == "assignee":
        return task.assignee.encode() if task.assignee is not None else None
    raise ValueError(f"unknown task sort {sort!r}")


def sort_page(tasks: list[TaskRecord], sort: str, descending: bool) -> list[TaskRecord]:
    """Tasks (in creation order) sorted by ``sort``, ties in creation order, None last."""
    present = [t for t in tasks if sort_value(t, sort) is not None]
    missing = [t for t in tasks if sort_value(t, sort) is None]
    present.sort(key=lambda t: sort_value(t, sort), reverse=descending)  # stable
    return present + missing


def statistics(tasks: Iterable[TaskRecord], tz: tzinfo) -> list[TaskCount]:
    """Tasks per (assignee, status, creation day in ``tz``), sorted by day, assignee
    (nobody last), status."""
    counts = Counter((t.assignee, t.status, t.created_at.astimezone(tz).date()) for t in tasks)
    rows = [TaskCount(a, s, d, n) for (a, s, d), n in counts.items()]
    rows.sort(key=lambda r: (r.day, r.assignee is None, r.assignee or "", r.status))
    return rows
