"""Operations pages: what went wrong and what was sent.

* ``/incidents`` — open incidents with Retry and Cancel instance (htmx: the row shows the
  instance's new state, or its new incident when it fails again);
* ``/instances/{id}`` — one instance: status, where it waits, variables, counters, its open
  tasks, parent and children, and its trace as a timeline; Retry / Cancel;
* ``/outbox`` — outgoing messages with delivery state, one message with its body;
  ``/outbox/sink`` — the mail sink (``FLOWLANE_MAIL=sink``), one mail with its text and its
  HTML in a sandboxed ``iframe`` (``srcdoc``), never in the page itself;
* ``/notifications`` — the person's in-app feed, mark read; ``/notifications/count`` — the
  header's bell (loaded by htmx).

Every rule (who may see, retry, cancel, read the outbox or a feed) is the services' own
(:mod:`flowlane.services.instances`, :mod:`~flowlane.services.taskview`,
:mod:`~flowlane.services.notify`); the buttons are shown to those :func:`permissions.can`
allows, and a refusal of the service comes back in ``#flash``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from flowlane.core.errors import FlowlaneError
from flowlane.services import (
    instances,
    messages,
    notify,
    objects,
    permissions,
    processes,
    tasklists,
    taskview,
)
from flowlane.services.account import Account
from flowlane.store.records import MessageRecord, TaskRecord
from flowlane.web.ui.common import Ui, UiDep

router = APIRouter(include_in_schema=False)

INCIDENTS_PAGE = 50
OUTBOX_PAGE = 50
SINK_PAGE = 50
FEED_PAGE = 30
TRACE_PAGE = 200
PROCESS_CHOICES = 500
MAIL_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
"""The policy of a kept mail's page, which its HTML frame (``srcdoc``) inherits: the mail
loads nothing from elsewhere (no tracking pixels, fonts or styles of other hosts) and its
frame cannot be sent to another site."""


@dataclass(frozen=True, slots=True)
class Pager:
    """Where a list stands: ``page`` (from 1) of ``pages``; links keep the list's filters."""

    page: int
    size: int
    total: int
    base: str
    params: dict[str, str]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def url(self, page: int) -> str:
        query = {k: v for k, v in self.params.items() if v}
        if page > 1:
            query["page"] = str(page)
        return self.base + ("?" + urlencode(query) if query else "")


def _object_types(acc: Account, ids: set[str], by: str) -> dict[str, str]:
    """The type of each object the person may see (for links ``/objects/{type}/{id}``)."""
    found: dict[str, str] = {}
    for object_id in ids:
        try:
            found[object_id] = objects.visible_object(acc, object_id, by=by).type
        except FlowlaneError:
            continue
    return found


def shown(value: Any) -> str:
    """A variable's or detail's value as text."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


# ---- incidents -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncidentRow:
    incident: instances.Incident | None
    instance: instances.InstanceView
    object_type: str | None


def _incident_row(acc: Account, instance_id: str, by: str) -> IncidentRow:
    """An instance as its incident row shows it after an action: its open incident, if any."""
    view = instances.get_instance(acc, instance_id, by=by)
    incident = None
    if view.status == "incident":
        everything = instances.incidents(acc, process=view.process, limit=10**9, by=by)
        incident = next((i for i in everything.items if i.instance_id == instance_id), None)
    types = _object_types(acc, {view.object_id} if view.object_id else set(), by)
    return IncidentRow(incident, view, types.get(view.object_id or ""))


@router.get("/incidents")
async def incident_list(
    ui: UiDep,
    process: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """Open incidents, oldest first, with Retry / Cancel for those who may."""
    wanted = process or None

    def load(acc: Account, by: str) -> tuple[instances.IncidentPage, list[IncidentRow], list[str]]:
        offset = (page - 1) * INCIDENTS_PAGE
        found = instances.incidents(acc, process=wanted, offset=offset, limit=INCIDENTS_PAGE, by=by)
        views = [instances.get_instance(acc, i.instance_id, by=by) for i in found.items]
        types = _object_types(acc, {v.object_id for v in views if v.object_id}, by)
        rows = [
            IncidentRow(i, v, types.get(v.object_id or ""))
            for i, v in zip(found.items, views, strict=True)
        ]
        keys = [p.key for p in processes.list_processes(acc, limit=PROCESS_CHOICES, by=by).items]
        return found, rows, keys

    found, rows, keys = await ui.call(load)
    manage = await ui.read(lambda acc: permissions.can(acc, ui.by, "manage_processes"))
    pager = Pager(page, INCIDENTS_PAGE, found.total, "/incidents", {"process": process})
    return ui.render(
        "ui/ops/incidents.html",
        title=ui.gettext("Incidents"),
        rows=rows,
        pager=pager,
        process=process,
        process_keys=keys,
        manage=manage,
    )


def _row_response(ui: Ui, row: IncidentRow) -> Response:
    if not ui.htmx:
        return RedirectResponse("/incidents", status_code=303)
    return ui.render("ui/ops/_incident_row.html", row=row, manage=True)


@router.post("/incidents/{instance_id}/retry")
async def incident_retry(instance_id: str, ui: UiDep) -> Response:
    """Retry from the incident list: the row shows the new state or the new incident."""

    def work(acc: Account, by: str) -> IncidentRow:
        instances.retry(acc, instance_id, by=by)
        return _incident_row(acc, instance_id, by)

    return _row_response(ui, await ui.call(work))


@router.post("/incidents/{instance_id}/cancel")
async def incident_cancel(instance_id: str, ui: UiDep) -> Response:
    """Cancel the instance of an incident (the row shows it cancelled)."""

    def work(acc: Account, by: str) -> IncidentRow:
        instances.cancel(acc, instance_id, by=by)
        return _incident_row(acc, instance_id, by)

    return _row_response(ui, await ui.call(work))


# ---- one instance --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InstancePage:
    view: instances.InstanceView
    trace: instances.TracePage
    incident: instances.Incident | None
    tasks: list[TaskRecord]
    object_type: str | None


@router.get("/instances/{instance_id}")
async def instance_page(
    instance_id: str,
    ui: UiDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """The instance with where it waits, its data, its open tasks and its trace."""

    def load(acc: Account, by: str) -> InstancePage:
        view = instances.get_instance(acc, instance_id, by=by)
        lines = instances.trace(
            acc, instance_id, offset=(page - 1) * TRACE_PAGE, limit=TRACE_PAGE, by=by
        )
        incident = None
        if view.status == "incident":
            found = instances.incidents(acc, process=view.process, limit=10**9, by=by)
            incident = next((i for i in found.items if i.instance_id == instance_id), None)
        tasks: list[TaskRecord] = []
        object_type = None
        if view.object_id:
            object_type = _object_types(acc, {view.object_id}, by).get(view.object_id)
            tasks = [
                t
                for t in _object_tasks(acc, view.object_id, by)
                if t.instance_id == instance_id and not t.closed
            ]
        return InstancePage(view, lines, incident, tasks, object_type)

    data = await ui.call(load)
    manage = await ui.read(lambda acc: permissions.can(acc, ui.by, "manage_processes"))
    pager = Pager(page, TRACE_PAGE, data.trace.total, f"/instances/{instance_id}", {})
    return ui.render(
        "ui/ops/instance.html",
        title=f"{ui.gettext('Instance')} {data.view.id}",
        data=data,
        inst=data.view,
        pager=pager,
        manage=manage,
        shown=shown,
    )


def _object_tasks(acc: Account, object_id: str, by: str) -> list[TaskRecord]:
    """The tasks of the instance's object (:func:`flowlane.services.tasklists.object_tasks`),
    empty when the person may not list them."""
    try:
        return tasklists.object_tasks(acc, object_id, by=by)
    except FlowlaneError:
        return []


async def _instance_action(ui: Ui, instance_id: str, action: str) -> Response:
    act = instances.retry if action == "retry" else instances.cancel
    await ui.call(lambda acc, by: act(acc, instance_id, by=by))
    target = f"/instances/{instance_id}"
    if ui.htmx:
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


@router.post("/instances/{instance_id}/retry")
async def instance_retry(instance_id: str, ui: UiDep) -> Response:
    """Retry from the instance page (the page reloads with the new state)."""
    return await _instance_action(ui, instance_id, "retry")


@router.post("/instances/{instance_id}/cancel")
async def instance_cancel(instance_id: str, ui: UiDep) -> Response:
    """Cancel from the instance page (the page reloads with the new state)."""
    return await _instance_action(ui, instance_id, "cancel")


# ---- the outbox and the mail sink ----------------------------------------------------------


@router.get("/outbox")
async def outbox(
    ui: UiDep,
    status: Annotated[str, Query(max_length=20)] = "",
    channel: Annotated[str, Query(max_length=20)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """Outgoing messages, newest first, with their delivery state (admins, owners)."""
    found = await ui.call(
        lambda acc, by: taskview.outbox_page(
            acc,
            status=status or None,
            channel=channel or None,
            page=page,
            size=OUTBOX_PAGE,
            by=by,
        )
    )
    pager = Pager(page, OUTBOX_PAGE, found.total, "/outbox", {"status": status, "channel": channel})
    return ui.render(
        "ui/ops/outbox.html",
        title=ui.gettext("Outbox"),
        items=found.items,
        pager=pager,
        chosen_status=status,
        chosen_channel=channel,
        statuses=messages.DELIVERY_STATUSES,
        channels=messages.CHANNELS,
    )


@router.get("/outbox/sink")
async def sink(ui: UiDep, page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> HTMLResponse:
    """The emails the mail sink kept, newest first (admins, owners)."""
    found = await ui.call(lambda acc, by: taskview.sink_page(acc, page=page, size=SINK_PAGE, by=by))
    pager = Pager(page, SINK_PAGE, found.total, "/outbox/sink", {})
    return ui.render(
        "ui/ops/sink.html", title=ui.gettext("Mail sink"), items=found.items, pager=pager
    )


@router.get("/outbox/sink/{mail_id}")
async def sink_mail(mail_id: int, ui: UiDep) -> HTMLResponse:
    """One kept email: headers, the text part, the HTML part in a sandboxed frame."""
    mail = await ui.call(lambda acc, by: taskview.sink_mail(acc, mail_id, by=by))
    return ui.render(
        "ui/ops/sink_mail.html",
        headers={"Content-Security-Policy": MAIL_CSP},
        title=mail.subject,
        mail=mail,
    )


@router.get("/outbox/{message_id}")
async def outbox_message(message_id: str, ui: UiDep) -> HTMLResponse:
    """One message of the outbox with its body and delivery state."""
    found = await ui.call(lambda acc, by: taskview.outbox_message(acc, message_id, by=by))
    return ui.render("ui/ops/message.html", title=found.delivery.subject, msg=found)


# ---- in-app notifications ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedItem:
    """A notification with what it is about: its task, else the object of its instance."""

    message: MessageRecord
    object_id: str | None
    object_type: str | None


@dataclass(frozen=True, slots=True)
class Feed:
    items: list[FeedItem]
    total: int
    unread: int


def _feed(acc: Account, by: str, unread_only: bool, page: int) -> Feed:
    found = notify.inapp_for(acc, by, unread_only=unread_only, page=page, size=FEED_PAGE, by=by)
    about: dict[str, str | None] = {}
    for m in found.items:
        if m.task_id is None and m.instance_id and m.instance_id not in about:
            try:
                about[m.instance_id] = instances.get_instance(acc, m.instance_id, by=by).object_id
            except FlowlaneError:  # a client may not see instances: no link then
                about[m.instance_id] = None
    types = _object_types(acc, {o for o in about.values() if o}, by)
    items = []
    for m in found.items:
        object_id = about.get(m.instance_id) if m.task_id is None else None
        object_type = types.get(object_id) if object_id else None
        items.append(FeedItem(m, object_id if object_type else None, object_type))
    return Feed(items, found.total, found.unread)


@router.get("/notifications")
async def notifications(
    ui: UiDep,
    unread: Annotated[bool, Query()] = False,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """The person's in-app feed, newest first."""
    feed = await ui.call(lambda acc, by: _feed(acc, by, unread, page))
    pager = Pager(page, FEED_PAGE, feed.total, "/notifications", {"unread": "1" if unread else ""})
    return ui.render(
        "ui/ops/notifications.html",
        title=ui.gettext("Notifications"),
        feed=feed,
        pager=pager,
        unread_only=unread,
    )


@router.get("/notifications/count")
async def notifications_count(ui: UiDep) -> HTMLResponse:
    """The bell's content: how many of the person's feed are unread."""
    count = await ui.call(lambda acc, by: notify.unread_count(acc, by, by=by))
    return ui.render("ui/ops/_bell_badge.html", unread=count)


@router.post("/notifications/read")
async def notifications_read_all(
    ui: UiDep,
    unread: Annotated[bool, Query()] = False,
) -> Response:
    """Mark the whole feed read; the feed is shown again (first page)."""

    def work(acc: Account, by: str) -> Feed:
        notify.mark_read(acc, by, "all", by=by)
        return _feed(acc, by, unread, 1)

    feed = await ui.call(work)
    if not ui.htmx:
        return RedirectResponse("/notifications", status_code=303)
    pager = Pager(1, FEED_PAGE, feed.total, "/notifications", {"unread": "1" if unread else ""})
    return ui.render(
        "ui/ops/_feed.html", feed=feed, pager=pager, unread_only=unread, oob_count=True
    )


@router.post("/notifications/{message_id}/read")
async def notification_read(
    message_id: str,
    ui: UiDep,
    unread: Annotated[bool, Query()] = False,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """Mark one notification read; the feed's page is shown again, the bell counts again."""

    def work(acc: Account, by: str) -> Feed:
        notify.mark_read(acc, by, [message_id], by=by)
        return _feed(acc, by, unread, page)

    feed = await ui.call(work)
    if not ui.htmx:
        return RedirectResponse("/notifications", status_code=303)
    pager = Pager(page, FEED_PAGE, feed.total, "/notifications", {"unread": "1" if unread else ""})
    return ui.render(
        "ui/ops/_feed.html", feed=feed, pager=pager, unread_only=unread, oob_count=True
    )
