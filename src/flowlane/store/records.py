"""Records the store keeps besides instance states: tasks, timers, messages, history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
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


__all__ = [
    "IncidentRecord",
    "Job",
    "MessageRecord",
    "ObjectRecord",
    "ProcessStatus",
    "TaskRecord",
    "TimerRecord",
]
