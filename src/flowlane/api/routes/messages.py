"""Messages: the outbox with delivery state, the mail sink, the in-app feed; forms and
inbound webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, model_validator

from flowlane.api.deps import CallDep, locked
from flowlane.api.pagination import Page, PageDep, PageParams
from flowlane.api.schemas import PROBLEM_RESPONSES, Problem, Strict
from flowlane.services import messages, notify, taskview
from flowlane.store.records import DeliveryRecord, MessageRecord, SinkMail

router = APIRouter(tags=["messages"], responses=PROBLEM_RESPONSES)

# ---- models ------------------------------------------------------------------------------


class Delivery(BaseModel):
    """A message processes sent, with how its delivery went."""

    id: str
    instance_id: str
    process: str
    block: str
    channel: str
    to: str
    recipient: str | None
    subject: str
    status: str = Field(description="queued, sent, failed or bounced")
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, r: DeliveryRecord) -> Delivery:
        return cls(
            id=r.id,
            instance_id=r.instance_id,
            process=r.process,
            block=r.block,
            channel=r.channel,
            to=r.to,
            recipient=r.recipient,
            subject=r.subject,
            status=r.status,
            attempts=r.attempts,
            last_error=r.last_error,
            created_at=r.created_at,
            sent_at=r.sent_at,
        )


class SinkMailItem(BaseModel):
    """An email the mail sink kept instead of sending it."""

    id: int
    outbox_id: str
    message_id: str
    to: str
    subject: str
    stored_at: datetime

    @classmethod
    def of(cls, m: SinkMail) -> SinkMailItem:
        return cls(
            id=m.id,
            outbox_id=m.outbox_id,
            message_id=m.message_id,
            to=m.to,
            subject=m.subject,
            stored_at=m.stored_at,
        )


class SinkMailDetail(BaseModel):
    """A kept email, parsed: ``html`` is null for a plain-text email."""

    id: int
    outbox_id: str
    message_id: str
    stored_at: datetime
    from_: str = Field(serialization_alias="from")
    to: str
    subject: str
    text: str
    html: str | None


class Notification(BaseModel):
    """A message of your in-app feed."""

    id: str
    subject: str
    body: str
    channel: str
    process: str
    instance_id: str
    task_id: str | None
    created_at: datetime
    read_at: datetime | None

    @classmethod
    def of(cls, m: MessageRecord) -> Notification:
        return cls(
            id=m.id,
            subject=m.subject,
            body=m.body,
            channel=m.channel,
            process=m.process,
            instance_id=m.instance_id,
            task_id=m.task_id,
            created_at=m.created_at,
            read_at=m.read_at,
        )


class Feed(Page[Notification]):
    """A page of your feed, newest first; ``unread`` counts the whole feed's unread."""

    unread: int


class Unread(BaseModel):
    unread: int


class ReadIn(Strict):
    """Either ``ids`` or ``all: true``."""

    ids: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, min_length=1, max_length=500
    )
    all: bool = False

    @model_validator(mode="after")
    def _one(self) -> ReadIn:
        if (self.ids is None) == (not self.all):
            raise ValueError("give ids or all: true (one of them)")
        return self


class Marked(BaseModel):
    marked: list[str] = Field(description="The ids that were unread, now read")


class FormItem(BaseModel):
    key: str
    title: str
    type: str | None = Field(description="The object type a submission creates or changes")
    mode: str = Field(description="create or update")
    url: str | None = Field(description="The public page (null: opened by signed links only)")


class Submitted(BaseModel):
    ok: bool
    message: str
    object_id: str | None


class Hook(BaseModel):
    key: str
    processes: list[str] = Field(description="The processes launched on webhook:<key>")
    url: str = Field(description="The signed URL to POST to (keep it private)")


Scalar = str | int | float | bool | None
SubmissionIn = dict[Annotated[str, Field(max_length=200)], Scalar]

TOO_MANY: dict[int | str, dict[str, Any]] = {
    429: {"model": Problem, "description": "Too many submissions from this address"}
}


def _values(data: SubmissionIn) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in data.items():
        if value is None:
            continue
        out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


# ---- routes ------------------------------------------------------------------------------


@router.get("/messages")
async def outbox(
    call: CallDep,
    paging: PageDep,
    status: Annotated[
        Literal["queued", "sent", "failed", "bounced"] | None,
        Query(description="Only messages in this delivery state"),
    ] = None,
) -> Page[Delivery]:
    """The outbox, newest first, with delivery state (admins, owners)."""
    found = await call(
        lambda acc, by: taskview.outbox_page(
            acc, status=status, page=paging.page, size=paging.size, by=by
        )
    )
    return Page[Delivery].of([Delivery.of(r) for r in found.items], found.total, paging)


@router.get("/mail-sink")
async def mail_sink(call: CallDep, paging: PageDep) -> Page[SinkMailItem]:
    """Emails the mail sink kept (``FLOWLANE_MAIL=sink``), newest first (admins, owners)."""
    found = await call(
        lambda acc, by: taskview.sink_page(acc, page=paging.page, size=paging.size, by=by)
    )
    return Page[SinkMailItem].of([SinkMailItem.of(m) for m in found.items], found.total, paging)


@router.get("/mail-sink/{mail_id}")
async def mail_sink_mail(mail_id: int, call: CallDep) -> SinkMailDetail:
    """One kept email with its text and HTML bodies (admins, owners)."""
    m: messages.SinkMailView = await call(lambda acc, by: taskview.sink_mail(acc, mail_id, by=by))
    return SinkMailDetail(
        id=m.id,
        outbox_id=m.outbox_id,
        message_id=m.message_id,
        stored_at=m.stored_at,
        from_=m.from_,
        to=m.to,
        subject=m.subject,
        text=m.text,
        html=m.html,
    )


@router.get("/notifications")
async def notifications(
    call: CallDep,
    paging: PageDep,
    unread_only: Annotated[bool, Query(description="Only unread messages")] = False,
) -> Feed:
    """Your in-app feed, newest first."""
    found = await call(
        lambda acc, by: notify.inapp_for(
            acc, by, unread_only=unread_only, page=paging.page, size=paging.size, by=by
        )
    )
    return _feed(found, paging)


def _feed(found: notify.InappPage, paging: PageParams) -> Feed:
    return Feed(
        items=[Notification.of(m) for m in found.items],
        total=found.total,
        page=paging.page,
        size=paging.size,
        unread=found.unread,
    )


@router.get("/notifications/unread-count")
async def unread_count(call: CallDep) -> Unread:
    """How many messages of your feed are unread."""
    return Unread(unread=await call(lambda acc, by: notify.unread_count(acc, by, by=by)))


@router.post("/notifications/read")
async def mark_read(body: ReadIn, call: CallDep) -> Marked:
    """Mark messages of your feed read: ``ids``, or ``all: true``."""
    ids = body.ids if body.ids is not None else "all"
    return Marked(marked=await call(lambda acc, by: notify.mark_read(acc, by, ids, by=by)))


@router.get("/forms")
async def list_forms(call: CallDep) -> list[FormItem]:
    """The account's forms with their public URLs (staff)."""
    public = call.container.public_url
    found = await call(lambda acc, by: taskview.forms_list(acc, public, by=by))
    return [FormItem(key=f.key, title=f.title, type=f.type, mode=f.mode, url=f.url) for f in found]


@router.get("/forms/{key}")
async def get_form(key: str, call: CallDep) -> dict[str, Any]:
    """The form's spec as JSON (``forms/<key>.yaml``; staff)."""
    return await call(lambda acc, by: taskview.form_spec(acc, key, by=by))


@router.post("/forms/{key}/submissions", status_code=201, responses=TOO_MANY)
async def submit(key: str, data: SubmissionIn, request: Request, call: CallDep) -> Submitted:
    """Submit the form as an integration would (staff token): the values by input name.
    The visitor rules apply: a filled honeypot is dropped (answered as taken), too many
    submissions from one address give 429; bad values give 422 with ``fields.errors`` per
    input."""
    address = request.client.host if request.client is not None else "unknown"
    values = _values(data)
    result = await locked(
        call.container,
        lambda: taskview.submit_as_staff(call.account, key, values, address=address, by=call.by),
    )
    return Submitted(ok=result.ok, message=result.message, object_id=result.object_id)


@router.get("/hooks")
async def hooks(call: CallDep) -> list[Hook]:
    """Every inbound webhook key a process launches on, with its signed URL (admins,
    owners)."""
    public = call.container.public_url
    found = await call(lambda acc, by: taskview.hooks(acc, public, by=by))
    return [Hook(key=h.key, processes=h.processes, url=h.url) for h in found]
