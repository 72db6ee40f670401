"""UI pages of the daily work on tasks: the inbox, a task's page, the task board, the cabinet.

* ``/inbox`` — the person's inbox as :func:`flowlane.services.tasklists.inbox` orders it
  (overdue first, then priority and reaction time), paged, with claim / give back per row.
* ``/tasks/{id}`` — one task: what to do, its object and process, the answer (options and
  typed fields) or the workflow's status changes this person may make now
  (:func:`flowlane.services.taskview.transitions_for`), comments with files, history and
  the process's variables. Every action swaps the ``#task`` part (htmx) or, for a plain
  form, redirects back to the page; refusals go to ``#flash``.
* ``/tasks/board`` — the person's tasks (or a process's, for those who oversee it) in
  columns by status; dragging a workflow task to another column changes its status.
* ``/cabinet`` — the tasks on the person's own client profile
  (:func:`flowlane.services.tasklists.client_tasks`), for clients and staff alike.

Every rule is the services'; this module only shows what they return and passes the
person's input on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from starlette.datastructures import FormData, UploadFile

from flowlane.core.errors import FlowlaneError, Forbidden, Refused
from flowlane.engine.context import ObjectRecord
from flowlane.services import permissions, taskview
from flowlane.services.account import Account
from flowlane.services.instances import _SECRET_NAME, HIDDEN
from flowlane.services.taskview import TaskView, Transition
from flowlane.store.records import TaskRecord
from flowlane.web.ui.common import Ui, UiDep

router = APIRouter(include_in_schema=False)

PAGE_SIZES = (20, 50, 100)
BOARD_LIMIT = 500
"""The most tasks a board shows (the services' largest page)."""
FIELD_PREFIX = "f."
VAR_PREFIX = "v."


# ---- what the pages show of tasks ----------------------------------------------------------


@dataclass
class Row:
    """A task as lists show it, with the names of what it points to."""

    task: TaskRecord
    object: ObjectRecord | None
    process_name: str
    assignee_name: str | None
    overdue: bool


def _label(obj: ObjectRecord | None, fallback: str | None = None) -> str:
    if obj is None:
        return fallback or ""
    data = obj.data
    for key in ("name", "title", "number", "email"):
        value = data.get(key)
        if value:
            return str(value)
    return obj.id


def _process_name(acc: Account, key: str, cache: dict[str, str]) -> str:
    if key not in cache:
        d = acc.store.definition(key)
        cache[key] = d.spec.name if d is not None and d.spec.name else key
    return cache[key]


def _overdue(acc: Account, task: TaskRecord) -> bool:
    due = task.due_at
    return not task.closed and due is not None and due < acc.now


def _rows(acc: Account, tasks: Iterable[TaskRecord]) -> list[Row]:
    objects: dict[str, ObjectRecord | None] = {}
    names: dict[str, str] = {}

    def obj(oid: str | None) -> ObjectRecord | None:
        if oid is None:
            return None
        if oid not in objects:
            objects[oid] = acc.store.get_object(oid)
        return objects[oid]

    out = []
    for t in tasks:
        assignee = obj(t.assignee)
        out.append(
            Row(
                task=t,
                object=obj(t.object_id),
                process_name=_process_name(acc, t.process, names),
                assignee_name=_label(assignee, t.assignee) if t.assignee else None,
                overdue=_overdue(acc, t),
            )
        )
    return out


# ---- typed inputs ----------------------------------------------------------------------------


@dataclass
class Input:
    """One input of a form built from a field spec (a task's field or a process variable)."""

    name: str
    """The form name (prefixed)."""
    key: str
    label: str
    type: str
    widget: str
    """text, textarea, number, select, checkbox-like select (boolean), date, datetime-local,
    email, tel, lines (a list, one item a line)."""
    required: bool
    value: str
    choices: list[str] = field(default_factory=list)
    step: str | None = None
    error: str | None = None


WIDGETS = {
    "string": "text",
    "text": "textarea",
    "integer": "number",
    "number": "number",
    "boolean": "boolean",
    "date": "date",
    "datetime": "datetime-local",
    "email": "email",
    "phone": "tel",
    "enum": "select",
    "list": "lines",
    "password": "password",
}


def _shown(value: Any, tz: tzinfo) -> str:
    """A value as an input holds it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        moment = value.astimezone(tz) if value.tzinfo is not None else value
        return moment.strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return "\n".join(_shown(v, tz) for v in value)
    return str(value)


def _inputs(
    acc: Account,
    specs: dict[str, Any],
    prefix: str,
    values: dict[str, Any],
    raw: dict[str, str],
    errors: dict[str, str],
) -> list[Input]:
    out = []
    for key, spec in specs.items():
        kind = str(spec.get("type", "string"))
        widget = WIDGETS.get(kind, "text")
        choices: list[str] = []
        if kind == "enum":
            if spec.get("values"):
                choices = [str(v) for v in spec["values"]]
            elif spec.get("dictionary"):
                choices = list(acc.store.schema.dictionaries.get(str(spec["dictionary"]), []))
        if kind == "link" and str(spec.get("to", "")).startswith("dictionary:"):
            widget = "select"
            choices = list(acc.store.schema.dictionaries.get(str(spec["to"])[11:], []))
        if kind == "list" and isinstance(spec.get("of"), dict):
            of = spec["of"]
            if of.get("type") == "enum" and of.get("values"):
                choices = [str(v) for v in of["values"]]
        value = raw[key] if key in raw else _shown(values.get(key), acc.store.tz)
        out.append(
            Input(
                name=prefix + key,
                key=key,
                label=str(spec.get("label") or key),
                type=kind,
                widget=widget,
                required=bool(spec.get("required")),
                value=value if spec.get("type") != "password" else "",
                choices=choices,
                step="1" if kind == "integer" else ("any" if kind == "number" else None),
                error=errors.get(key),
            )
        )
    return out


def _read_inputs(
    form: FormData, prefix: str, specs: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The values given for ``specs`` (empty ones left out) and the raw text of each."""
    values: dict[str, Any] = {}
    raw: dict[str, str] = {}
    for key, spec in specs.items():
        got = form.get(prefix + key)
        text = got if isinstance(got, str) else ""
        raw[key] = text
        if not text.strip():
            continue
        if spec.get("type") == "list":
            values[key] = [line.strip() for line in text.splitlines() if line.strip()]
        else:
            values[key] = text.strip() if spec.get("type") != "text" else text
    return values, raw


def _secret(name: str, spec: Any) -> bool:
    """A variable never shown (as :mod:`flowlane.services.instances` masks them): of type
    password, or named like a secret, token or API key."""
    typed = isinstance(spec, dict) and spec.get("type") == "password"
    return typed or bool(_SECRET_NAME.search(name))


def _masked_history(history: list[dict[str, Any]], secret: set[str]) -> list[dict[str, Any]]:
    """The task's history with the values of secret variables masked."""
    out = []
    for h in history:
        values = h.get("values")
        if h.get("what") == "variables" and isinstance(values, dict):
            hidden = {
                k: HIDDEN if _secret(k, None) or k in secret else v for k, v in values.items()
            }
            h = {**h, "values": hidden}
        out.append(h)
    return out


def _error_field(exc: FlowlaneError) -> str | None:
    """The input a refusal names (the service's ``field``, or that of the value error it
    was made from)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, FlowlaneError):
            named = seen.fields.get("field")
            if isinstance(named, str):
                return named
        seen = seen.__cause__
    return None


# ---- the task page's data --------------------------------------------------------------------


@dataclass
class TaskPage:
    view: TaskView
    row: Row
    history: list[dict[str, Any]]
    variables: dict[str, dict[str, Any]]
    variables_editable: bool
    names: dict[str, str]
    attachments: dict[str, dict[str, Any]]
    others: list[Row]
    statuses: list[str]
    loose: list[dict[str, Any]]
    """Files attached to the task itself, not to a comment."""

    @property
    def task(self) -> TaskRecord:
        return self.view.task


def _task_page(acc: Account, task_id: str, by: str, is_client: bool) -> TaskPage:
    view = taskview.task_view(acc, task_id, by=by)
    task = view.task
    history = taskview.history(acc, task_id, by=by)
    try:
        variables = taskview.variables(acc, task_id, by=by)
    except Forbidden:
        raise
    except Refused:
        variables = {}  # a task whose instance is gone has none
    editable = bool(variables) and not task.closed and permissions.can(acc, by, "work_with_tasks")
    secret = {k for k, v in variables.items() if _secret(k, v["field"])}
    history = _masked_history(history, secret)
    people: set[Any] = {task.assignee, (task.answer or {}).get("by")}
    people |= {h.get("by") for h in history} | {h.get("to") for h in history}
    people |= {c.get("by") for c in task.comments} | {a.get("by") for a in task.attachments}
    in_comments = {str(a) for c in task.comments for a in c.get("attachments") or []}
    names = {}
    for uid in people:
        if isinstance(uid, str):
            names[uid] = _label(acc.store.get_object(uid), uid)
    others: list[Row] = []
    if task.object_id is not None and not is_client:
        found = [t for t in acc.object_tasks(task.object_id, by=by) if t.id != task.id]
        others = _rows(acc, [t for t in found if not t.closed])
    statuses = [str(s) for s in (task.workflow or {}).get("statuses", [])]
    return TaskPage(
        view=view,
        row=_rows(acc, [task])[0],
        history=history,
        variables=variables,
        variables_editable=editable,
        names=names,
        attachments={str(m["id"]): m for m in task.attachments},
        others=others,
        statuses=statuses,
        loose=[a for a in task.attachments if str(a["id"]) not in in_comments],
    )


def _transition_map(transitions: list[Transition]) -> dict[str, bool]:
    return {t.to: t.comment_required for t in transitions}


async def _render_task(
    ui: Ui,
    task_id: str,
    *,
    full: bool,
    errors: dict[str, str] | None = None,
    raw: dict[str, str] | None = None,
    var_raw: dict[str, str] | None = None,
    comment: str = "",
    status: int = 200,
) -> Response:
    is_client = ui.is_client
    errors = errors or {}

    def work(acc: Account, by: str) -> tuple[TaskPage, list[Input], list[Input]]:
        page = _task_page(acc, task_id, by, is_client)
        fields = _inputs(acc, page.task.fields, FIELD_PREFIX, {}, raw or {}, errors or {})
        variables = _inputs(
            acc,
            {k: v["field"] for k, v in page.variables.items()},
            VAR_PREFIX,
            {k: v["value"] for k, v in page.variables.items()},
            var_raw or {},
            {},
        )
        for given in variables:
            if not _secret(given.key, page.variables[given.key]["field"]):
                continue
            # never sent to the browser: an empty input keeps the value (set_variables)
            if page.variables_editable:
                given.widget, given.value = "password", ""
            else:
                given.value = HIDDEN
        return page, fields, variables

    page, fields, variables = await ui.call(work)
    task = page.task
    template = "ui/work/task.html" if full else "ui/work/_task.html"
    return ui.render(
        template,
        status=status,
        title=task.title,
        page=page,
        t=task,
        fields=fields,
        variables=variables,
        errors=errors,
        comment=comment,
        back="/cabinet" if ui.is_client else "/inbox",
    )


async def _after_action(ui: Ui, task_id: str, message: str | None = None) -> Response:
    """The page after an action: the ``#task`` part for htmx, else back to the page."""
    if not ui.htmx:
        return RedirectResponse(f"/tasks/{quote(task_id)}", status_code=303)
    try:
        out = await _render_task(ui, task_id, full=False)
    except Forbidden:
        # they acted and may no longer see the task (they gave it away)
        return Response(
            status_code=200, headers={"HX-Redirect": "/cabinet" if ui.is_client else "/inbox"}
        )
    return _with_flash(out, message, "ok") if message else out


def _with_flash(out: Response, message: str, kind: str) -> HTMLResponse:
    """The response with a message added out of band to the page's ``#flash`` area."""
    note = Markup(
        '<div hx-swap-oob="beforeend:#flash"><div class="flash {}" role="{}">{}</div></div>'
    ).format(kind, "alert" if kind == "error" else "status", message)
    body = bytes(out.body).decode() + str(note)
    return HTMLResponse(body, status_code=out.status_code, headers={"Cache-Control": "no-store"})


# ---- the inbox -------------------------------------------------------------------------------


def _page_links(base: str, page: int, size: int, total: int, **params: str) -> dict[str, Any]:
    last = max(1, (total + size - 1) // size)

    def url(p: int) -> str:
        return f"{base}?{urlencode({**params, 'page': p, 'size': size})}"

    return {
        "page": page,
        "size": size,
        "total": total,
        "first": (page - 1) * size + 1 if total else 0,
        "last_item": min(page * size, total),
        "pages": last,
        "prev": url(page - 1) if page > 1 else None,
        "next": url(page + 1) if page < last else None,
        "sizes": [(s, f"{base}?{urlencode({**params, 'page': 1, 'size': s})}") for s in PAGE_SIZES],
    }


@router.get("/inbox")
async def inbox(
    ui: UiDep,
    page: Annotated[int, Query()] = 1,
    size: Annotated[int, Query()] = 50,
) -> Response:
    """The person's inbox: overdue first, then by priority and reaction time (staff; a
    client is sent to the cabinet)."""
    if ui.is_client:
        return RedirectResponse("/cabinet", status_code=303)

    def work(acc: Account, by: str) -> tuple[int, list[Row]]:
        found = acc.inbox(by, page=page, size=size, by=by)
        return found.total, _rows(acc, found.tasks)

    total, rows = await ui.call(work)
    return ui.render(
        "ui/work/inbox.html",
        title=ui.gettext("Inbox"),
        rows=rows,
        paging=_page_links("/inbox", page, size, total),
    )


async def _claim_response(ui: Ui, task_id: str, take: bool) -> Response:
    form = await ui.request.form()

    def work(acc: Account, by: str) -> Row:
        if take:
            view = taskview.claim(acc, task_id, by=by)
        else:
            view = taskview.unclaim(acc, task_id, by=by)
        return _rows(acc, [view.task])[0]

    row = await ui.call(work)
    if form.get("view") == "row" and ui.htmx:
        return ui.render("ui/work/_inbox_row.html", r=row)
    done = ui.gettext("The task is yours.") if take else ui.gettext("The task is given back.")
    return await _after_action(ui, task_id, done)


@router.post("/tasks/{task_id}/claim")
async def claim(task_id: str, ui: UiDep) -> Response:
    """Take the task (it must be nobody's, or yours already)."""
    return await _claim_response(ui, task_id, take=True)


@router.post("/tasks/{task_id}/unclaim")
async def unclaim(task_id: str, ui: UiDep) -> Response:
    """Give the task back: it is nobody's again."""
    return await _claim_response(ui, task_id, take=False)


# ---- the task board --------------------------------------------------------------------------


@dataclass
class Column:
    status: str
    rows: list[Row]


def _columns(rows: list[Row]) -> list[Column]:
    """Columns in the order of the tasks' workflows (then other statuses as met)."""
    order: list[str] = []
    for r in rows:
        for s in (r.task.workflow or {}).get("statuses", []):
            if str(s) not in order:
                order.append(str(s))
    for r in rows:
        if r.task.status not in order:
            order.append(r.task.status)
    return [Column(s, [r for r in rows if r.task.status == s]) for s in order]


@dataclass
class Board:
    columns: list[Column]
    moves: dict[str, dict[str, bool]]
    total: int
    processes: list[tuple[str, str]]


def _board(acc: Account, by: str, process: str | None, closed: bool) -> Board:
    if process:
        found = acc.process_tasks(
            process, open_only=not closed, sort="created_at", page=1, size=BOARD_LIMIT, by=by
        )
    else:
        found = acc.inbox(by, page=1, size=BOARD_LIMIT, by=by)
    rows = _rows(acc, found.tasks)
    moves = {
        r.task.id: _transition_map(taskview.transitions_for(acc, r.task, by))
        for r in rows
        if r.task.workflow is not None
    }
    processes = [(p.key, p.name) for p in acc.list_processes()]
    return Board(_columns(rows), moves, found.total, processes)


async def _render_board(
    ui: Ui,
    process: str | None,
    closed: bool,
    *,
    full: bool,
    flash: str | None = None,
    kind: str = "error",
) -> HTMLResponse:
    board = await ui.call(lambda acc, by: _board(acc, by, process, closed))
    out = ui.render(
        "ui/work/board.html" if full else "ui/work/_board.html",
        title=ui.gettext("Task board"),
        board=board,
        process=process or "",
        closed=closed,
    )
    return _with_flash(out, flash, kind) if flash else out


@router.get("/tasks/board")
async def board(
    ui: UiDep,
    process: Annotated[str | None, Query(max_length=200)] = None,
    closed: bool = False,
) -> Response:
    """Your inbox's tasks by status; with ``process``, that process's tasks (for those who
    oversee it), ``closed`` ones too if asked. Clients have the cabinet instead."""
    if ui.is_client:
        return RedirectResponse("/cabinet", status_code=303)
    return await _render_board(ui, process or None, closed, full=True)


@router.post("/tasks/board")
async def board_move(ui: UiDep) -> Response:
    """A card dropped in another column: the task's status changes (the workflow's rules);
    refused, the board is drawn as it is (the card goes back) with the reason."""
    form = await ui.request.form()
    process = str(form.get("process") or "") or None
    closed = form.get("closed") == "1"
    comment = str(form.get("comment") or "") or None
    placed: dict[str, str] = {}
    shown: dict[str, str] = {}
    column: str | None = None
    for name, value in form.multi_items():
        if not isinstance(value, str):
            continue
        if name == "column":
            column = value
        elif name == "card" and column is not None:
            task_id, _, was = value.partition("@")
            placed[task_id] = column
            shown[task_id] = was
    moved = [(tid, to) for tid, to in placed.items() if shown.get(tid) != to]
    if not moved:
        return await _render_board(ui, process, closed, full=False)
    task_id, to = moved[0]
    try:
        view = await ui.call(
            lambda acc, by: taskview.change_status(acc, task_id, to, comment, by=by)
        )
    except FlowlaneError as exc:
        if not ui.htmx:
            raise
        return await _render_board(ui, process, closed, full=False, flash=str(exc))
    if not ui.htmx:
        target = "/tasks/board" + (f"?{urlencode({'process': process})}" if process else "")
        return RedirectResponse(target, status_code=303)
    text = ui.gettext("Moved to: %(status)s") % {"status": view.task.status.replace("_", " ")}
    return await _render_board(ui, process, closed, full=False, flash=text, kind="ok")


# ---- the task page ---------------------------------------------------------------------------


@router.get("/tasks/{task_id}")
async def task_page(task_id: str, ui: UiDep) -> Response:
    """The task: what to do and how to answer, its comments, files, history, variables."""
    return await _render_task(ui, task_id, full=True)


@router.post("/tasks/{task_id}/answer")
async def answer(task_id: str, ui: UiDep) -> Response:
    """Answer with one of the options and the task's fields."""
    form = await ui.request.form()
    spec = await ui.call(lambda acc, by: taskview.task_view(acc, task_id, by=by))
    option_given = form.get("option")
    option = option_given if isinstance(option_given, str) and option_given else None
    values, raw = _read_inputs(form, FIELD_PREFIX, spec.task.fields)
    try:
        await ui.call(lambda acc, by: taskview.answer(acc, task_id, option, values, by=by))
    except Refused as exc:
        named = _error_field(exc)
        if named is None:
            raise
        return await _render_task(
            ui,
            task_id,
            full=not ui.htmx,
            errors={named: str(exc)},
            raw=raw,
            status=200 if ui.htmx else 422,
        )
    return await _after_action(ui, task_id, ui.gettext("Answer saved."))


@router.post("/tasks/{task_id}/status")
async def change_status(task_id: str, ui: UiDep) -> Response:
    """Move the task to another status of its workflow (with a comment where required)."""
    form = await ui.request.form()
    to = str(form.get("to") or "")
    comment = str(form.get("comment") or "")
    await ui.call(lambda acc, by: taskview.change_status(acc, task_id, to, comment or None, by=by))
    text = ui.gettext("Moved to: %(status)s") % {"status": to.replace("_", " ")}
    return await _after_action(ui, task_id, text)


@router.post("/tasks/{task_id}/comments")
async def add_comment(task_id: str, ui: UiDep) -> Response:
    """Comment, with files attached if given (multipart)."""
    form = await ui.request.form()
    text = str(form.get("text") or "")
    files: list[tuple[str, bytes]] = []
    try:
        for item in form.getlist("files"):
            if isinstance(item, UploadFile) and (item.filename or item.size):
                files.append((item.filename or "", await item.read()))
    finally:
        await form.close()

    def work(acc: Account, by: str) -> None:
        acc.comment(taskview.task_by_id(acc, task_id), text, by=by, files=files)

    await ui.call(work)
    return await _after_action(ui, task_id, ui.gettext("Comment added."))


def _disposition(name: str) -> str:
    """A Content-Disposition that no file name can break out of."""
    plain = re.sub(r"[^A-Za-z0-9._ -]", "_", name).strip() or "file"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.get("/tasks/{task_id}/files/{attachment_id}")
async def download(task_id: str, attachment_id: str, ui: UiDep) -> Response:
    """A file of the task (for those who may act on it)."""
    meta, content = await ui.call(
        lambda acc, by: taskview.attachment(acc, task_id, attachment_id, by=by)
    )
    return Response(
        content,
        media_type=str(meta["content_type"]),
        headers={
            "Content-Disposition": _disposition(str(meta["name"])),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


@router.post("/tasks/{task_id}/variables")
async def set_variables(task_id: str, ui: UiDep) -> Response:
    """Fill the process's variables from the task."""
    form = await ui.request.form()
    found = await ui.call(lambda acc, by: taskview.variables(acc, task_id, by=by))
    specs = {k: v["field"] for k, v in found.items()}
    values, raw = _read_inputs(form, VAR_PREFIX, specs)
    changed: dict[str, Any] = {}
    for key in specs:
        if _secret(key, specs[key]):
            if raw.get(key, ""):  # a secret's input is always empty: typed in, it changes
                changed[key] = values.get(key)
            continue
        before = _shown(found[key]["value"], ui.container.store.tz)
        if raw.get(key, "") != before:
            changed[key] = values.get(key)
    if not changed:
        return await _after_action(ui, task_id, ui.gettext("Nothing changed."))
    await ui.call(lambda acc, by: taskview.set_variables(acc, task_id, changed, by=by))
    return await _after_action(ui, task_id, ui.gettext("Variables saved."))


# ---- the cabinet -----------------------------------------------------------------------------


@router.get("/cabinet")
async def cabinet(ui: UiDep) -> HTMLResponse:
    """The tasks on your own client profile: open ones first, then the finished."""
    rows = await ui.call(lambda acc, by: _rows(acc, acc.client_tasks(by, by=by)))
    open_rows = [r for r in rows if not r.task.closed]
    done_rows = sorted(
        (r for r in rows if r.task.closed),
        key=lambda r: r.task.closed_at or r.task.created_at,
        reverse=True,
    )
    return ui.render(
        "ui/work/cabinet.html",
        title=ui.gettext("My tasks"),
        open_rows=open_rows,
        done_rows=done_rows,
    )
