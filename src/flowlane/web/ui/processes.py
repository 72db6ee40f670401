"""UI pages: the process list and a process's administration tabs (SCENARIOS S2).

* ``/processes`` — search by name or key, filter by tag, status badges, object type, last
  launch, running instances; a link to ``/processes/new`` (the designer's page);
* ``/processes/{key}`` — General: settings, the launch in words, the entry condition with
  its forecast, versions with their instances, approve / stop / activate / restart, a start
  on one object with the process's variables;
* ``/processes/{key}/variables`` — the variables and counters of the file, and the current
  values of one instance;
* ``/processes/{key}/tasks`` — the task table (filters, sorting, paging);
* ``/processes/{key}/statistics`` — tasks grouped by status, assignee or creation day (a
  Chart.js bar chart and a table) and the bulk reassignment.

Every read and change goes through the services the REST API uses
(:mod:`flowlane.services.processes`, :mod:`~flowlane.services.instances`, the account's task
lists); actions come back as htmx fragments, refusals as the services' own messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from flowlane.core.errors import FlowlaneError, Forbidden, NotFound
from flowlane.engine.taskrules import STAFF_ADMIN_ROLES
from flowlane.model.process import ProcessFile
from flowlane.services import instances, launch, permissions, processes, tasklists, taskview, users
from flowlane.services import objects as object_service
from flowlane.services.account import Account
from flowlane.services.admin import ProcessInfo
from flowlane.services.processes import VersionSummary
from flowlane.store.records import TASK_SORTS
from flowlane.web import i18n
from flowlane.web.ui.common import Ui, UiDep, flash_fragment

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
"""Rows per page of the process list and the task table."""

STAFF_ROLES = ("owner", "admin", "manager", "employee")
"""The roles whose users are offered as assignees (reassignment, filters)."""

GROUPS = ("status", "assignee", "block", "day")
"""What the statistics are grouped by."""

NOBODY = "-"
"""The form value for "nobody" (unassigned tasks; reset the assignee)."""

Text = Annotated[str | None, Query(max_length=200)]
PageNo = Annotated[int, Query(ge=1, le=1_000_000)]


# ---- what the pages read -------------------------------------------------------------------


@dataclass
class Overview:
    """One process as its tabs show it."""

    info: ProcessInfo
    spec: ProcessFile
    versions: list[VersionSummary] = field(default_factory=list)
    condition: str | None = None
    type_label: str = ""
    can_manage: bool = False
    can_start: bool = False
    oversees: bool = False

    @property
    def needs_approval(self) -> bool:
        return self.info.approval and not self.info.approved

    @property
    def running(self) -> int:
        return sum(v.running for v in self.versions)


def _type_labels(acc: Account, by: str) -> dict[str, str]:
    return {t.key: t.label for t in object_service.object_types(acc, by=by)}


def _oversees(acc: Account, key: str, by: str) -> bool:
    """Admins, owners and the process's supervisors see its tasks and reassign them."""
    return acc.role_of(by) in STAFF_ADMIN_ROLES or tasklists.is_supervisor(acc, key, by)


def _overview(acc: Account, key: str, by: str) -> Overview:
    info = processes.get_process(acc, key, by=by)
    definition = processes.definition(acc, key)
    return Overview(
        info=info,
        spec=definition.spec,
        versions=processes.versions(acc, key, by=by),
        condition=launch.condition_of(acc, definition),
        type_label=_type_labels(acc, by).get(info.object, info.object),
        can_manage=permissions.can(acc, by, "manage_processes"),
        can_start=permissions.can(acc, by, "start_processes"),
        oversees=_oversees(acc, key, by),
    )


def _staff(acc: Account, by: str) -> list[tuple[str, str]]:
    """(id, name) of the staff users, for the assignee choices."""
    out: list[tuple[str, str]] = []
    for role in STAFF_ROLES:
        found = users.list_users(acc, role=role, limit=500, by=by)
        out.extend((r.id, str(r.data.get("name") or r.id)) for r in found.items)
    return sorted(out, key=lambda pair: pair[1].casefold())


def _names(acc: Account, ids: set[str], by: str, known: dict[str, str]) -> dict[str, str]:
    """Display names of users (the ids of those one may not see stay ids)."""
    out = dict(known)
    for uid in ids - set(out):
        try:
            rec = users.get_user(acc, uid, by=by)
        except NotFound:
            continue
        out[uid] = str(rec.data.get("name") or uid)
    return out


def launch_lines(ui: Ui, ov: Overview) -> list[str]:
    """The launch settings in words ("On create of an order", entry, repeat, approval)."""
    spec = ov.spec
    _ = ui.gettext
    settings = spec.launch
    on = settings.on if settings is not None else "manual"
    kind = ov.type_label or spec.object
    first = {
        "manual": _("Started by hand (from an object's card, the task tab or a mass start)"),
        "once": _("Once after start: every %(type)s matching the entry condition"),
        "periodic": _("Periodic check every %(every)s: %(type)s objects that newly match"),
        "create": _("On create of an object of type %(type)s"),
        "update": _("On change of an object of type %(type)s"),
        "stage": _("When an object of type %(type)s enters stage %(stage)s"),
        "event": _("On the event %(event)s"),
    }[on] % {
        "type": kind,
        "every": (settings.every if settings is not None else None) or "—",
        "stage": (settings.stage if settings is not None else None) or "—",
        "event": (settings.event if settings is not None else None) or "—",
    }
    lines = [first]
    if spec.draft:
        lines.append(_("Draft: only other processes start it"))
    if on != "manual" or ov.condition:
        lines.append(_("Entry condition: %(condition)s") % {"condition": ov.condition or _("none")})
    repeat = bool(settings and settings.repeat)
    lines.append(_("Repeat for the same object: yes") if repeat else _("Repeat: no"))
    if settings is not None and settings.from_ is not None:
        lines.append(_("Checks begin at %(moment)s") % {"moment": settings.from_.isoformat()})
    if settings is not None and settings.until is not None:
        lines.append(_("Checks end at %(moment)s") % {"moment": settings.until.isoformat()})
    return lines


def _process_tabs(ui: Ui, ov: Overview, active: str, **context: Any) -> HTMLResponse:
    template = {
        "general": "ui/processes/general.html",
        "variables": "ui/processes/variables.html",
        "tasks": "ui/processes/tasks.html",
        "statistics": "ui/processes/statistics.html",
    }[active]
    return ui.render(template, title=ov.info.name, ov=ov, key=ov.info.key, active=active, **context)


# ---- the list ------------------------------------------------------------------------------


@router.get("/processes")
async def process_list(
    ui: UiDep, search: Text = None, tag: Text = None, page: PageNo = 1
) -> HTMLResponse:
    """Processes by key: search by name or key, filter by tag."""
    wanted = search.strip() if search and search.strip() else None
    picked = tag or None

    def read(acc: Account, by: str) -> dict[str, Any]:
        every = processes.list_processes(acc, limit=100_000, by=by)
        found = processes.list_processes(
            acc,
            search=wanted,
            tag=picked,
            offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
            by=by,
        )
        running = {
            p.key: sum(v.running for v in processes.versions(acc, p.key, by=by))
            for p in found.items
        }
        return {
            "items": found.items,
            "total": found.total,
            "tags": sorted({t for p in every.items for t in p.tags}, key=str.casefold),
            "running": running,
            "labels": _type_labels(acc, by),
            "can_create": permissions.can(acc, by, "manage_processes"),
        }

    data = await ui.call(read)
    pages = max(1, -(-data["total"] // PAGE_SIZE))
    return ui.render(
        "ui/processes/list.html",
        title=ui.gettext("Processes"),
        search=search or "",
        tag=picked or "",
        page=page,
        pages=pages,
        **data,
    )


# ---- General -------------------------------------------------------------------------------


@router.get("/processes/{key}")
async def general(key: str, ui: UiDep) -> HTMLResponse:
    """The General tab: settings, launch, entry condition, versions, lifecycle, start."""
    ov = await ui.call(lambda acc, by: _overview(acc, key, by))
    return _process_tabs(ui, ov, "general", launch=launch_lines(ui, ov))


@router.get("/processes/{key}/forecast")
async def forecast(key: str, ui: UiDep) -> HTMLResponse:
    """How many objects the automatic launch would start the process for now (fragment)."""
    found = await ui.call(lambda acc, by: processes.forecast(acc, key, by=by))
    return ui.render("ui/processes/_forecast.html", forecast=found)


async def _lifecycle(ui: Ui, key: str, message: str | None = None) -> HTMLResponse:
    ov = await ui.call(lambda acc, by: _overview(acc, key, by))
    return ui.render("ui/processes/_lifecycle.html", ov=ov, key=key, message=message)


@router.post("/processes/{key}/approve")
async def approve(key: str, ui: UiDep) -> HTMLResponse:
    await ui.call(lambda acc, by: processes.approve(acc, key, by=by))
    return await _lifecycle(ui, key, ui.gettext("The process is approved and started."))


@router.post("/processes/{key}/stop")
async def stop(key: str, ui: UiDep) -> HTMLResponse:
    await ui.call(lambda acc, by: processes.stop(acc, key, by=by))
    return await _lifecycle(ui, key, ui.gettext("The process is stopped."))


@router.post("/processes/{key}/activate")
async def activate(key: str, ui: UiDep) -> HTMLResponse:
    await ui.call(lambda acc, by: processes.activate(acc, key, by=by))
    return await _lifecycle(ui, key, ui.gettext("The process is active."))


@router.post("/processes/{key}/restart")
async def restart(key: str, ui: UiDep) -> HTMLResponse:
    done = await ui.call(lambda acc, by: processes.restart(acc, key, by=by))
    ngettext = i18n.translations(ui.lang).ngettext
    cancelled, deleted = len(done.cancelled), len(done.deleted_tasks)
    message = " ".join(
        (
            ngettext(
                "%(num)s instance cancelled, %(tasks)s.",
                "%(num)s instances cancelled, %(tasks)s.",
                cancelled,
            )
            % {
                "num": cancelled,
                "tasks": ngettext("%(num)s task deleted", "%(num)s tasks deleted", deleted)
                % {"num": deleted},
            },
            ui.gettext("The process is stopped: activate it to start again."),
        )
    )
    return await _lifecycle(ui, key, message)


@router.post("/processes/{key}/start")
async def start(key: str, ui: UiDep) -> HTMLResponse:
    """Start the process on one object with the launch variables of the form."""
    form = await ui.request.form()
    raw_object = form.get("object")
    object_id = raw_object.strip() if isinstance(raw_object, str) and raw_object.strip() else None
    values: dict[str, Any] = {}
    for name, value in form.multi_items():
        if name.startswith("var_") and isinstance(value, str) and value.strip() != "":
            values[name.removeprefix("var_")] = value
    if object_id is not None and len(object_id) > 100:
        return flash_fragment(ui.gettext("object: at most 100 characters"), 422)
    iid = await ui.call(lambda acc, by: processes.start(acc, key, object_id, values, by=by))
    return ui.render("ui/processes/_started.html", key=key, instance_id=iid)


# ---- Variables -----------------------------------------------------------------------------


@router.get("/processes/{key}/variables")
async def variables(key: str, ui: UiDep, instance: Text = None) -> HTMLResponse:
    """The process's variables and counters, and the values of one of its instances."""
    chosen = instance.strip() if instance and instance.strip() else None

    def read(acc: Account, by: str) -> dict[str, Any]:
        ov = _overview(acc, key, by)
        recent = instances.list_instances(acc, process=key, status="running", limit=50, by=by)
        return {"ov": ov, "recent": recent.items}

    data = await ui.call(read)
    view: instances.InstanceView | None = None
    problem: str | None = None
    if chosen is not None:
        try:
            view = await ui.call(lambda acc, by: instances.get_instance(acc, chosen, by=by))
        except FlowlaneError as exc:
            problem = str(exc)
        if view is not None and view.process != key:
            problem = ui.gettext("Instance %(id)s is of another process (%(process)s).") % {
                "id": view.id,
                "process": view.process,
            }
            view = None
    ov: Overview = data["ov"]
    return _process_tabs(
        ui,
        ov,
        "variables",
        recent=data["recent"],
        chosen=chosen or "",
        view=view,
        problem=problem,
    )


# ---- Tasks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskFilters:
    """The filters of the task table, the statistics and the reassignment, as the form sent
    them: ``assignee`` is a user id, :data:`NOBODY` or empty (anyone)."""

    status: str | None = None
    assignee: str | None = None
    object: str | None = None
    open: bool = False
    block: str | None = None

    def query(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "assignee": self.assignee if self.assignee not in (None, NOBODY) else None,
            "unassigned": self.assignee == NOBODY,
            "object_id": self.object,
            "open_only": self.open,
            "block": self.block,
        }

    def args(self) -> dict[str, str]:
        out = {
            "status": self.status,
            "assignee": self.assignee,
            "object": self.object,
            "block": self.block,
        }
        found = {k: v for k, v in out.items() if v}
        return {**found, "open": "1"} if self.open else found


def _filters(
    status: str | None,
    assignee: str | None,
    object_: str | None,
    open_: str | None,
    block: str | None,
) -> TaskFilters:
    def clean(value: str | None) -> str | None:
        return value.strip() if value and value.strip() else None

    return TaskFilters(
        clean(status), clean(assignee), clean(object_), bool(clean(open_)), clean(block)
    )


async def _refused_tab(ui: Ui, key: str, active: str, exc: Forbidden) -> HTMLResponse:
    ov = await ui.call(lambda acc, by: _overview(acc, key, by))
    return _process_tabs(ui, ov, active, refused=str(exc))


@router.get("/processes/{key}/tasks")
async def tasks(
    key: str,
    ui: UiDep,
    status: Text = None,
    assignee: Text = None,
    object: Text = None,
    open: Annotated[str | None, Query(max_length=5)] = None,
    block: Text = None,
    sort: Annotated[str, Query(max_length=20)] = "-created_at",
    page: PageNo = 1,
) -> HTMLResponse:
    """The process's task table (admins, owners, the process's supervisors)."""
    filters = _filters(status, assignee, object, open, block)
    descending = sort.startswith("-")

    def read(acc: Account, by: str) -> dict[str, Any]:
        ov = _overview(acc, key, by)
        found = acc.process_tasks(
            key,
            **filters.query(),
            sort=sort.removeprefix("-"),
            descending=descending,
            page=page,
            size=PAGE_SIZE,
            by=by,
        )
        staff = _staff(acc, by)
        ids = {t.assignee for t in found.tasks if t.assignee}
        stats = acc.task_statistics(key, by=by)
        return {
            "ov": ov,
            "tasks": found.tasks,
            "total": found.total,
            "staff": staff,
            "names": _names(acc, ids, by, dict(staff)),
            "statuses": sorted(stats.by_status),
        }

    try:
        data = await ui.call(read)
    except Forbidden as exc:
        return await _refused_tab(ui, key, "tasks", exc)
    ov = data.pop("ov")
    return _process_tabs(
        ui,
        ov,
        "tasks",
        filters=filters,
        sort=sort,
        sorts=[*TASK_SORTS, *(f"-{s}" for s in TASK_SORTS)],
        page=page,
        pages=max(1, -(-data["total"] // PAGE_SIZE)),
        NOBODY=NOBODY,
        priorities=PRIORITIES,
        **data,
    )


PRIORITIES = ("urgent", "high", "normal", "low")
"""The priorities a task put by hand may get (the process's own when none is chosen)."""


@router.post("/processes/{key}/tasks")
async def add_task(
    key: str,
    ui: UiDep,
    title: Annotated[str, Form(max_length=200)] = "",
    text: Annotated[str, Form(max_length=20_000)] = "",
    object: Annotated[str, Form(max_length=100)] = "",
    assignee: Annotated[str, Form(max_length=100)] = "",
    priority: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Put a task of the process by hand (its executors, supervisors, admins, owners)."""
    if not title.strip():
        return flash_fragment(ui.gettext("title: give the task a title"), 422)
    view = await ui.call(
        lambda acc, by: taskview.add_task(
            acc,
            key,
            object_id=object.strip() or None,
            title=title.strip(),
            text=text,
            assignee=assignee.strip() or None,
            priority=priority.strip() or None,
            by=by,
        )
    )
    response = ui.render("ui/processes/_task_added.html", task=view.task)
    response.headers["HX-Trigger"] = "task-added"
    return response


# ---- Statistics ----------------------------------------------------------------------------


def _grouped(
    stats: tasklists.TaskStatistics, group: str, names: dict[str, str], nobody: str
) -> list[tuple[str, int]]:
    """(label, count) pairs of the statistics grouped by status, assignee or day."""
    if group == "assignee":
        return [(names.get(a, a) if a else nobody, n) for a, n in stats.by_assignee.items()]
    if group == "day":
        return [(d.isoformat(), n) for d, n in sorted(stats.by_day.items())]
    return sorted(stats.by_status.items())


def chart_data(pairs: list[tuple[str, int]], label: str) -> dict[str, Any]:
    """What the page's Chart.js bar chart draws."""
    return {"labels": [p[0] for p in pairs], "counts": [p[1] for p in pairs], "label": label}


async def _statistics_data(ui: Ui, key: str, filters: TaskFilters, group: str) -> dict[str, Any]:
    def read(acc: Account, by: str) -> dict[str, Any]:
        stats = acc.task_statistics(key, **filters.query(), by=by)
        staff = _staff(acc, by)
        ids = {a for a in stats.by_assignee if a}
        by_block = _by_block(acc, key, filters, stats.total, by) if group == "block" else []
        return {
            "stats": stats,
            "staff": staff,
            "names": _names(acc, ids, by, dict(staff)),
            "by_block": by_block,
        }

    data = await ui.call(read)
    if group == "block":
        other = ui.gettext("other blocks (earlier versions)")
        pairs = [(label or other, n) for label, n in data["by_block"]]
    else:
        pairs = _grouped(data["stats"], group, data["names"], ui.gettext("nobody"))
    return {
        **data,
        "pairs": pairs,
        "chart": _script_json(chart_data(pairs, ui.gettext("Tasks"))),
        "group": group,
        "filters": filters,
    }


def _by_block(
    acc: Account, key: str, filters: TaskFilters, total: int, by: str
) -> list[tuple[str | None, int]]:
    """Matching tasks per block of the current version ("name (id)"), one statistics query
    per block; the tasks of blocks no longer in it come last under ``None``."""
    blocks = processes.definition(acc, key).spec.blocks
    wanted = [filters.block] if filters.block else list(blocks)
    out: list[tuple[str | None, int]] = []
    for block_id in wanted:
        query = {**filters.query(), "block": block_id}
        n = acc.task_statistics(key, **query, by=by).total
        if n:
            spec = blocks.get(block_id)
            name = getattr(spec, "name", None)
            out.append((f"{name} ({block_id})" if name else block_id, n))
    rest = total - sum(n for _label, n in out)
    return [*out, (None, rest)] if rest > 0 else out


def _script_json(data: dict[str, Any]) -> Markup:
    """JSON safe inside ``<script type="application/json">`` (no ``</script>`` can end it)."""
    text = json.dumps(data, ensure_ascii=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _group(value: str | None) -> str:
    return value if value in GROUPS else "status"


@router.get("/processes/{key}/statistics")
async def statistics(
    key: str,
    ui: UiDep,
    status: Text = None,
    assignee: Text = None,
    object: Text = None,
    open: Annotated[str | None, Query(max_length=5)] = None,
    block: Text = None,
    group: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    """Tasks by status, assignee or day, the chart, and the bulk reassignment."""
    filters = _filters(status, assignee, object, open, block)
    ov = await ui.call(lambda acc, by: _overview(acc, key, by))
    try:
        data = await _statistics_data(ui, key, filters, _group(group))
    except Forbidden as exc:
        return _process_tabs(ui, ov, "statistics", refused=str(exc))
    fragment = ui.htmx and ui.request.headers.get("HX-Target") == "stats"
    if fragment:
        return ui.render("ui/processes/_stats.html", key=key, ov=ov, **data)
    return _process_tabs(ui, ov, "statistics", NOBODY=NOBODY, groups=GROUPS, **data)


@router.post("/processes/{key}/reassign")
async def reassign(
    key: str,
    ui: UiDep,
    to: Annotated[str, Form(max_length=100)] = "",
    from_: Annotated[str, Form(alias="from", max_length=100)] = "",
    status: Annotated[str, Form(max_length=200)] = "",
    object: Annotated[str, Form(max_length=100)] = "",
    block: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Give the matching tasks to a person or to nobody (admins, owners, supervisors)."""
    target = to.strip()
    if not target:
        return flash_fragment(ui.gettext("to: choose a person or nobody"), 422)
    source = from_.strip()
    count = await ui.call(
        lambda acc, by: acc.reassign(
            key,
            from_=None if source in ("", NOBODY) else source,
            from_given=source != "",
            status=status.strip() or None,
            to=None if target == NOBODY else target,
            object_id=object.strip() or None,
            block=block.strip() or None,
            by=by,
        )
    )
    response = ui.render("ui/processes/_reassigned.html", count=count)
    response.headers["HX-Trigger"] = "tasks-reassigned"
    return response


__all__ = ["chart_data", "launch_lines", "router"]
