"""The in-memory store: the reference implementation the SQL store must match.

It also serves the engine as its read-only :class:`~flowlane.engine.World`. Nothing here
decides process logic; the services call it.
"""

from __future__ import annotations

import copy
import heapq
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from flowlane.engine.context import ObjectRecord
from flowlane.engine.state import InstanceState
from flowlane.expr import Expression
from flowlane.model.definition import Definition
from flowlane.model.template import Template
from flowlane.objects import Schema
from flowlane.store.records import IncidentRecord, MessageRecord, TaskRecord, TimerRecord

DEFAULT_TZ = "Europe/Moscow"


@dataclass
class MemoryStore:
    """Objects, process versions, instances, tasks, timers, messages and history in memory."""

    schema: Schema
    tz: tzinfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TZ))
    secret: bytes = b"flowlane-dev-secret"
    templates: dict[str, Template] = field(default_factory=dict)
    versions: dict[str, list[Definition]] = field(default_factory=dict)
    objects: dict[str, ObjectRecord] = field(default_factory=dict)
    instances: dict[str, InstanceState] = field(default_factory=dict)
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    timers: dict[str, TimerRecord] = field(default_factory=dict)
    messages: list[MessageRecord] = field(default_factory=list)
    notifications: list[MessageRecord] = field(default_factory=list)
    incidents: list[IncidentRecord] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: dict[str, set[str]] = field(default_factory=dict)
    subscribed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    entered: set[tuple[str, str]] = field(default_factory=set)
    matched: dict[str, set[str]] = field(default_factory=dict)
    approved: set[str] = field(default_factory=set)
    tasks_created: dict[tuple[str, str, str | None], int] = field(default_factory=dict)
    """Tasks opened per (process, block, object), counting tasks ``restart`` deleted too."""
    _heap: list[tuple[datetime, int, str]] = field(default_factory=list)
    _timer_seq: int = 0
    _instance_seq: int = 0

    # ---- World (read-only, for the engine) -------------------------------------------

    def get_object(self, object_id: str) -> ObjectRecord | None:
        return self.objects.get(object_id)

    def users(self, selector: str) -> list[str]:
        kind, _, value = selector.partition(":")
        if kind == "user":
            return [value] if value in self.objects else []
        out = []
        for oid, rec in self.objects.items():
            if rec.type != "user":
                continue
            if (kind == "group" and value in (rec.data.get("groups") or [])) or (
                kind == "role" and rec.data.get("role") == value
            ):
                out.append(oid)
        return sorted(out)

    def open_task_count(self, user_id: str) -> int:
        return sum(1 for t in self.tasks.values() if t.assignee == user_id and not t.closed)

    def find_objects(
        self, type_key: str, where: Expression | None, scope: Callable[[str], Mapping[str, Any]]
    ) -> list[str]:
        ids = sorted(oid for oid, rec in self.objects.items() if rec.type == type_key)
        if where is None:
            return ids
        return [oid for oid in ids if where.test(scope(oid))]

    def definition(self, key: str) -> Definition | None:
        versions = self.versions.get(key)
        return versions[-1] if versions else None

    def template(self, name: str) -> Template | None:
        return self.templates.get(name)

    # ---- processes ------------------------------------------------------------------------

    def deploy(self, definition: Definition) -> Definition:
        """Store a new version unless it equals the latest; return the version in force."""
        versions = self.versions.setdefault(definition.key, [])
        if versions and versions[-1].spec == definition.spec:
            return versions[-1]
        version = Definition.build(
            definition.spec, version=len(versions) + 1, source=definition.source
        )
        versions.append(version)
        return version

    def version(self, key: str, version: int) -> Definition:
        return self.versions[key][version - 1]

    # ---- instances ------------------------------------------------------------------------

    def new_instance_id(self) -> str:
        self._instance_seq += 1
        return f"i{self._instance_seq}"

    def instances_of(
        self, process: str | None = None, object_id: str | None = None
    ) -> Iterator[InstanceState]:
        for st in self.instances.values():
            if (process is None or st.process == process) and (
                object_id is None or st.object_id == object_id
            ):
                yield st

    def subscribe(self, instance_id: str, object_ids: tuple[str, ...]) -> None:
        for oid in self.subscribed.get(instance_id, ()):
            self.subscriptions.get(oid, set()).discard(instance_id)
        self.subscribed[instance_id] = object_ids
        for oid in object_ids:
            self.subscriptions.setdefault(oid, set()).add(instance_id)

    def waiting_on(self, object_id: str) -> list[str]:
        """Instances whose wait conditions read this object (by index, not by scan)."""
        return sorted(self.subscriptions.get(object_id, ()), key=_instance_order)

    # ---- savepoints -----------------------------------------------------------------------

    _APPEND_ONLY = ("messages", "notifications", "incidents", "history")
    _COPIED = (
        "objects",
        "instances",
        "tasks",
        "timers",
        "_heap",
        "subscriptions",
        "subscribed",
        "entered",
        "matched",
        "approved",
        "tasks_created",
        "schema",
    )

    def savepoint(self) -> dict[str, Any]:
        """What :meth:`rollback` needs to undo everything done after this call.

        The memory store's stand-in for a transaction: a refused request changes nothing.
        Append-only lists are cut back to their length; the rest is copied.
        """
        saved: dict[str, Any] = {k: len(getattr(self, k)) for k in self._APPEND_ONLY}
        saved.update({k: copy.deepcopy(getattr(self, k)) for k in self._COPIED})
        saved["_seq"] = (self._timer_seq, self._instance_seq)
        return saved

    def rollback(self, saved: dict[str, Any]) -> None:
        for k in self._APPEND_ONLY:
            del getattr(self, k)[saved[k] :]
        for k in self._COPIED:
            setattr(self, k, saved[k])
        self._timer_seq, self._instance_seq = saved["_seq"]

    # ---- timers ---------------------------------------------------------------------------

    def add_timer(self, timer: TimerRecord) -> None:
        self._timer_seq += 1
        timer.order = self._timer_seq
        self.timers[timer.id] = timer
        heapq.heappush(self._heap, (timer.due_at, timer.order, timer.id))

    def cancel_timer(self, timer_id: str) -> None:
        self.timers.pop(timer_id, None)

    def next_timer(self, until: datetime) -> TimerRecord | None:
        """The earliest timer due at or before ``until`` (ties in scheduling order)."""
        while self._heap:
            due, order, tid = self._heap[0]
            timer = self.timers.get(tid)
            if timer is None or timer.order != order:
                heapq.heappop(self._heap)
                continue
            return timer if due <= until else None
        return None

    def pop_timer(self, timer_id: str) -> TimerRecord | None:
        return self.timers.pop(timer_id, None)


def _instance_order(instance_id: str) -> tuple[int, str]:
    head = instance_id.split(".", 1)[0]
    return (int(head[1:]) if head[1:].isdigit() else 0, instance_id)


__all__ = ["MemoryStore", "MessageRecord", "TaskRecord", "TimerRecord"]
