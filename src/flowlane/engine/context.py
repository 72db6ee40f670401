"""What the pure engine may read: the :class:`World` protocol, and object proxies.

The runtime gives :func:`flowlane.engine.decide` a :class:`Ctx` with the event's time and a
read-only :class:`World`. The engine never writes through it: every change leaves as a command.
Within one step the engine keeps an overlay of the objects it changed, so later blocks (and
children started in the same step) see the changes at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Protocol

from flowlane.expr import Expression
from flowlane.model.definition import Definition
from flowlane.model.template import Template
from flowlane.objects import Schema


@dataclass(slots=True)
class ObjectRecord:
    """An object as stored: its id, type and field values (``stage`` among them)."""

    id: str
    type: str
    data: dict[str, Any]


class World(Protocol):
    """Read-only queries the engine may make while deciding."""

    @property
    def schema(self) -> Schema: ...

    @property
    def tz(self) -> tzinfo: ...

    @property
    def secret(self) -> bytes: ...

    def get_object(self, object_id: str) -> ObjectRecord | None: ...

    def users(self, selector: str) -> list[str]:
        """User ids for ``group:<key>``, ``role:<r>`` or ``user:<id>``, sorted by id."""
        ...

    def open_task_count(self, user_id: str) -> int: ...

    def find_objects(
        self, type_key: str, where: Expression | None, scope: Callable[[str], Mapping[str, Any]]
    ) -> list[str]:
        """Ids of the objects of a type for which ``where`` holds in ``scope(id)``, sorted."""
        ...

    def definition(self, key: str) -> Definition | None: ...

    def template(self, name: str) -> Template | None: ...


LinkMaker = Callable[[str, str, datetime], str]
"""``(object_id, form_key, issued_at) -> URL`` of a signed link to a form (S4). It is made by
the services from the account secret (HMAC is deterministic, so the engine stays pure)."""


TaskLinkMaker = Callable[[str], str]
"""``task_id -> URL`` of a task's page: ``{{ task_link }}`` in an email with ``reply_to_task``."""


@dataclass(slots=True)
class Ctx:
    now: datetime
    world: World
    links: LinkMaker | None = None
    """What ``form_link(...)`` in templates calls; None where no links can be made."""
    task_links: TaskLinkMaker | None = None
    """What makes ``{{ task_link }}``; None where no links can be made."""


@dataclass(slots=True)
class Overlay:
    """Objects read or changed in this step; ``reads`` collects ids while tracking."""

    world: World
    records: dict[str, ObjectRecord | None] = field(default_factory=dict)
    reads: set[str] | None = None

    def load(self, object_id: str) -> ObjectRecord | None:
        if self.reads is not None:
            self.reads.add(object_id)
        try:
            return self.records[object_id]
        except KeyError:
            rec = self.world.get_object(object_id)
            if rec is not None:
                rec = ObjectRecord(rec.id, rec.type, dict(rec.data))
            self.records[object_id] = rec
            return rec

    def proxy(self, object_id: str | None) -> ObjectProxy | None:
        return None if object_id is None else ObjectProxy(self, object_id)


class ObjectProxy:
    """An object as expressions and templates see it.

    Link fields read as the linked object (``object.client.phone``); a proxy compares equal
    to its id (``object.manager == 'boris'``) and prints as its id.
    """

    __slots__ = ("_id", "_overlay")

    def __init__(self, overlay: Overlay, object_id: str) -> None:
        self._overlay = overlay
        self._id = object_id

    @property
    def id(self) -> str:
        return self._id

    def flowlane_get(self, name: str) -> Any:
        rec = self._overlay.load(self._id)
        if rec is None:
            return None
        if name == "id":
            return self._id
        if name == "type":
            return rec.type
        value = rec.data.get(name)
        if value is None:
            return None
        otype = self._overlay.world.schema.types.get(rec.type)
        spec = otype.fields.get(name) if otype is not None else None
        if spec is None:
            return value
        if spec.write_only:
            return None
        if spec.link_type is not None:
            return ObjectProxy(self._overlay, str(value))
        return value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.flowlane_get(name)

    def __getitem__(self, name: str) -> Any:
        return self.flowlane_get(name)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ObjectProxy):
            return other._id == self._id
        if isinstance(other, str):
            return other == self._id
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._id)

    def __str__(self) -> str:
        return self._id

    def __repr__(self) -> str:
        return f"<object {self._id}>"


def object_scope(overlay: Overlay, object_id: str, now: datetime) -> dict[str, Any]:
    """Names in scope for a filter or entry condition on one object (no instance yet)."""
    return {
        "object": overlay.proxy(object_id),
        "vars": {},
        "counters": {},
        "answer": None,
        "now": now,
    }


def object_id_of(value: Any) -> str | None:
    """The id a link value names: a proxy, a record-like mapping or a plain id."""
    if value is None or value == "":
        return None
    if isinstance(value, ObjectProxy):
        return value.id
    if isinstance(value, Mapping):
        v = value.get("id")
        return str(v) if v is not None else None
    return str(value)
