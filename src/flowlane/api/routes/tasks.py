"""Tasks: the inbox, the process's task table, a task's page and the work on it (claim,
answer, status, comments, attachments, variables), tasks by hand, bulk reassignment,
statistics, a client's tasks."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Query, Response, UploadFile
from pydantic import BaseModel, Field

from flowlane.api.deps import CallDep
from flowlane.api.pagination import Page, PageDep
from flowlane.api.schemas import PROBLEM_RESPONSES, Problem, Strict
from flowlane.services import taskview
from flowlane.services.taskview import TaskView
from flowlane.store.records import TASK_SORTS, TaskRecord

router = APIRouter(tags=["tasks"], responses=PROBLEM_RESPONSES)

UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": Problem, "description": "The file is over the size limit"},
    415: {"model": Problem, "description": "The file's type is not accepted"},
}
OCTET = "application/octet-stream"


# ---- models ------------------------------------------------------------------------------


class TaskSummary(BaseModel):
    """A task as lists show it."""

    id: str
    process: str
    block: str
    title: str
    object_id: str | None
    assignee: str | None
    status: str
    closed: bool
    priority: str
    created_at: datetime
    due_at: datetime | None
    closed_at: datetime | None

    @classmethod
    def of(cls, t: TaskRecord) -> TaskSummary:
        return cls(
            id=t.id,
            process=t.process,
            block=t.block,
            title=t.title,
            object_id=t.object_id,
            assignee=t.assignee,
            status=t.status,
            closed=t.closed,
            priority=t.priority,
            created_at=t.created_at,
            due_at=t.due_at,
            closed_at=t.closed_at,
        )


class TaskField(BaseModel):
    """An input of the task's answer."""

    name: str
    type: str
    label: str | None = None
    required: bool = False
    spec: dict[str, Any] = Field(description="The whole field spec (values, min, max...)")


class Transition(BaseModel):
    to: str
    comment_required: bool


class Workflow(BaseModel):
    statuses: list[str]
    final: list[str]
    transitions: list[Transition] = Field(
        description="The statuses the person asking may move the task to now"
    )


class Comment(BaseModel):
    at: datetime
    by: str | None
    text: str
    attachments: list[str] = Field(default_factory=list, description="Attachment ids")

    @classmethod
    def of(cls, c: dict[str, Any]) -> Comment:
        return cls(
            at=c["at"],
            by=c.get("by"),
            text=str(c.get("text") or ""),
            attachments=list(c.get("attachments") or []),
        )


class Attachment(BaseModel):
    """A file on the task (download: ``GET /tasks/{id}/attachments/{attachment_id}``)."""

    id: str
    name: str
    size: int
    content_type: str
    by: str | None
    at: datetime

    @classmethod
    def of(cls, m: dict[str, Any]) -> Attachment:
        return cls(
            id=str(m["id"]),
            name=str(m["name"]),
            size=int(m["size"]),
            content_type=str(m["content_type"]),
            by=m.get("by"),
            at=m["at"],
        )


class Task(TaskSummary):
    """A task's page: what to do, how to answer, who holds it, what was said."""

    kind: str
    text: str
    options: list[str]
    fields: list[TaskField]
    workflow: Workflow | None
    answer: dict[str, Any] | None
    comments: list[Comment]
    attachments: list[Attachment]

    @classmethod
    def view(cls, v: TaskView) -> Task:
        t = v.task
        workflow = None
        if t.workflow is not None:
            workflow = Workflow(
                statuses=[str(s) for s in t.workflow.get("statuses", [])],
                final=[str(s) for s in t.workflow.get("final", [])],
                transitions=[
                    Transition(to=x.to, comment_required=x.comment_required) for x in v.transitions
                ],
            )
        return cls(
            **TaskSummary.of(t).model_dump(),
            kind=t.kind,
            text=t.text,
            options=list(t.options),
            fields=[
                TaskField(
                    name=name,
                    type=str(spec.get("type", "string")),
                    label=spec.get("label"),
                    required=bool(spec.get("required")),
                    spec=dict(spec),
                )
                for name, spec in t.fields.items()
            ],
            workflow=workflow,
            answer=t.answer,
            comments=[Comment.of(c) for c in t.comments],
            attachments=[Attachment.of(m) for m in t.attachments],
        )


class AnswerIn(Strict):
    option: str | None = Field(default=None, max_length=200, examples=["approve"])
    fields: dict[str, Any] = Field(default_factory=dict, examples=[{"grade": 5}])


class StatusIn(Strict):
    to: str = Field(min_length=1, max_length=200, examples=["in_progress"])
    comment: str | None = Field(default=None, max_length=20_000)


class CommentIn(Strict):
    text: str = Field(min_length=1, max_length=20_000)


class VariablesIn(Strict):
    values: dict[str, Any] = Field(min_length=1, examples=[{"topic": "Funnels"}])


class Variable(BaseModel):
    field: dict[str, Any]
    value: Any = None


class NewTaskIn(Strict):
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(default="", max_length=20_000)
    object: str | None = Field(default=None, max_length=100, description="The object's id")
    assignee: str | None = Field(default=None, max_length=100)
    priority: str | None = Field(default=None, description="urgent, high, normal or low")


class ReassignIn(Strict):
    """Which tasks to give to ``to`` (null: nobody). ``from``: only the tasks of this person
    (null: only unassigned ones; left out: anyone's). Without ``status`` only open tasks."""

    from_: str | None = Field(default=None, alias="from", max_length=100)
    status: str | None = Field(default=None, max_length=200)
    to: str | None = Field(max_length=100)
    object: str | None = Field(default=None, max_length=100)
    created_from: datetime | None = None
    created_to: datetime | None = None
    block: str | None = Field(default=None, max_length=200)


class Count(BaseModel):
    count: int


class StatRow(BaseModel):
    assignee: str | None
    status: str
    day: date
    count: int


class ByAssignee(BaseModel):
    assignee: str | None
    count: int


class Statistics(BaseModel):
    """Tasks per assignee × status × creation day (the account's zone), with totals."""

    rows: list[StatRow]
    total: int
    by_assignee: list[ByAssignee]
    by_status: dict[str, int]
    by_day: dict[str, int]


# ---- filters -----------------------------------------------------------------------------

Process = Annotated[str, Query(min_length=1, max_length=200, description="The process key")]
Assignee = Annotated[str | None, Query(max_length=100, description="Only the tasks of this person")]
Unassigned = Annotated[bool, Query(description="Only tasks nobody holds")]
Status = Annotated[str | None, Query(max_length=200, description="Only tasks in this status")]
Open = Annotated[bool, Query(description="Only open tasks")]
ObjectId = Annotated[
    str | None, Query(alias="object", max_length=100, description="Only the tasks on it")
]
CreatedFrom = Annotated[
    datetime | None, Query(description="Created at or after (with a time zone offset)")
]
CreatedTo = Annotated[datetime | None, Query(description="Created before (with an offset)")]
Block = Annotated[
    str | None, Query(max_length=200, description="Only the tasks opened by this block")
]
SORT_VALUES = [*TASK_SORTS, *(f"-{s}" for s in TASK_SORTS)]


def _disposition(name: str) -> str:
    """A Content-Disposition that no file name can break out of."""
    plain = re.sub(r"[^A-Za-z0-9._ -]", "_", name).strip() or "file"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


# ---- routes ------------------------------------------------------------------------------


@router.get("/inbox")
async def inbox(call: CallDep, paging: PageDep) -> Page[TaskSummary]:
    """Your inbox: overdue first, then by priority and due time; ``total`` counts it all."""
    found = await call(lambda acc, by: acc.inbox(by, page=paging.page, size=paging.size, by=by))
    return Page[TaskSummary].of([TaskSummary.of(t) for t in found.tasks], found.total, paging)


@router.get("/tasks")
async def list_tasks(
    call: CallDep,
    paging: PageDep,
    process: Process,
    assignee: Assignee = None,
    unassigned: Unassigned = False,
    status: Status = None,
    open: Open = False,
    object_id: ObjectId = None,
    created_from: CreatedFrom = None,
    created_to: CreatedTo = None,
    block: Block = None,
    sort: Annotated[
        str, Query(description=f"One of {', '.join(SORT_VALUES)} (-: descending)")
    ] = "created_at",
) -> Page[TaskSummary]:
    """The process's task table (admins, owners, the process's supervisors)."""
    descending = sort.startswith("-")
    found = await call(
        lambda acc, by: acc.process_tasks(
            process,
            status=status,
            assignee=assignee,
            unassigned=unassigned,
            object_id=object_id,
            open_only=open,
            created_from=created_from,
            created_to=created_to,
            block=block,
            sort=sort.removeprefix("-"),
            descending=descending,
            page=paging.page,
            size=paging.size,
            by=by,
        )
    )
    return Page[TaskSummary].of([TaskSummary.of(t) for t in found.tasks], found.total, paging)


@router.get("/tasks/{task_id}")
async def get_task(task_id: str, call: CallDep) -> Task:
    """A task with the status changes you may make (those who may act on it)."""
    return Task.view(await call(lambda acc, by: taskview.task_view(acc, task_id, by=by)))


@router.post("/tasks/{task_id}/claim")
async def claim(task_id: str, call: CallDep) -> Task:
    """Take the task (it must be unassigned, or yours)."""
    return Task.view(await call(lambda acc, by: taskview.claim(acc, task_id, by=by)))


@router.post("/tasks/{task_id}/unclaim")
async def unclaim(task_id: str, call: CallDep) -> Task:
    """Give the task back (its assignee, supervisors, admins, owners)."""
    return Task.view(await call(lambda acc, by: taskview.unclaim(acc, task_id, by=by)))


@router.post("/tasks/{task_id}/answer")
async def answer(task_id: str, body: AnswerIn, call: CallDep) -> Task:
    """Answer a task without a workflow: one of its ``options`` and its ``fields``."""
    return Task.view(
        await call(lambda acc, by: taskview.answer(acc, task_id, body.option, body.fields, by=by))
    )


@router.post("/tasks/{task_id}/status")
async def change_status(task_id: str, body: StatusIn, call: CallDep) -> Task:
    """Move a workflow task to another status (a transition you may make)."""
    return Task.view(
        await call(
            lambda acc, by: taskview.change_status(acc, task_id, body.to, body.comment, by=by)
        )
    )


@router.get("/tasks/{task_id}/comments")
async def list_comments(task_id: str, call: CallDep) -> list[Comment]:
    """The task's comments, oldest first."""
    found = await call(lambda acc, by: taskview.comments(acc, task_id, by=by))
    return [Comment.of(c) for c in found]


@router.post("/tasks/{task_id}/comments", status_code=201)
async def add_comment(task_id: str, body: CommentIn, call: CallDep) -> Comment:
    """Comment on the task; its assignee and supervisors are notified."""
    return Comment.of(
        await call(lambda acc, by: taskview.add_comment(acc, task_id, body.text, by=by))
    )


@router.post("/tasks/{task_id}/attachments", status_code=201, responses=UPLOAD_RESPONSES)
async def attach(
    task_id: str,
    call: CallDep,
    file: Annotated[UploadFile, File(description="The file (multipart/form-data)")],
) -> Attachment:
    """Attach a file to the task; the accepted types and size are the account's limits."""
    content = await file.read()
    name = file.filename or ""
    ctype = file.content_type if file.content_type and file.content_type != OCTET else None
    meta = await call(
        lambda acc, by: taskview.attach(acc, task_id, name, content, content_type=ctype, by=by)
    )
    return Attachment.of(meta)


@router.get(
    "/tasks/{task_id}/attachments/{attachment_id}",
    response_class=Response,
    responses={200: {"content": {OCTET: {}}, "description": "The file's bytes"}},
)
async def download(task_id: str, attachment_id: str, call: CallDep) -> Response:
    """A task's file, with its content type."""
    meta, content = await call(
        lambda acc, by: taskview.attachment(acc, task_id, attachment_id, by=by)
    )
    return Response(
        content,
        media_type=str(meta["content_type"]),
        headers={
            "Content-Disposition": _disposition(str(meta["name"])),
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/tasks/{task_id}/history")
async def history(task_id: str, call: CallDep) -> list[dict[str, Any]]:
    """Every change of the task in order: ``at``, ``by``, ``what`` and its details."""
    return await call(lambda acc, by: taskview.history(acc, task_id, by=by))


@router.get("/tasks/{task_id}/variables")
async def variables(task_id: str, call: CallDep) -> dict[str, Variable]:
    """The process's variables as typed fields, with their values."""
    found = await call(lambda acc, by: taskview.variables(acc, task_id, by=by))
    return {k: Variable(field=v["field"], value=v["value"]) for k, v in found.items()}


@router.put("/tasks/{task_id}/variables")
async def set_variables(task_id: str, body: VariablesIn, call: CallDep) -> dict[str, Variable]:
    """Fill process variables from the task (coerced with their field types)."""
    found = await call(lambda acc, by: taskview.set_variables(acc, task_id, body.values, by=by))
    return {k: Variable(field=v["field"], value=v["value"]) for k, v in found.items()}


@router.post("/processes/{key}/tasks", status_code=201)
async def add_task(key: str, body: NewTaskIn, call: CallDep) -> Task:
    """Put a task of the process by hand (its executors, supervisors, admins, owners)."""

    return Task.view(
        await call(
            lambda acc, by: taskview.add_task(
                acc,
                key,
                object_id=body.object,
                title=body.title,
                text=body.text,
                assignee=body.assignee,
                priority=body.priority,
                by=by,
            )
        )
    )


@router.post("/processes/{key}/reassign")
async def reassign(key: str, body: ReassignIn, call: CallDep) -> Count:
    """Give the matching tasks to ``to`` in one change (admins, owners, supervisors)."""
    given = "from_" in body.model_fields_set
    count = await call(
        lambda acc, by: acc.reassign(
            key,
            from_=body.from_,
            from_given=given,
            status=body.status,
            to=body.to,
            object_id=body.object,
            created_from=body.created_from,
            created_to=body.created_to,
            block=body.block,
            by=by,
        )
    )
    return Count(count=count)


@router.get("/processes/{key}/statistics")
async def statistics(
    key: str,
    call: CallDep,
    assignee: Assignee = None,
    unassigned: Unassigned = False,
    status: Status = None,
    open: Open = False,
    object_id: ObjectId = None,
    created_from: CreatedFrom = None,
    created_to: CreatedTo = None,
    block: Block = None,
) -> Statistics:
    """Tasks per assignee, status and day (admins, owners, the process's supervisors)."""
    found = await call(
        lambda acc, by: acc.task_statistics(
            key,
            status=status,
            assignee=assignee,
            unassigned=unassigned,
            object_id=object_id,
            open_only=open,
            created_from=created_from,
            created_to=created_to,
            block=block,
            by=by,
        )
    )
    return Statistics(
        rows=[
            StatRow(assignee=r.assignee, status=r.status, day=r.day, count=r.count)
            for r in found.rows
        ],
        total=found.total,
        by_assignee=[ByAssignee(assignee=a, count=n) for a, n in found.by_assignee.items()],
        by_status=dict(found.by_status),
        by_day={d.isoformat(): n for d, n in sorted(found.by_day.items())},
    )


@router.get("/clients/{client_id}/tasks")
async def client_tasks(client_id: str, call: CallDep, paging: PageDep) -> Page[TaskSummary]:
    """Tasks on the client's profile (the client: own only; staff: anyone's)."""
    found = await call(lambda acc, by: acc.client_tasks(client_id, by=by))
    items = found[paging.offset : paging.offset + paging.limit]
    return Page[TaskSummary].of([TaskSummary.of(t) for t in items], len(found), paging)
