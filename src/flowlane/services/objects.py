"""Objects as people see them: lists with filters, cards, kanban boards, changes, types and
dictionaries (the services behind the API's objects router).

Rules (``services/permissions.py``):

* Who sees which objects: those with ``see_objects`` (staff) see every object; anyone else (a
  client) sees only the objects linked to them: their own user, and objects of other types
  whose user link fields (``client``, ``manager``..., or lists of user links) name them. An
  object a person may not see does not exist for them (404), so ids reveal nothing. The rule
  is :func:`viewer_condition` (a condition the database evaluates) and :func:`may_see` (the
  same on one record).
* Creating and changing objects, moving them between stages: ``work_with_objects``; users are
  created and changed through :mod:`flowlane.services.users` (its rules: roles, owners).
* Types and dictionaries: anyone signed in reads them; ``manage_types`` changes them.
* Counts are made by the database (:meth:`Store.count_objects`), never by loading objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from flowlane.core.errors import Conflict, FlowlaneError, Invalid, NotFound
from flowlane.engine.context import ObjectRecord
from flowlane.engine.state import InstanceState
from flowlane.expr import compile_expression
from flowlane.model.segment import filter_expression
from flowlane.objects import FieldSpec, ObjectType, link_problems, validate_record
from flowlane.services import permissions, tasklists, users
from flowlane.services.launch import condition_scope
from flowlane.store.records import TaskRecord

if TYPE_CHECKING:
    from flowlane.services.account import Account, MoveResult

MAX_SORTED = 10_000
"""Most matching objects a list sorted by a field (not by id) may have."""
CARD_FIELDS = 4
"""Fields a kanban card shows (the type defines no card fields)."""
CARD_FIRST = ("name", "title", "number", "subject")
"""Fields a card shows first when the type has them."""
HISTORY = 50
"""History entries a card shows (the most recent)."""


@dataclass(frozen=True, slots=True)
class ObjectPage:
    """A page of objects and how many the whole (filtered, visible) list holds."""

    items: list[ObjectRecord]
    total: int


@dataclass(frozen=True, slots=True)
class Card:
    """An object's card: the object, its tasks, its process instances, recent history."""

    record: ObjectRecord
    tasks: list[TaskRecord]
    instances: list[InstanceState]
    history: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Column:
    """A kanban column: its stage, how many objects it holds, the first cards."""

    stage: str
    final: bool
    count: int
    cards: list[ObjectRecord]


# ---- who sees what ----------------------------------------------------------------------------


def sees_all(acc: Account, by: str | None) -> bool:
    """Whether the person sees every object (staff; ``None``, the system, does)."""
    return permissions.can(acc, by, "see_objects")


def _user_links(otype: ObjectType) -> list[tuple[str, bool]]:
    """The type's fields that link to users: (name, is a list)."""
    out = []
    for name, spec in otype.fields.items():
        if spec.link_type == "user":
            out.append((name, False))
        elif spec.type == "list" and spec.of is not None and spec.of.link_type == "user":
            out.append((name, True))
    return out


def viewer_condition(acc: Account, type_key: str, by: str | None) -> str | None:
    """The condition an object of the type must meet for the person to see it: ``None`` when
    they see all; ``"False"`` when they see none of the type."""
    if sees_all(acc, by):
        return None
    assert by is not None
    me = repr(by)
    if type_key == "user":
        return f"object.id == {me}"
    parts = [
        f"{me} in object.{name}" if many else f"object.{name} == {me}"
        for name, many in _user_links(acc.store.schema.types[type_key])
    ]
    return " or ".join(parts) if parts else "False"


def may_see(acc: Account, rec: ObjectRecord, by: str | None) -> bool:
    """:func:`viewer_condition` on one record."""
    if sees_all(acc, by):
        return True
    if rec.type == "user":
        return rec.id == by
    otype = acc.store.schema.types.get(rec.type)
    if otype is None:
        return False
    for name, many in _user_links(otype):
        value = rec.data.get(name)
        if (many and isinstance(value, list) and by in value) or (not many and value == by):
            return True
    return False


def visible_object(acc: Account, object_id: str, *, by: str | None) -> ObjectRecord:
    """The object, if the person may see it (else it does not exist for them)."""
    rec = acc.store.get_object(object_id)
    if rec is None or not may_see(acc, rec, by):
        raise NotFound(f"object {object_id!r} does not exist")
    return rec


def shown_data(otype: ObjectType | None, data: dict[str, Any]) -> dict[str, Any]:
    """An object's fields as shown: without write-only fields (passwords) and ``stage``."""
    hidden = {"stage"}
    if otype is not None:
        hidden |= {n for n, s in otype.fields.items() if s.write_only}
    return {k: v for k, v in data.items() if k not in hidden}


# ---- types and dictionaries ------------------------------------------------------------------


def _signed_in(acc: Account, by: str | None) -> None:
    acc.role_of(by)  # refuses an id that names no user


def object_types(acc: Account, *, by: str | None) -> list[ObjectType]:
    """Every object type, sorted by key."""
    _signed_in(acc, by)
    return acc.object_types()


def object_type(acc: Account, key: str, *, by: str | None) -> ObjectType:
    _signed_in(acc, by)
    otype = acc.store.schema.types.get(key)
    if otype is None:
        raise NotFound(f"object type {key!r} does not exist", type=key)
    return otype


def define_type(acc: Account, key: str, spec: dict[str, Any], *, by: str | None) -> ObjectType:
    """A new custom type (those who manage types)."""
    return acc.define_type(key, spec, by=by)


def change_type(
    acc: Account,
    key: str,
    spec: dict[str, Any],
    *,
    drop_fields: list[str] | None = None,
    by: str | None,
) -> ObjectType:
    """Change a type, converting its stored objects (refused if one cannot take it)."""
    permissions.require(acc, by, "manage_types", f"change type {key}")
    object_type(acc, key, by=by)
    return acc.change_type(key, spec, drop_fields=drop_fields, by=by)


def dictionaries(acc: Account, *, by: str | None) -> dict[str, list[str]]:
    """Every dictionary with its values, by key (sorted)."""
    _signed_in(acc, by)
    found = acc.store.schema.dictionaries
    return {k: list(found[k]) for k in sorted(found)}


def dictionary(acc: Account, key: str, *, by: str | None) -> list[str]:
    _signed_in(acc, by)
    values = acc.store.schema.dictionaries.get(key)
    if values is None:
        raise NotFound(f"dictionary {key!r} does not exist", dictionary=key)
    return list(values)


def add_dictionary(acc: Account, key: str, values: list[str], *, by: str | None) -> list[str]:
    """A new dictionary (those who manage types); its values."""
    acc.add_dictionary(key, values, by=by)
    return dictionary(acc, key, by=by)


def add_dictionary_value(acc: Account, key: str, value: str, *, by: str | None) -> list[str]:
    """Add a value to a dictionary (those who manage types; a value it has stays once); its
    values."""
    permissions.require(acc, by, "manage_types", f"add values to dictionary {key}")
    dictionary(acc, key, by=by)
    acc.add_dictionary_value(key, value)
    return dictionary(acc, key, by=by)


# ---- lists -----------------------------------------------------------------------------------


def _type(acc: Account, type_key: str, field: str) -> ObjectType:
    otype = acc.store.schema.types.get(type_key)
    if otype is None:
        known = ", ".join(sorted(acc.store.schema.types))
        raise Invalid(
            f"{field}: object type {type_key!r} does not exist (types: {known})", field=field
        )
    return otype


def condition(acc: Account, type_key: str, where: Any, *, by: str | None) -> str | None:
    """The filter ``where`` (an expression, or structured: ``{field, op, value}``, ``all``,
    ``any``, ``not``) as one checked expression, narrowed to what the person may see;
    :class:`Invalid` naming ``where`` when the filter is wrong."""
    try:
        source = filter_expression(where, type_key, acc.store.schema)
        if source is not None:
            compile_expression(source)
    except FlowlaneError as exc:
        raise Invalid(f"where: {exc}", field="where") from exc
    mine = viewer_condition(acc, type_key, by)
    if mine == "False":
        return mine
    if mine is None or source is None:
        return mine if source is None else source
    return f"({source}) and ({mine})"


def _sort_key(value: Any) -> tuple[int, Any]:
    return (1, "") if value is None else (0, value)


def _sorted(records: list[ObjectRecord], field: str, descending: bool) -> list[ObjectRecord]:
    present = [r for r in records if r.data.get(field) is not None]
    empty = [r for r in records if r.data.get(field) is None]
    try:
        present.sort(key=lambda r: (r.data[field], r.id), reverse=descending)
    except TypeError:  # values of mixed kinds (a type change in between): compare as text
        present.sort(key=lambda r: (str(r.data[field]), r.id), reverse=descending)
    return present + empty  # no value: last either way


def _records(acc: Account, ids: list[str]) -> list[ObjectRecord]:
    acc.store.prefetch(object_ids=ids)
    return [r for r in (acc.store.get_object(i) for i in ids) if r is not None]


def list_objects(
    acc: Account,
    type_key: str,
    where: Any = None,
    *,
    sort: str | None = None,
    offset: int = 0,
    limit: int = 50,
    by: str | None,
) -> ObjectPage:
    """A page of the objects of a type that match ``where`` and the person may see, sorted
    by ``sort``: ``id`` (the default) or a field name, ``-`` first for descending (objects
    without a value come last). Sorting by a field needs at most :data:`MAX_SORTED` matches."""
    otype = _type(acc, type_key, "type")
    source = condition(acc, type_key, where, by=by)
    if source == "False":
        return ObjectPage([], 0)
    scope = condition_scope(acc)
    total = acc.store.count_objects(type_key, source, scope)
    descending = bool(sort) and str(sort).startswith("-")
    field = (sort or "id").lstrip("-") or "id"
    if field != "id" and otype.field(field) is None:
        raise Invalid(f"sort: {type_key} has no field {field!r}", field="sort")
    if field != "id" and otype.fields.get(field) is not None and otype.fields[field].write_only:
        raise Invalid(f"sort: field {field!r} is write-only", field="sort")
    if field == "id" and not descending:
        ids = acc.store.select_objects(type_key, source, scope, limit=offset + limit)
        return ObjectPage(_records(acc, ids[offset:]), total)
    if field == "id":
        ids = acc.store.select_objects(type_key, source, scope)
        ids.reverse()
        return ObjectPage(_records(acc, ids[offset : offset + limit]), total)
    if total > MAX_SORTED:
        raise Invalid(
            f"sort: {total} objects match; sorting by {field!r} takes at most {MAX_SORTED} "
            "(narrow the filter, or sort by id)",
            field="sort",
        )
    records = _records(acc, acc.store.select_objects(type_key, source, scope))
    return ObjectPage(_sorted(records, field, descending)[offset : offset + limit], total)


# ---- one object ------------------------------------------------------------------------------


def card(acc: Account, object_id: str, *, by: str | None) -> Card:
    """The object's card. Staff see its tasks, its process instances and recent history; a
    client sees the object and the tasks on it that are theirs."""
    rec = visible_object(acc, object_id, by=by)
    if not sees_all(acc, by):
        mine = [t for t in acc.store.find_tasks(object_id=object_id) if t.assignee == by]
        return Card(rec, mine, [], [])
    tasks = tasklists.object_tasks(acc, object_id, by=by)
    instances = acc.store.instances_of(object_id=object_id)
    lines: list[dict[str, Any]] = []
    for state in instances[-HISTORY:]:
        lines.extend(acc.store.history(state.id))
    lines.sort(key=lambda line: str(line.get("time") or ""))
    return Card(rec, tasks, instances, lines[-HISTORY:])


def _checked(
    acc: Account, otype: ObjectType, data: dict[str, Any], *, partial: bool, stage: str | None
) -> None:
    """Refuse bad field values as :class:`Invalid` naming ``data.<field>``."""
    try:
        clean = validate_record(
            otype,
            data,
            schema=acc.store.schema,
            tz=acc.store.tz,
            partial=partial,
            current_stage=stage,
        )
    except FlowlaneError as exc:
        where = f"data.{exc.fields['field']}" if exc.fields.get("field") else "data"
        raise Invalid(f"{where}: {exc}", field=where) from exc
    for name, value in clean.items():
        problems = link_problems(otype, {name: value}, _type_of(acc))
        if problems:
            raise Invalid(f"data.{name}: {problems[0]}", field=f"data.{name}")


def _type_of(acc: Account) -> Callable[[str], str | None]:
    def lookup(object_id: str) -> str | None:
        rec = acc.store.get_object(object_id)
        return None if rec is None else rec.type

    return lookup


def create_object(
    acc: Account,
    type_key: str,
    data: dict[str, Any],
    *,
    object_id: str | None = None,
    by: str | None,
) -> ObjectRecord:
    """A new object (``work_with_objects``; a user: those who manage users); launches on
    creation run. The object as stored."""
    otype = _type(acc, type_key, "type")
    if type_key == "user":
        new_id = users.create_user(acc, data, user_id=object_id, by=by)
        return acc.get_object(new_id)
    permissions.require(acc, by, "work_with_objects", f"create a {type_key}")
    if object_id is not None and acc.store.get_object(object_id) is not None:
        raise Conflict(f"object {object_id!r} exists already", field="id")
    _checked(acc, otype, data, partial=False, stage=None)
    return acc.get_object(acc.create_object(type_key, data, object_id=object_id))


def update_object(
    acc: Account, object_id: str, changes: dict[str, Any], *, by: str | None
) -> ObjectRecord:
    """Change an object's fields (``work_with_objects``; a user through the users' rules);
    update launches fire and waits on the object wake. Stages move with :func:`move_stage`."""
    rec = visible_object(acc, object_id, by=by)
    if rec.type == "user":
        users.update_user(acc, object_id, changes, by=by)
        return acc.get_object(object_id)
    permissions.require(acc, by, "work_with_objects", f"change {object_id}")
    if "stage" in changes:
        raise Invalid(
            f"set.stage: move {object_id} with POST /objects/{object_id}/stage", field="set.stage"
        )
    otype = acc.store.schema.types[rec.type]
    _checked(acc, otype, changes, partial=True, stage=rec.data.get("stage"))
    acc.update_object(object_id, changes)
    return acc.get_object(object_id)


def move_stage(acc: Account, object_id: str, to: str, *, by: str | None) -> MoveResult:
    """Move the object to a stage (``work_with_objects``). A refused move (unknown stage, out
    of a final stage) raises; a move a guard sent back is returned as it is (what the guard
    did stays done): pass it to :func:`refuse_sent_back` after the unit of work commits."""
    visible_object(acc, object_id, by=by)
    return acc.move_stage(object_id, to, by=by)


def refuse_sent_back(result: MoveResult) -> None:
    """A move a guard sent back, as a :class:`Conflict` with the guard's reason."""
    if not result.moved:
        raise Conflict(
            result.message or f"the move was sent back to {result.stage!r}",
            stage=result.stage,
            reason=result.reason,
        )


# ---- kanban ----------------------------------------------------------------------------------


def card_fields(otype: ObjectType) -> list[str]:
    """The fields a kanban card shows: the type's ``card`` when it has one; else ``name``,
    ``title``... first, then the others by name; no passwords, long texts, lists or files; at
    most :data:`CARD_FIELDS`."""
    if otype.card:
        return list(otype.card)

    def fits(spec: FieldSpec) -> bool:
        return spec.type not in ("password", "text", "list", "file")

    first = [n for n in CARD_FIRST if n in otype.fields and fits(otype.fields[n])]
    # by name: a type read back from PostgreSQL (JSONB) does not keep its declared order
    rest = sorted(n for n, s in otype.fields.items() if n not in first and fits(s))
    return (first + rest)[:CARD_FIELDS]


def _staged(acc: Account, type_key: str, by: str | None) -> ObjectType:
    _signed_in(acc, by)
    otype = acc.store.schema.types.get(type_key)
    if otype is None:
        raise NotFound(f"object type {type_key!r} does not exist", type=type_key)
    if not otype.has_stages:
        raise Conflict(f"object type {type_key!r} has no stages: it has no board", type=type_key)
    return otype


def _in_stage(source: str | None, stage: str) -> str:
    mine = f"object.stage == {stage!r}"
    return mine if source is None else f"({source}) and {mine}"


def kanban(
    acc: Account, type_key: str, where: Any = None, *, per_column: int = 20, by: str | None
) -> list[Column]:
    """The board of a type with stages: a column per stage (the pipeline, then the final
    stages), each with how many objects (filtered, visible) are in it and the first
    ``per_column`` of them by id. The counts are made by the database."""
    otype = _staged(acc, type_key, by)
    source = condition(acc, type_key, where, by=by)
    scope = condition_scope(acc)
    columns = []
    for stage in otype.all_stages:
        if source == "False":
            columns.append(Column(stage, stage in otype.final_stages, 0, []))
            continue
        cond = _in_stage(source, stage)
        count = acc.store.count_objects(type_key, cond, scope)
        ids = acc.store.select_objects(type_key, cond, scope, limit=per_column) if count else []
        columns.append(Column(stage, stage in otype.final_stages, count, _records(acc, ids)))
    return columns


def kanban_column(
    acc: Account,
    type_key: str,
    stage: str,
    where: Any = None,
    *,
    offset: int = 0,
    limit: int = 20,
    by: str | None,
) -> ObjectPage:
    """A page of one kanban column (by id)."""
    otype = _staged(acc, type_key, by)
    if stage not in otype.all_stages:
        stages = ", ".join(otype.all_stages)
        raise NotFound(f"{type_key} has no stage {stage!r} (stages: {stages})", stage=stage)
    source = condition(acc, type_key, where, by=by)
    if source == "False":
        return ObjectPage([], 0)
    cond = _in_stage(source, stage)
    scope = condition_scope(acc)
    count = acc.store.count_objects(type_key, cond, scope)
    ids = acc.store.select_objects(type_key, cond, scope, limit=offset + limit)
    return ObjectPage(_records(acc, ids[offset:]), count)


def iso(value: Any) -> Any:
    """A field value as JSON: dates and date-times as ISO text (lists and mappings too)."""
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [iso(v) for v in value]
    if isinstance(value, dict):
        return {str(k): iso(v) for k, v in value.items()}
    return value
