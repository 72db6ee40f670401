"""UI pages: objects (see flowlane.web.ui).

* ``/objects`` — the account's object types with their counts, links to lists, boards and
  ``/dictionaries``;
* ``/objects/{type}`` — a paged list with search and the condition builder (rows of field /
  operator / value joined by AND or OR, plus an expression typed by hand; the structured
  filter of :mod:`flowlane.model.segment`), and the mass start with its progress (one batch
  per htmx request, :mod:`flowlane.services.massstart`);
* ``/objects/{type}/new`` and ``/objects/{type}/{id}`` — the card: fields with an edit form,
  stage buttons, tasks, process instances, history;
* ``/kanban/{type}`` — the board by stage; SortableJS moves a card, the whole board is one
  form posted on Sortable's ``end`` event, the server moves the object through
  :func:`flowlane.services.objects.move_stage` and renders the board again (a refused move
  snaps back, with the reason);
* ``/dictionaries`` — every dictionary with its values; adding a value.

Every rule is the services': this module turns form fields into service arguments and
service results into pages.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from flowlane.api.errors import status_of
from flowlane.core.errors import FlowlaneError, Invalid, NotFound
from flowlane.engine.context import ObjectRecord
from flowlane.objects import FieldSpec, ObjectType
from flowlane.services import massstart, objects, permissions
from flowlane.services.account import Account, MoveResult
from flowlane.web.ui.common import Ui, UiDep

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
PER_COLUMN = 20
TypeKey = Annotated[str, Path(min_length=1, max_length=60)]
ObjectId = Annotated[str, Path(min_length=1, max_length=100)]

# ---- the condition builder ------------------------------------------------------------------

OPERATORS: dict[str, tuple[str, ...]] = {
    "text": (
        "eq",
        "ne",
        "contains",
        "not_contains",
        "starts_with",
        "in",
        "not_in",
        "empty",
        "not_empty",
    ),
    "number": ("eq", "ne", "gt", "ge", "lt", "le", "between", "empty", "not_empty"),
    "date": (
        "eq",
        "gt",
        "ge",
        "lt",
        "le",
        "between",
        "within_last",
        "within_next",
        "older_than",
        "empty",
        "not_empty",
    ),
    "datetime": (
        "gt",
        "ge",
        "lt",
        "le",
        "between",
        "within_last",
        "within_next",
        "older_than",
        "empty",
        "not_empty",
    ),
    "bool": ("eq", "empty", "not_empty"),
    "choice": ("eq", "ne", "in", "not_in", "empty", "not_empty"),
    "link": ("eq", "ne", "in", "not_in", "empty", "not_empty"),
    "list": ("contains", "not_contains", "empty", "not_empty"),
}
"""The operators the builder offers for each kind of field."""
NO_VALUE = frozenset({"empty", "not_empty"})
LIST_VALUE = frozenset({"in", "not_in"})
DURATION = frozenset({"within_last", "within_next", "older_than"})
TEXT_TYPES = frozenset({"string", "text", "email", "phone"})


def operator_labels(ui: Ui) -> dict[str, str]:
    """The operators' names in the reader's language (``<kind>:<op>`` where a kind of field
    names one differently: dates are after / before)."""
    _ = ui.gettext
    return {
        "eq": _("is"),
        "ne": _("is not"),
        "gt": _("greater than"),
        "ge": _("at least"),
        "lt": _("less than"),
        "le": _("at most"),
        "between": _("between"),
        "in": _("is one of"),
        "not_in": _("is none of"),
        "contains": _("contains"),
        "not_contains": _("does not contain"),
        "starts_with": _("starts with"),
        "empty": _("is empty"),
        "not_empty": _("is not empty"),
        "within_last": _("within the last"),
        "within_next": _("within the next"),
        "older_than": _("longer ago than"),
        **{
            f"{kind}:{op}": text
            for kind in ("date", "datetime")
            for op, text in (
                ("gt", _("after")),
                ("ge", _("on or after")),
                ("lt", _("before")),
                ("le", _("on or before")),
            )
        },
    }


@dataclass(frozen=True)
class FieldChoice:
    """A field the builder can filter on: its kind (which operators and value input fit)
    and, for choices, the allowed values."""

    name: str
    label: str
    kind: str
    values: tuple[str, ...] = ()
    spec: FieldSpec | None = None


def _kind(spec: FieldSpec) -> str:
    if spec.type in TEXT_TYPES:
        return "text"
    if spec.type in ("integer", "number"):
        return "number"
    if spec.type in ("date", "datetime"):
        return spec.type
    if spec.type == "boolean":
        return "bool"
    if spec.type == "enum" or spec.dictionary_ref is not None:
        return "choice"
    if spec.type == "link":
        return "link"
    return "list"


def filter_fields(otype: ObjectType, dictionaries: dict[str, list[str]]) -> list[FieldChoice]:
    """The fields of a type the builder offers: id, stage (staged types), then the fields in
    their order (no passwords or files)."""
    out = [FieldChoice("id", "id", "text")]
    if otype.has_stages:
        out.append(FieldChoice("stage", "stage", "choice", tuple(otype.all_stages)))
    for name, spec in otype.fields.items():
        if spec.write_only or spec.type == "file":
            continue
        kind = _kind(spec)
        values: tuple[str, ...] = ()
        if kind == "choice":
            ref = spec.dictionary_ref
            values = tuple(dictionaries.get(ref, ())) if ref else tuple(spec.values or ())
        out.append(FieldChoice(name, spec.label or name, kind, values, spec))
    return out


@dataclass
class Row:
    """One row of the builder as the form sent it."""

    field: str
    op: str
    value: str = ""
    value2: str = ""


@dataclass
class Condition:
    """The builder's state: search text, rows, how they combine, a typed expression."""

    q: str = ""
    rows: list[Row] = field(default_factory=list)
    join: str = "all"
    expr: str = ""
    sort: str = ""

    def query(self, **extra: Any) -> str:
        """The state as a query string (for links: pages, sorting, the board)."""
        pairs: list[tuple[str, Any]] = []
        if self.q:
            pairs.append(("q", self.q))
        for r in self.rows:
            pairs += [("f", r.field), ("op", r.op), ("v", r.value), ("v2", r.value2)]
        if self.rows:
            pairs.append(("join", self.join))
        if self.expr:
            pairs.append(("expr", self.expr))
        sort = extra.pop("sort", self.sort)
        if sort:
            pairs.append(("sort", sort))
        pairs += [(k, v) for k, v in extra.items() if v not in (None, "")]
        return urlencode(pairs)


def read_condition(values: Any) -> Condition:
    """The builder's state from query parameters or a form (a multi-dict)."""
    fields = values.getlist("f")
    ops = values.getlist("op")
    vs = values.getlist("v")
    v2s = values.getlist("v2")
    rows = []
    for i, name in enumerate(fields):
        if not name:
            continue
        rows.append(
            Row(
                str(name),
                str(ops[i]) if i < len(ops) else "eq",
                str(vs[i]) if i < len(vs) else "",
                str(v2s[i]) if i < len(v2s) else "",
            )
        )
    join = str(values.get("join") or "all")
    return Condition(
        q=str(values.get("q") or "").strip(),
        rows=rows,
        join=join if join in ("all", "any") else "all",
        expr=str(values.get("expr") or "").strip(),
        sort=str(values.get("sort") or "").strip(),
    )


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(text) from None
        return number


def _typed(ui: Ui, choice: FieldChoice, text: str, where: str) -> Any:
    """A value typed into the builder as the filter takes it (``=…`` stays an expression)."""
    text = text.strip()
    if text.startswith("="):
        return text
    if choice.kind == "number":
        try:
            return _number(text)
        except ValueError:
            raise Invalid(
                ui.gettext("%(where)s: %(value)r is not a number")
                % {"where": where, "value": text},
                field="where",
            ) from None
    if choice.kind == "bool":
        if text.lower() not in ("true", "false"):
            raise Invalid(
                ui.gettext("%(where)s: choose yes or no") % {"where": where}, field="where"
            )
        return text.lower() == "true"
    return text


def _rule(ui: Ui, row: Row, n: int, choices: dict[str, FieldChoice]) -> dict[str, Any]:
    where = ui.gettext("Condition %(n)d") % {"n": n}
    choice = choices.get(row.field)
    if choice is None:
        raise Invalid(
            ui.gettext("%(where)s: unknown field %(field)r") % {"where": where, "field": row.field},
            field="where",
        )
    if row.op not in OPERATORS[choice.kind]:
        raise Invalid(
            ui.gettext("%(where)s: the operator %(op)r does not fit the field %(field)r")
            % {"where": where, "op": row.op, "field": row.field},
            field="where",
        )
    rule: dict[str, Any] = {"field": row.field, "op": row.op}
    if row.op in NO_VALUE:
        return rule
    if row.op == "between":
        if not row.value.strip() or not row.value2.strip():
            raise Invalid(
                ui.gettext("%(where)s: give both ends of the range") % {"where": where},
                field="where",
            )
        rule["value"] = [
            _typed(ui, choice, row.value, where),
            _typed(ui, choice, row.value2, where),
        ]
        return rule
    if row.op in LIST_VALUE:
        items = [p for p in (s.strip() for s in row.value.split(",")) if p]
        if not items:
            raise Invalid(
                ui.gettext("%(where)s: give one or more values separated by commas")
                % {"where": where},
                field="where",
            )
        rule["value"] = [_typed(ui, choice, p, where) for p in items]
        return rule
    if not row.value.strip() and row.op not in ("eq", "ne"):
        raise Invalid(ui.gettext("%(where)s: give a value") % {"where": where}, field="where")
    if not row.value.strip():  # "is" / "is not" nothing: the empty checks
        return {"field": row.field, "op": "empty" if row.op == "eq" else "not_empty"}
    rule["value"] = (
        row.value.strip() if row.op in DURATION else _typed(ui, choice, row.value, where)
    )
    return rule


def build_filter(ui: Ui, cond: Condition, choices: list[FieldChoice]) -> Any:
    """The structured filter (``flowlane.model.segment``) the builder's state means, or
    ``None`` for everything. Search text looks in the id and the text fields."""
    by_name = {c.name: c for c in choices}
    parts: list[Any] = []
    if cond.q:
        texts = [c.name for c in choices if c.kind == "text" and c.name != "id"]
        found: list[Any] = [{"field": "id", "op": "eq", "value": cond.q}]
        found += [{"field": name, "op": "contains", "value": cond.q} for name in texts]
        parts.append(found[0] if len(found) == 1 else {"any": found})
    rules = [_rule(ui, row, i, by_name) for i, row in enumerate(cond.rows, start=1)]
    if rules:
        parts.append(rules[0] if len(rules) == 1 else {cond.join: rules})
    if cond.expr:
        parts.append(cond.expr)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"all": parts}


# ---- showing and reading values -------------------------------------------------------------


def _local(value: datetime, tz: tzinfo) -> datetime:
    return value.astimezone(tz) if value.tzinfo is not None else value


def form_value(spec: FieldSpec | None, value: Any, tz: tzinfo) -> str:
    """A stored value as an edit form's input shows it."""
    if value is None or (spec is not None and spec.write_only):
        return ""
    if isinstance(value, datetime):
        return _local(value, tz).strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def form_data(
    otype: ObjectType, form: Any, current: dict[str, Any] | None, tz: tzinfo
) -> tuple[dict[str, Any], dict[str, str]]:
    """The fields an edit form sent, as the services take them (text: the services coerce
    ISO dates, numbers, ``true``/``false``), and the raw texts to show again. For a change
    (``current`` given) only the fields whose text changed; empty text clears a field (a new
    object leaves it out: its default applies)."""
    data: dict[str, Any] = {}
    raw: dict[str, str] = {}
    for name, spec in otype.fields.items():
        if spec.type == "file" or f"field.{name}" not in form:
            continue
        text = str(form.get(f"field.{name}") or "")
        raw[name] = text
        if spec.write_only and not text:
            continue  # a password left empty stays as it is
        if current is not None and text == form_value(spec, current.get(name), tz):
            continue
        stripped = text.strip() if spec.type != "text" else text
        if not stripped:
            if current is not None:
                data[name] = None
            continue
        if spec.type == "list":
            data[name] = [p for p in (s.strip() for s in stripped.split(",")) if p]
        else:
            data[name] = stripped
    return data, raw


FIELD_PROBLEM = re.compile(r"field '([^']+)': (.*)")


def field_errors(exc: FlowlaneError, names: set[str]) -> tuple[dict[str, str], str | None]:
    """A service's refusal of a create / change as messages per field (those the form has)
    and a message for the rest (``None`` when every problem sits by its field)."""
    errors: dict[str, str] = {}
    cause = exc.__cause__
    problems = cause.fields.get("problems") if isinstance(cause, FlowlaneError) else None
    for text in problems or []:
        found = FIELD_PROBLEM.match(str(text))
        if found and found.group(1) in names:
            errors.setdefault(found.group(1), found.group(2))
    named = str(exc.fields.get("field") or "")
    for prefix in ("data.", "set."):
        named = named.removeprefix(prefix)
    if named in names and named not in errors:
        message = str(exc)
        found = FIELD_PROBLEM.search(message)
        errors[named] = found.group(2) if found and found.group(1) == named else message
    return errors, (None if errors else str(exc))


# ---- pages: types ---------------------------------------------------------------------------


def _can(acc: Account, by: str, action: str) -> bool:
    return permissions.can(acc, by, action)


@router.get("/objects")
async def object_types(ui: UiDep) -> HTMLResponse:
    """The object types with how many objects of each the person sees."""

    def work(acc: Account, by: str) -> list[tuple[ObjectType, int]]:
        return [
            (t, objects.list_objects(acc, t.key, limit=0, by=by).total)
            for t in objects.object_types(acc, by=by)
        ]

    found = await ui.call(work)
    return ui.render("ui/objects/index.html", title=ui.gettext("Objects"), types=found)


# ---- pages: lists ---------------------------------------------------------------------------


@dataclass
class ListView:
    otype: ObjectType
    choices: list[FieldChoice]
    columns: list[str]
    items: list[ObjectRecord]
    total: int
    page: int
    error: str | None
    processes: list[Any]
    can_create: bool
    where: Any = None


async def _list_view(ui: Ui, type_key: str, cond: Condition, page: int) -> ListView:
    def work(acc: Account, by: str) -> ListView:
        otype = objects.object_type(acc, type_key, by=by)
        choices = filter_fields(otype, objects.dictionaries(acc, by=by))
        columns = objects.card_fields(otype)
        processes = massstart.startable(acc, type_key, by=by)
        manage = "manage_users" if type_key == "user" else "work_with_objects"
        view = ListView(
            otype, choices, columns, [], 0, page, None, processes, _can(acc, by, manage)
        )
        try:
            view.where = build_filter(ui, cond, choices)
            found = objects.list_objects(
                acc,
                type_key,
                view.where,
                sort=cond.sort or None,
                offset=(page - 1) * PAGE_SIZE,
                limit=PAGE_SIZE,
                by=by,
            )
        except Invalid as exc:
            view.error = str(exc)
            return view
        view.items, view.total = found.items, found.total
        return view

    return await ui.call(work)


@router.get("/objects/{type_key}")
async def object_list(
    ui: UiDep, type_key: TypeKey, page: Annotated[int, Query(ge=1, le=100_000)] = 1
) -> HTMLResponse:
    """A type's objects: search, the condition builder, a page of the list, mass start."""
    cond = read_condition(ui.request.query_params)
    view = await _list_view(ui, type_key, cond, page)
    context = _list_context(ui, view, cond)
    if ui.htmx and ui.request.headers.get("HX-Target") == "results":
        return ui.render("ui/objects/_results.html", **context)
    return ui.render("ui/objects/list.html", title=view.otype.label, **context)


def _list_context(ui: Ui, view: ListView, cond: Condition) -> dict[str, Any]:
    return {
        "view": view,
        "otype": view.otype,
        "cond": cond,
        "choices": view.choices,
        "ops": OPERATORS,
        "op_labels": operator_labels(ui),
        "pages": max(1, math.ceil(view.total / PAGE_SIZE)),
        "specs": view.otype.fields,
        "action": f"/objects/{view.otype.key}",
        "target": "results",
    }


@router.get("/objects/{type_key}/condition-row")
async def condition_row(ui: UiDep, type_key: TypeKey) -> HTMLResponse:
    """One row of the builder (a new one, or the one whose field or operator changed: the
    operators and value inputs fit the field)."""
    params = ui.request.query_params

    def work(acc: Account, by: str) -> list[FieldChoice]:
        otype = objects.object_type(acc, type_key, by=by)
        return filter_fields(otype, objects.dictionaries(acc, by=by))

    choices = await ui.call(work)
    by_name = {c.name: c for c in choices}
    name = str(params.get("f") or "")
    choice = by_name.get(name) or choices[min(1, len(choices) - 1)]
    op = str(params.get("op") or "")
    if op not in OPERATORS[choice.kind] or params.get("changed") == "f":
        op = OPERATORS[choice.kind][0]
    keep = params.get("changed") != "f"
    row = Row(
        choice.name,
        op,
        str(params.get("v") or "") if keep else "",
        str(params.get("v2") or "") if keep else "",
    )
    return ui.render(
        "ui/objects/_row.html",
        row=row,
        choices=choices,
        ops=OPERATORS,
        op_labels=operator_labels(ui),
        otype_key=type_key,
    )


# ---- mass start -----------------------------------------------------------------------------


def _batch_size(total: int) -> int:
    """Objects per batch: about 20 steps of progress, 25 to 500 objects a step."""
    return max(25, min(massstart.MAX_BATCH, math.ceil(total / 20)))


def _given_size(given: Any, total: int) -> int:
    """The batch size the form asks for (ASCII digits, 1 to the services' largest), else the
    usual one for ``total`` objects."""
    text = given.strip() if isinstance(given, str) else ""
    if not text:
        return _batch_size(total)
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= massstart.MAX_BATCH:
        raise Invalid(f"size: a batch takes 1 to {massstart.MAX_BATCH} objects", field="size")
    return int(text)


@router.post("/objects/{type_key}/mass-start")
async def mass_start(ui: UiDep, type_key: TypeKey) -> HTMLResponse:
    """Count the objects the condition matches and start the first batch (the progress
    fragment asks for the next batch itself)."""
    form = await ui.request.form()
    cond = read_condition(form)
    process = str(form.get("process") or "")
    if not process:
        raise Invalid(ui.gettext("Choose a process to start."), field="process")

    def work(acc: Account, by: str) -> tuple[Any, int]:
        otype = objects.object_type(acc, type_key, by=by)
        where = build_filter(ui, cond, filter_fields(otype, objects.dictionaries(acc, by=by)))
        return where, massstart.count(acc, process, where, by=by)

    where, total = await ui.call(work)
    size = _given_size(form.get("size"), total)
    state = {
        "process": process,
        "where": "" if where is None else json.dumps(where),
        "after": "",
        "handled": 0,
        "started": 0,
        "total": total,
        "size": size,
    }
    return ui.render(
        "ui/objects/_progress.html", state=state, more=total > 0, done=total == 0, type_key=type_key
    )


@router.post("/objects/{type_key}/mass-start/batch")
async def mass_start_batch(
    ui: UiDep,
    type_key: TypeKey,
    process: Annotated[str, Form(min_length=1, max_length=200)],
    total: Annotated[int, Form(ge=0)],
    size: Annotated[int, Form(ge=1, le=massstart.MAX_BATCH)],
    where: Annotated[str, Form(max_length=20_000)] = "",
    after: Annotated[str, Form(max_length=100)] = "",
    handled: Annotated[int, Form(ge=0)] = 0,
    started: Annotated[int, Form(ge=0)] = 0,
) -> HTMLResponse:
    """Start the next batch; the fragment shows the progress and asks for the next one while
    matching objects remain."""
    try:
        condition = json.loads(where) if where else None
    except (ValueError, RecursionError):
        raise Invalid("where: not a filter", field="where") from None
    state: dict[str, Any] = {
        "process": process,
        "where": where,
        "after": after,
        "handled": handled,
        "started": started,
        "total": total,
        "size": size,
    }
    try:
        done = await ui.call(
            lambda acc, by: massstart.batch(
                acc, process, condition, after=after or None, size=size, by=by
            )
        )
    except FlowlaneError as exc:
        if not started and not handled:
            raise
        return ui.render(
            "ui/objects/_progress.html",
            state=state,
            more=False,
            done=True,
            error=str(exc),
            type_key=type_key,
        )
    state.update(
        after=done.last or "",
        handled=handled + done.handled,
        started=started + len(done.started),
        total=max(total, handled + done.handled),
    )
    return ui.render(
        "ui/objects/_progress.html",
        state=state,
        more=done.more,
        done=not done.more,
        type_key=type_key,
    )


# ---- the card -------------------------------------------------------------------------------


def _edit_fields(otype: ObjectType) -> list[FieldSpec]:
    return [s for s in otype.fields.values() if s.type != "file"]


async def _card_context(
    ui: Ui, type_key: str, object_id: str | None, *, redirect: bool = False
) -> dict[str, Any]:
    """What the card shows; an object of another type is sent to its own card (``redirect``)
    or does not exist under this type."""

    def work(acc: Account, by: str) -> dict[str, Any]:
        otype = objects.object_type(acc, type_key, by=by)
        manage = "manage_users" if type_key == "user" else "work_with_objects"
        out: dict[str, Any] = {
            "otype": otype,
            "dictionaries": objects.dictionaries(acc, by=by),
            "can_edit": _can(acc, by, manage) or (type_key == "user" and object_id == by),
            "can_move": _can(acc, by, "work_with_objects"),
            "card": None,
        }
        if object_id is not None:
            out["card"] = objects.card(acc, object_id, by=by)
        return out

    context = await ui.call(work)
    card = context["card"]
    if card is not None and card.record.type != type_key:
        if redirect:
            raise _WrongType(card.record.type, card.record.id)
        raise NotFound(f"{type_key} {object_id!r} does not exist", type=type_key)
    return context


class _WrongType(Exception):
    def __init__(self, type_key: str, object_id: str) -> None:
        super().__init__(object_id)
        self.url = f"/objects/{type_key}/{object_id}"


def _render_card(
    ui: Ui,
    context: dict[str, Any],
    *,
    status: int = 200,
    raw: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    new_id: str = "",
) -> HTMLResponse:
    otype: ObjectType = context["otype"]
    card = context["card"]
    data = card.record.data if card is not None else {}
    tz = ui.container.store.tz
    values = {
        s.name: (raw or {}).get(s.name, form_value(s, data.get(s.name), tz))
        for s in _edit_fields(otype)
    }
    if card is None and raw is None:
        values = {
            s.name: form_value(s, s.default, tz) if not isinstance(s.default, str) else s.default
            for s in _edit_fields(otype)
        }
        values = {k: ("" if v is None else v) for k, v in values.items()}
    shown = objects.shown_data(otype, data)
    title = (
        str(shown.get("name") or shown.get("title") or shown.get("number") or card.record.id)
        if card is not None
        else ui.gettext("New %(type)s") % {"type": otype.label}
    )
    return ui.render(
        "ui/objects/card.html",
        status=status,
        title=title,
        heading=title,
        fields=_edit_fields(otype),
        values=values,
        errors=errors or {},
        error=error,
        message=_message(ui, ui.request.query_params.get("done")),
        new_id=new_id,
        **context,
    )


def _message(ui: Ui, code: str | None) -> str | None:
    return {
        "created": ui.gettext("Created."),
        "saved": ui.gettext("Saved."),
        "moved": ui.gettext("Moved."),
    }.get(code or "")


@router.get("/objects/{type_key}/new")
async def new_object(ui: UiDep, type_key: TypeKey) -> HTMLResponse:
    """The form of a new object."""
    return _render_card(ui, await _card_context(ui, type_key, None))


@router.post("/objects/{type_key}/new")
async def create_object(ui: UiDep, type_key: TypeKey) -> Response:
    """Create the object (errors by their fields); to its card."""
    form = await ui.request.form()
    context = await _card_context(ui, type_key, None)
    otype: ObjectType = context["otype"]
    data, raw = form_data(otype, form, None, ui.container.store.tz)
    new_id = str(form.get("id") or "").strip() or None
    try:
        rec = await ui.call(
            lambda acc, by: objects.create_object(acc, type_key, data, object_id=new_id, by=by)
        )
    except FlowlaneError as exc:
        errors, rest = field_errors(exc, set(otype.fields) | {"id"})
        return _render_card(
            ui,
            context,
            status=status_of(exc),
            raw=raw,
            errors=errors,
            error=rest,
            new_id=new_id or "",
        )
    return RedirectResponse(f"/objects/{type_key}/{rec.id}?done=created", status_code=303)


@router.get("/objects/{type_key}/{object_id}")
async def object_card(ui: UiDep, type_key: TypeKey, object_id: ObjectId) -> Response:
    """The card: fields (an edit form), stage, tasks, process instances, history."""
    try:
        context = await _card_context(ui, type_key, object_id, redirect=True)
    except _WrongType as wrong:
        return RedirectResponse(wrong.url, status_code=303)
    return _render_card(ui, context)


@router.post("/objects/{type_key}/{object_id}")
async def update_object(ui: UiDep, type_key: TypeKey, object_id: ObjectId) -> Response:
    """Save the changed fields (errors by their fields)."""
    form = await ui.request.form()
    context = await _card_context(ui, type_key, object_id)
    otype: ObjectType = context["otype"]
    card = context["card"]
    data, raw = form_data(otype, form, card.record.data, ui.container.store.tz)
    if data:
        try:
            await ui.call(lambda acc, by: objects.update_object(acc, object_id, data, by=by))
        except FlowlaneError as exc:
            errors, rest = field_errors(exc, set(otype.fields))
            return _render_card(
                ui, context, status=status_of(exc), raw=raw, errors=errors, error=rest
            )
    return RedirectResponse(f"/objects/{type_key}/{object_id}?done=saved", status_code=303)


@router.post("/objects/{type_key}/{object_id}/stage")
async def move_object(
    ui: UiDep,
    type_key: TypeKey,
    object_id: ObjectId,
    to: Annotated[str, Form(min_length=1, max_length=200)],
) -> Response:
    """Move the object to a stage; a refused or sent-back move shows its reason on the card."""
    try:
        result: MoveResult = await ui.call(
            lambda acc, by: objects.move_stage(acc, object_id, to, by=by)
        )
    except FlowlaneError as exc:
        context = await _card_context(ui, type_key, object_id)
        return _render_card(ui, context, status=status_of(exc), error=str(exc))
    if not result.moved:
        context = await _card_context(ui, type_key, object_id)
        reason = result.message or ui.gettext("The move was sent back.")
        return _render_card(ui, context, status=409, error=reason)
    return RedirectResponse(f"/objects/{type_key}/{object_id}?done=moved", status_code=303)


# ---- kanban ---------------------------------------------------------------------------------


async def _board(ui: Ui, type_key: str, cond: Condition) -> dict[str, Any]:
    def work(acc: Account, by: str) -> dict[str, Any]:
        otype = objects.object_type(acc, type_key, by=by)
        choices = filter_fields(otype, objects.dictionaries(acc, by=by))
        out: dict[str, Any] = {
            "otype": otype,
            "choices": choices,
            "card_fields": objects.card_fields(otype),
            "columns": [],
            "filter_error": None,
            "can_move": _can(acc, by, "work_with_objects"),
        }
        try:
            where = build_filter(ui, cond, choices)
            out["columns"] = objects.kanban(acc, type_key, where, per_column=PER_COLUMN, by=by)
        except Invalid as exc:
            out["filter_error"] = str(exc)
            out["columns"] = objects.kanban(acc, type_key, None, per_column=PER_COLUMN, by=by)
        return out

    board = await ui.call(work)
    board.update(
        cond=cond,
        ops=OPERATORS,
        op_labels=operator_labels(ui),
        specs=board["otype"].fields,
        action=f"/kanban/{type_key}",
        target="board-form",
        per_column=PER_COLUMN,
    )
    return board


@router.get("/kanban/{type_key}")
async def kanban(ui: UiDep, type_key: TypeKey) -> HTMLResponse:
    """The board of a type with stages: a column per stage, cards draggable between them."""
    cond = read_condition(ui.request.query_params)
    board = await _board(ui, type_key, cond)
    if ui.htmx and ui.request.headers.get("HX-Target") == "board-form":
        return ui.render("ui/objects/_board.html", **board)
    title = ui.gettext("Board: %(type)s") % {"type": board["otype"].label}
    return ui.render("ui/objects/kanban.html", title=title, **board)


def moved_card(order: list[str]) -> tuple[str, str] | None:
    """The card the board's form says moved: the ``order`` inputs are, in page order, a
    ``stage:<stage>`` marker per column followed by ``<id>@<stage shown>`` per card; the
    card now under another column than the one it was shown in moved there."""
    column: str | None = None
    for item in order:
        if item.startswith("stage:"):
            column = item[len("stage:") :]
            continue
        object_id, _, shown = item.rpartition("@")
        if column is not None and object_id and shown != column:
            return object_id, column
    return None


@router.post("/kanban/{type_key}/move")
async def kanban_move(ui: UiDep, type_key: TypeKey) -> HTMLResponse:
    """A card was dropped: move its object; the board comes back from the server (a refused
    move snaps back and says why)."""
    form = await ui.request.form()
    cond = read_condition(form)
    found = moved_card([str(v) for v in form.getlist("order")])
    notice: str | None = None
    problem: str | None = None
    if found is not None:
        object_id, to = found
        try:
            result: MoveResult = await ui.call(
                lambda acc, by: objects.move_stage(acc, object_id, to, by=by)
            )
        except FlowlaneError as exc:
            problem = str(exc)
        else:
            if result.moved:
                notice = ui.gettext("%(id)s moved to %(stage)s") % {
                    "id": object_id,
                    "stage": result.stage,
                }
            else:
                problem = result.message or ui.gettext("The move was sent back.")
    board = await _board(ui, type_key, cond)
    return ui.render("ui/objects/_board.html", notice=notice, problem=problem, **board)


@router.get("/kanban/{type_key}/column/{stage}")
async def kanban_more(
    ui: UiDep,
    type_key: TypeKey,
    stage: Annotated[str, Path(min_length=1, max_length=200)],
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HTMLResponse:
    """More cards of one column (appended to it)."""
    cond = read_condition(ui.request.query_params)

    def work(acc: Account, by: str) -> dict[str, Any]:
        otype = objects.object_type(acc, type_key, by=by)
        where = build_filter(ui, cond, filter_fields(otype, objects.dictionaries(acc, by=by)))
        found = objects.kanban_column(
            acc, type_key, stage, where, offset=offset, limit=PER_COLUMN, by=by
        )
        return {
            "otype": otype,
            "cards": found.items,
            "count": found.total,
            "card_fields": objects.card_fields(otype),
        }

    page = await ui.call(work)
    return ui.render(
        "ui/objects/_more.html",
        stage=stage,
        offset=offset + len(page["cards"]),
        cond=cond,
        specs=page["otype"].fields,
        **page,
    )


# ---- dictionaries ---------------------------------------------------------------------------


async def _dictionaries_page(
    ui: Ui, status: int = 200, error: str | None = None, added: str | None = None
) -> HTMLResponse:
    def work(acc: Account, by: str) -> tuple[dict[str, list[str]], bool]:
        return objects.dictionaries(acc, by=by), _can(acc, by, "manage_types")

    found, can_add = await ui.call(work)
    return ui.render(
        "ui/objects/dictionaries.html",
        status=status,
        title=ui.gettext("Dictionaries"),
        dictionaries=found,
        can_add=can_add,
        error=error,
        added=added,
    )


@router.get("/dictionaries")
async def dictionaries(ui: UiDep) -> HTMLResponse:
    """Every dictionary with its values."""
    return await _dictionaries_page(ui, added=ui.request.query_params.get("added"))


@router.post("/dictionaries/{key}/values")
async def add_dictionary_value(
    ui: UiDep,
    key: Annotated[str, Path(min_length=1, max_length=200)],
    value: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Add a value to a dictionary (those who manage types)."""
    text = value.strip()
    try:
        if not text:
            raise Invalid(ui.gettext("value: give the value to add"), field="value")
        await ui.call(lambda acc, by: objects.add_dictionary_value(acc, key, text, by=by))
    except FlowlaneError as exc:
        return await _dictionaries_page(ui, status=status_of(exc), error=f"{key}: {exc}")
    return RedirectResponse(
        "/dictionaries?" + urlencode({"added": f"{key}: {text}"}), status_code=303
    )
