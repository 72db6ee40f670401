"""Records the store keeps besides instance states: tasks, timers, messages, history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flowlane.engine.context import ObjectRecord

TASK_OPEN = "open"


@dataclass(slots=True)
class TaskRecord:
    """A task for a person. ``closed`` is True once answered, finished or cancelled.

    Status diagram: question / call / ask_date / confirm tasks go ``open → answered`` or
    ``open → cancelled``; workflow tasks follow their workflow from ``initial`` to a final
    status, or are cancelled with their instance (unless detached).
    """

    id: str
    instance_id: str
    process: str
    block: str
    kind: str
    object_id: str | None
    title: str
    text: str
    assignee: str | None
    options: tuple[str, ...]
    fields: dict[str, Any]
    workflow: dict[str, Any] | None
    waits: bool
    priority: str
    reaction_s: int | None
    created_at: datetime
    status: str = TASK_OPEN
    closed: bool = False
    closed_at: datetime | None = None
    answer: dict[str, Any] | None = None
    comments: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    """Files on the task: id, name, size, content_type, key (in the file store), by, at."""
    inbox: bool = True
    """The process's ``task: inbox`` setting: whether the task shows in people's inboxes."""

    @property
    def due_at(self) -> datetime | None:
        """When the task should be reacted to: creation + the normal reaction time."""
        if self.reaction_s is None:
            return None
        return self.created_at + timedelta(seconds=self.reaction_s)


PRIORITY_RANKS = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
"""Inbox order of priorities: lower ranks come first."""

TASK_SORTS = ("created_at", "due_at", "priority", "status", "assignee")


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Filters of the task table, the statistics and the bulk reassignment.

    ``assignee`` filters on one person when ``unassigned`` is False; ``unassigned`` selects
    tasks nobody holds. ``created_from`` is inclusive, ``created_to`` exclusive.
    """

    process: str | None = None
    status: str | None = None
    assignee: str | None = None
    unassigned: bool = False
    object_ids: tuple[str, ...] | None = None
    open_only: bool = False
    created_from: datetime | None = None
    created_to: datetime | None = None
    block: str | None = None
    """Only the tasks opened by this block of the process."""


@dataclass(frozen=True, slots=True)
class TaskCount:
    """One row of the task statistics: tasks per assignee, status and day of creation."""

    assignee: str | None
    status: str
    day: date
    count: int


@dataclass(slots=True)
class MessageRecord:
    id: str
    instance_id: str
    process: str
    block: str
    channel: str
    to: str
    recipient: str | None
    subject: str
    body: str
    created_at: datetime
    status: str = "sent"
    task_id: str | None = None
    """The task a reply to this email comments on (a message block's ``reply_to_task``)."""
    read_at: datetime | None = None
    """When its recipient read it in the app (in-app messages and notifications)."""


@dataclass(slots=True)
class DeliveryRecord:
    """A message of the outbox with its delivery state, for the UI and the API.

    ``status``: ``queued`` (email not handed over yet; ``attempts`` and ``last_error`` tell
    of the retries so far), ``sent``, ``failed`` (refused for good or out of retries),
    ``bounced`` (a bounce came back after it was sent); in-app messages are ``sent`` at once.
    """

    id: str
    instance_id: str
    process: str
    block: str
    channel: str
    to: str
    recipient: str | None
    subject: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None = None
    read_at: datetime | None = None
    """When its recipient read it in the app (in-app messages)."""


@dataclass(slots=True)
class SinkMail:
    """An email the worker stored instead of sending it (mail sink mode).

    ``id`` is given by the store (0 before); ``raw`` is the whole MIME text.
    """

    outbox_id: str
    message_id: str
    to: str
    subject: str
    raw: str
    stored_at: datetime
    id: int = 0


@dataclass(slots=True)
class TimerRecord:
    id: str
    instance_id: str | None
    due_at: datetime
    order: int
    kind: str = "timer"  # timer | periodic
    process: str | None = None


@dataclass(slots=True)
class Job:
    """A claimed row of the durable job queue: a timer, a periodic check or a delivery."""

    id: str
    kind: str
    instance_id: str | None
    payload: dict[str, Any]
    due_at: datetime
    seq: int
    attempts: int
    last_error: str | None = None
    status: str = "locked"


@dataclass(slots=True)
class ProcessStatus:
    """A process's lifecycle: ``active`` (automatic launches fire, manual starts allowed) or
    ``stopped``; when it was last started (activated) and last stopped."""

    process: str
    status: str = "active"  # active | stopped
    started_at: datetime | None = None
    stopped_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(slots=True)
class IncidentRecord:
    instance_id: str
    block: str | None
    message: str
    at: datetime
    resolved: bool = False


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One deployed version of a process: when it was deployed and from which file."""

    key: str
    version: int
    deployed_at: datetime | None
    source: str


__all__ = [
    "PRIORITY_RANKS",
    "TASK_SORTS",
    "DeliveryRecord",
    "IncidentRecord",
    "Job",
    "MessageRecord",
    "ObjectRecord",
    "ProcessStatus",
    "SinkMail",
    "TaskCount",
    "TaskQuery",
    "TaskRecord",
    "TimerRecord",
    "VersionInfo",
]
