"""Object types, dictionaries, objects (lists, search, cards, changes, stage moves), kanban."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from flowlane.api.deps import CallDep
from flowlane.api.pagination import Page, PageDep, PageParams
from flowlane.api.schemas import PROBLEM_RESPONSES, Strict
from flowlane.engine.context import ObjectRecord
from flowlane.engine.state import InstanceState
from flowlane.model.segment import Filter
from flowlane.objects import FieldSpec, ObjectType
from flowlane.objects.file import TypeSpec
from flowlane.services import objects
from flowlane.services.account import Account, MoveResult
from flowlane.store.records import TaskRecord

router = APIRouter(tags=["objects"], responses=PROBLEM_RESPONSES)

Key = Annotated[str, Path(min_length=1, max_length=200, description="A type or dictionary key")]
ObjectId = Annotated[str, Path(min_length=1, max_length=100, description="An object id")]
Where = Annotated[
    str | None,
    Query(
        max_length=2000,
        description="A condition on the objects, e.g. `object.amount > 100 and "
        "object.stage == 'new'` (POST /objects/search takes structured filters)",
    ),
]
Sort = Annotated[
    str | None,
    Query(
        max_length=100,
        pattern=r"^-?[A-Za-z_][A-Za-z0-9_]*$",
        description="`id` (default) or a field name; `-` first for descending",
    ),
]


# ---- models ----------------------------------------------------------------------------------


class FieldOut(BaseModel):
    """A field of an object type."""

    name: str
    type: str
    label: str | None = None
    values: list[str] | None = Field(default=None, description="enum: the allowed values")
    dictionary: str | None = Field(default=None, description="enum: values of this dictionary")
    to: str | None = Field(default=None, description="link: a type key or dictionary:<key>")
    of: FieldOut | None = Field(default=None, description="list: the item's field")
    default: Any = None
    required: bool = False
    write_only: bool = Field(default=False, description="Accepted, never shown (passwords)")

    @classmethod
    def of_spec(cls, spec: FieldSpec) -> FieldOut:
        return cls(
            name=spec.name,
            type=spec.type,
            label=spec.label,
            values=None if spec.values is None else list(spec.values),
            dictionary=spec.dictionary,
            to=spec.to,
            of=None if spec.of is None else cls.of_spec(spec.of),
            default=objects.iso(spec.default),
            required=spec.required,
            write_only=spec.write_only,
        )


class LinkOut(BaseModel):
    """A field that links to objects of another type (or to a dictionary's values)."""

    field: str
    to: str
    many: bool = Field(description="A list of links")


class ObjectTypeOut(BaseModel):
    """An object type: its fields, its stage pipeline and final stages, its links."""

    key: str
    label: str
    builtin: bool
    fields: list[FieldOut]
    stages: list[str] = Field(description="The pipeline (a new object starts in the first)")
    success: str | None = Field(default=None, description="Final stage: success")
    failure: str | None = Field(default=None, description="Final stage: failure")
    final_stages: list[str]
    links: list[LinkOut]
    card_fields: list[str] = Field(description="The fields a kanban card shows")

    @classmethod
    def of(cls, t: ObjectType) -> ObjectTypeOut:
        links = []
        for name, spec in t.fields.items():
            item, many = (spec.of, True) if spec.type == "list" and spec.of else (spec, False)
            if item.type == "link" and item.to:
                links.append(LinkOut(field=name, to=item.to, many=many))
        return cls(
            key=t.key,
            label=t.label,
            builtin=t.builtin,
            fields=[FieldOut.of_spec(s) for s in t.fields.values()],
            stages=list(t.stages),
            success=t.success,
            failure=t.failure,
            final_stages=list(t.final_stages),
            links=links,
            card_fields=objects.card_fields(t),
        )


class TypeIn(Strict):
    key: str = Field(min_length=1, max_length=60, examples=["lead"])
    spec: TypeSpec = Field(
        description="The type in objects.yaml syntax",
        examples=[
            {
                "label": "Lead",
                "stages": ["new", "contacted"],
                "success": "won",
                "failure": "lost",
                "fields": {"name": {"type": "string"}, "client": {"type": "link", "to": "user"}},
            }
        ],
    )


class TypeChangeIn(Strict):
    spec: TypeSpec = Field(description="The whole new type in objects.yaml syntax")
    drop_fields: list[str] = Field(
        default_factory=list,
        description="Removed fields whose stored values may be deleted",
    )


class DictionaryOut(BaseModel):
    key: str
    values: list[str]


class DictionaryIn(Strict):
    key: str = Field(min_length=1, max_length=200)
    values: list[str] = Field(default_factory=list)


class ValueIn(Strict):
    value: str = Field(min_length=1, max_length=200)


class ObjectOut(BaseModel):
    """An object: its fields as JSON (dates ISO, links as ids; never passwords)."""

    id: str
    type: str
    stage: str | None = None
    fields: dict[str, Any]

    @classmethod
    def of(cls, rec: ObjectRecord, types: dict[str, ObjectType]) -> ObjectOut:
        data = objects.shown_data(types.get(rec.type), rec.data)
        stage = rec.data.get("stage")
        return cls(
            id=rec.id,
            type=rec.type,
            stage=None if stage is None else str(stage),
            fields=objects.iso(data),
        )


class TaskBrief(BaseModel):
    id: str
    process: str
    block: str
    title: str
    status: str
    closed: bool
    assignee: str | None = None
    created_at: datetime

    @classmethod
    def of(cls, t: TaskRecord) -> TaskBrief:
        return cls(
            id=t.id,
            process=t.process,
            block=t.block,
            title=t.title,
            status=t.status,
            closed=t.closed,
            assignee=t.assignee,
            created_at=t.created_at,
        )


class InstanceBrief(BaseModel):
    id: str
    process: str
    version: int
    status: str = Field(description="running, ended, incident, cancelled...")
    outcome: str | None = None
    result: str | None = None
    incident: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None

    @classmethod
    def of(cls, s: InstanceState) -> InstanceBrief:
        return cls(
            id=s.id,
            process=s.process,
            version=s.version,
            status=s.status,
            outcome=s.outcome,
            result=s.result,
            incident=s.incident,
            started_at=s.started_at,
            ended_at=s.ended_at,
        )


class CardOut(BaseModel):
    """An object's card: the object, its tasks, its process instances, recent history (the
    instances and history are shown to staff)."""

    object: ObjectOut
    tasks: list[TaskBrief]
    instances: list[InstanceBrief]
    history: list[dict[str, Any]]


class ObjectIn(Strict):
    type: str = Field(min_length=1, max_length=60, examples=["order"])
    id: str | None = Field(default=None, min_length=1, max_length=100)
    data: dict[str, Any] = Field(default_factory=dict, examples=[{"number": "A-1", "amount": 10}])


class ObjectChange(Strict):
    set: dict[str, Any] = Field(
        description="The fields to change (the others stay)", examples=[{"amount": 20}]
    )


class SearchIn(Strict):
    type: str = Field(min_length=1, max_length=60, examples=["order"])
    filter: Filter | None = Field(
        default=None,
        description="An expression, or structured: {field, op, value}, {all: [...]}, "
        "{any: [...]}, {not: ...}",
        examples=[{"all": [{"field": "amount", "op": "gt", "value": 100}]}],
    )
    sort: str | None = Field(
        default=None,
        max_length=100,
        pattern=r"^-?[A-Za-z_][A-Za-z0-9_]*$",
        description="`id` (default) or a field name; `-` first for descending",
    )
    page: int = Field(default=1, ge=1, le=1_000_000)
    size: int = Field(default=50, ge=1, le=200)


class StageIn(Strict):
    to: str = Field(min_length=1, max_length=200, examples=["contacted"])


class Moved(BaseModel):
    moved: bool
    stage: str | None = Field(description="Where the object is now")


class ColumnOut(BaseModel):
    stage: str
    final: bool
    count: int = Field(description="Objects in the stage (filtered)")
    cards: list[ObjectOut] = Field(description="The first cards (by id), with the card fields")


class Board(BaseModel):
    type: str
    card_fields: list[str]
    columns: list[ColumnOut]


# ---- helpers ---------------------------------------------------------------------------------


def _page(
    found: objects.ObjectPage, types: dict[str, ObjectType], paging: PageParams
) -> Page[ObjectOut]:
    return Page[ObjectOut].of([ObjectOut.of(r, types) for r in found.items], found.total, paging)


def _card(rec: ObjectRecord, fields: list[str], types: dict[str, ObjectType]) -> ObjectOut:
    out = ObjectOut.of(rec, types)
    out.fields = {k: v for k, v in out.fields.items() if k in fields}
    return out


# ---- object types and dictionaries -----------------------------------------------------------


@router.get("/object-types")
async def list_object_types(call: CallDep) -> list[ObjectTypeOut]:
    """Every object type (built-in and custom), sorted by key."""
    found = await call(lambda acc, by: objects.object_types(acc, by=by))
    return [ObjectTypeOut.of(t) for t in found]


@router.get("/object-types/{key}")
async def get_object_type(key: Key, call: CallDep) -> ObjectTypeOut:
    """One object type: fields, stages, final stages, links."""
    return ObjectTypeOut.of(await call(lambda acc, by: objects.object_type(acc, key, by=by)))


@router.post("/object-types", status_code=201)
async def define_object_type(body: TypeIn, call: CallDep) -> ObjectTypeOut:
    """A new custom type (admins and owners)."""
    spec = body.spec.model_dump(exclude_unset=True, by_alias=True)
    return ObjectTypeOut.of(
        await call(lambda acc, by: objects.define_type(acc, body.key, spec, by=by))
    )


@router.put("/object-types/{key}")
async def change_object_type(key: Key, body: TypeChangeIn, call: CallDep) -> ObjectTypeOut:
    """Replace a type (admins and owners); the stored objects are converted, and the change
    is refused (409, naming an object) if one of them cannot take it."""
    spec = body.spec.model_dump(exclude_unset=True, by_alias=True)
    drop = list(body.drop_fields)
    return ObjectTypeOut.of(
        await call(lambda acc, by: objects.change_type(acc, key, spec, drop_fields=drop, by=by))
    )


@router.get("/dictionaries")
async def list_dictionaries(call: CallDep) -> list[DictionaryOut]:
    """Every dictionary with its values, sorted by key."""
    found = await call(lambda acc, by: objects.dictionaries(acc, by=by))
    return [DictionaryOut(key=k, values=v) for k, v in found.items()]


@router.post("/dictionaries", status_code=201)
async def add_dictionary(body: DictionaryIn, call: CallDep) -> DictionaryOut:
    """A new dictionary with its values (admins and owners)."""
    values = await call(
        lambda acc, by: objects.add_dictionary(acc, body.key, list(body.values), by=by)
    )
    return DictionaryOut(key=body.key, values=values)


@router.get("/dictionaries/{key}")
async def get_dictionary(key: Key, call: CallDep) -> DictionaryOut:
    """One dictionary's values."""
    values = await call(lambda acc, by: objects.dictionary(acc, key, by=by))
    return DictionaryOut(key=key, values=values)


@router.post("/dictionaries/{key}/values")
async def add_dictionary_value(key: Key, body: ValueIn, call: CallDep) -> DictionaryOut:
    """Add a value to a dictionary (admins and owners; a value it has stays once)."""
    values = await call(lambda acc, by: objects.add_dictionary_value(acc, key, body.value, by=by))
    return DictionaryOut(key=key, values=values)


# ---- objects ---------------------------------------------------------------------------------


@router.get("/objects")
async def list_objects(
    call: CallDep,
    paging: PageDep,
    type: Annotated[str, Query(min_length=1, max_length=60, description="The object type")],
    where: Where = None,
    sort: Sort = None,
) -> Page[ObjectOut]:
    """Objects of a type, filtered and sorted (staff: all; a client: those linked to them)."""

    def work(acc: Account, by: str) -> tuple[objects.ObjectPage, dict[str, ObjectType]]:
        found = objects.list_objects(
            acc, type, where, sort=sort, offset=paging.offset, limit=paging.limit, by=by
        )
        return found, dict(acc.store.schema.types)

    found, types = await call(work)
    return _page(found, types, paging)


@router.post("/objects/search")
async def search_objects(body: SearchIn, call: CallDep) -> Page[ObjectOut]:
    """Objects of a type matching a structured filter (as GET /objects)."""
    paging = PageParams(body.page, body.size)

    def work(acc: Account, by: str) -> tuple[objects.ObjectPage, dict[str, ObjectType]]:
        found = objects.list_objects(
            acc,
            body.type,
            body.filter,
            sort=body.sort,
            offset=paging.offset,
            limit=paging.limit,
            by=by,
        )
        return found, dict(acc.store.schema.types)

    found, types = await call(work)
    return _page(found, types, paging)


@router.post("/objects", status_code=201)
async def create_object(body: ObjectIn, call: CallDep) -> ObjectOut:
    """A new object (managers and above; users: admins and owners); launches on creation
    run."""

    def work(acc: Account, by: str) -> tuple[ObjectRecord, dict[str, ObjectType]]:
        rec = objects.create_object(acc, body.type, dict(body.data), object_id=body.id, by=by)
        return rec, dict(acc.store.schema.types)

    rec, types = await call(work)
    return ObjectOut.of(rec, types)


@router.get("/objects/{object_id}")
async def get_object(object_id: ObjectId, call: CallDep) -> CardOut:
    """The object's card: fields, stage, tasks, process instances, recent history."""

    def work(acc: Account, by: str) -> tuple[objects.Card, dict[str, ObjectType]]:
        return objects.card(acc, object_id, by=by), dict(acc.store.schema.types)

    found, types = await call(work)
    return CardOut(
        object=ObjectOut.of(found.record, types),
        tasks=[TaskBrief.of(t) for t in found.tasks],
        instances=[InstanceBrief.of(s) for s in found.instances],
        history=[objects.iso(line) for line in found.history],
    )


@router.patch("/objects/{object_id}")
async def update_object(object_id: ObjectId, body: ObjectChange, call: CallDep) -> ObjectOut:
    """Change fields (managers and above); update launches fire, waits on the object wake."""
    changes = dict(body.set)

    def work(acc: Account, by: str) -> tuple[ObjectRecord, dict[str, ObjectType]]:
        rec = objects.update_object(acc, object_id, changes, by=by)
        return rec, dict(acc.store.schema.types)

    rec, types = await call(work)
    return ObjectOut.of(rec, types)


@router.post("/objects/{object_id}/stage")
async def move_stage(object_id: ObjectId, body: StageIn, call: CallDep) -> Moved:
    """Move the object to a stage (managers and above); processes launched on the stage run.
    409 when the move is refused (unknown stage, out of a final stage) or a guard process
    sent the object back (what the guard did stays done; the problem gives its reason)."""
    result: MoveResult = await call(
        lambda acc, by: objects.move_stage(acc, object_id, body.to, by=by)
    )
    objects.refuse_sent_back(result)
    return Moved(moved=True, stage=result.stage)


# ---- kanban ----------------------------------------------------------------------------------


@router.get("/kanban/{type_key}")
async def kanban(
    type_key: Key,
    call: CallDep,
    where: Where = None,
    per_column: Annotated[int, Query(ge=1, le=200, description="Cards per column")] = 20,
) -> Board:
    """A type's board: a column per stage in stage order (final stages last), each with its
    count and first cards."""

    def work(acc: Account, by: str) -> tuple[list[objects.Column], dict[str, ObjectType]]:
        cols = objects.kanban(acc, type_key, where, per_column=per_column, by=by)
        return cols, dict(acc.store.schema.types)

    columns, types = await call(work)
    fields = objects.card_fields(types[type_key])
    return Board(
        type=type_key,
        card_fields=fields,
        columns=[
            ColumnOut(
                stage=c.stage,
                final=c.final,
                count=c.count,
                cards=[_card(r, fields, types) for r in c.cards],
            )
            for c in columns
        ],
    )


@router.get("/kanban/{type_key}/{stage}")
async def kanban_column(
    type_key: Key,
    stage: Annotated[str, Path(min_length=1, max_length=200)],
    call: CallDep,
    paging: PageDep,
    where: Where = None,
) -> Page[ObjectOut]:
    """More cards of one column (by id)."""

    def work(acc: Account, by: str) -> tuple[objects.ObjectPage, dict[str, ObjectType]]:
        found = objects.kanban_column(
            acc, type_key, stage, where, offset=paging.offset, limit=paging.limit, by=by
        )
        return found, dict(acc.store.schema.types)

    found, types = await call(work)
    fields = objects.card_fields(types[type_key])
    return Page[ObjectOut].of([_card(r, fields, types) for r in found.items], found.total, paging)
