"""Events (past tense, into :func:`decide`) and commands (imperative, out of it).

The runtime applies a :class:`Decision`'s commands in order, in one transaction with the
new state: an ``UpdateObject`` lands before a later ``StartChild`` so the child sees it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from flowlane.engine.state import InstanceState

# ---- events ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InstanceStarted:
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TaskAnswered:
    task_id: str
    option: str | None
    fields: dict[str, Any]
    by: str | None


@dataclass(frozen=True, slots=True)
class TaskFinished:
    """A workflow task reached a final status."""

    task_id: str
    status: str
    by: str | None


@dataclass(frozen=True, slots=True)
class TimerFired:
    timer_id: str


@dataclass(frozen=True, slots=True)
class ObjectChanged:
    object_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChildEnded:
    child_id: str
    outcome: str | None
    result: str | None


@dataclass(frozen=True, slots=True)
class InstanceCancelled:
    reason: str = "cancelled"


@dataclass(frozen=True, slots=True)
class Retried:
    """An instance stopped by an incident is run again from where its tokens stand."""


@dataclass(frozen=True, slots=True)
class EventDelivered:
    """A message or signal by name (``fire_event`` kinds ``message`` / ``signal``) for an
    instance of a standard BPMN process waiting for it (ADR 0012 "Hosting")."""

    kind: str
    name: str
    data: dict[str, Any] = field(default_factory=dict)


Event = (
    InstanceStarted
    | TaskAnswered
    | TaskFinished
    | TimerFired
    | ObjectChanged
    | ChildEnded
    | InstanceCancelled
    | Retried
    | EventDelivered
)

# ---- commands --------------------------------------------------------------------------


@dataclass(slots=True)
class OpenTask:
    task_id: str
    instance_id: str
    process: str
    block: str
    kind: str  # question | call | task | ask_date | confirm
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
    inbox: bool = True


@dataclass(frozen=True, slots=True)
class CloseTask:
    task_id: str
    status: str = "cancelled"


@dataclass(frozen=True, slots=True)
class ScheduleTimer:
    timer_id: str
    instance_id: str
    due_at: datetime


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer_id: str


@dataclass(frozen=True, slots=True)
class CreateObject:
    object_id: str
    type: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UpdateObject:
    object_id: str
    changes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SendMessage:
    message_id: str
    instance_id: str
    block: str
    channel: str
    to: str
    recipient: str | None
    subject: str
    body: str
    task_id: str | None = None
    """The task a reply comments on (``reply_to_task``): its id in this instance."""


@dataclass(frozen=True, slots=True)
class StartChild:
    child_id: str
    process: str
    object_id: str | None
    vars: dict[str, Any]
    parent_id: str
    token: int
    settings_from: str


@dataclass(frozen=True, slots=True)
class CancelChild:
    child_id: str


@dataclass(frozen=True, slots=True)
class NotifyParent:
    parent_id: str
    child_id: str
    outcome: str | None
    result: str | None


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Replace the set of objects whose changes wake this instance."""

    instance_id: str
    object_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RaiseIncident:
    instance_id: str
    block: str | None
    message: str


@dataclass(frozen=True, slots=True)
class DeliverEvent:
    """A message / signal a standard BPMN run threw for other instances waiting for it."""

    kind: str
    name: str
    data: dict[str, Any]
    sender: str


Command = (
    OpenTask
    | CloseTask
    | ScheduleTimer
    | CancelTimer
    | CreateObject
    | UpdateObject
    | SendMessage
    | StartChild
    | CancelChild
    | NotifyParent
    | Subscribe
    | RaiseIncident
    | DeliverEvent
)


class TraceEntry(NamedTuple):
    """One line of an instance's history: what happened at which block."""

    instance_id: str
    process: str
    block: str | None
    event: str
    details: dict[str, Any]


@dataclass(slots=True)
class Decision:
    """The outcome of one step: the new state, the commands to apply, the trace to record."""

    state: InstanceState
    commands: list[Command]
    trace: list[TraceEntry]


# ---- codec -------------------------------------------------------------------------------

_EVENT_TYPES: dict[str, type] = {
    t.__name__: t
    for t in (
        InstanceStarted,
        TaskAnswered,
        TaskFinished,
        TimerFired,
        ObjectChanged,
        ChildEnded,
        InstanceCancelled,
        Retried,
        EventDelivered,
    )
}


def message_to_dict(message: Event | Command) -> dict[str, Any]:
    """An event or command as JSON-safe data: ``{"type": name, ...fields}``. A field added
    later with the default None (``SendMessage.task_id``) is left out while it is None, so
    that histories written before it still compare equal."""
    from dataclasses import fields as dc_fields

    from flowlane.engine.state import encode_value

    out: dict[str, Any] = {"type": type(message).__name__}
    for f in dc_fields(message):
        value = getattr(message, f.name)
        if value is None and f.default is None:
            continue
        out[f.name] = encode_value(value)
    return out


def event_from_dict(data: dict[str, Any]) -> Event:
    """Inverse of :func:`message_to_dict` for events (stored jobs, golden histories)."""
    from flowlane.engine.state import decode_value

    kind = _EVENT_TYPES.get(str(data.get("type")))
    if kind is None:
        raise ValueError(f"unknown event type {data.get('type')!r}")
    args = {k: decode_value(v) for k, v in data.items() if k != "type"}
    if kind is ObjectChanged:
        args["object_ids"] = tuple(args["object_ids"])
    event: Event = kind(**args)
    return event
