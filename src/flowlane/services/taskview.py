"""What the API shows of tasks, forms, hooks and the outbox, with who may see it.

* :func:`task_view` — one task as its page shows it, with the workflow transitions the
  person may make now (:func:`transitions_for`, the rules of
  :func:`flowlane.engine.taskrules.check_transition`).
* :func:`attachment` — a task's file: its metadata and bytes.
* :func:`forms_list` / :func:`form_spec` / :func:`submit_as_staff` — the account's public
  forms for staff, and a submission sent by an integration with a staff token.
* :func:`hooks` — every inbound webhook key a process launches on, with its signed URL.
* :func:`outbox_page` / :func:`outbox_message` — the outbox with delivery state and its
  total, one message with its body (admins, owners).

Every check goes through :mod:`flowlane.services.permissions`; ``by=None`` is the system.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowlane.core.errors import Forbidden, Invalid, NotFound, Refused, TooManyRequests
from flowlane.engine.taskrules import check_transition
from flowlane.model.form import duration_of
from flowlane.services import forms, inbound, messages, permissions
from flowlane.store.records import DeliveryRecord, SinkMail, TaskRecord

if TYPE_CHECKING:
    from flowlane.services.account import Account

WEBHOOK_PREFIX = "webhook:"


@dataclass(frozen=True, slots=True)
class Transition:
    """A status the person may move the task to now; ``comment_required`` when only a
    transition that needs a comment allows it."""

    to: str
    comment_required: bool


@dataclass(frozen=True, slots=True)
class TaskView:
    task: TaskRecord
    transitions: list[Transition]


def task_by_id(account: Account, task_id: str) -> TaskRecord:
    task = account.store.get_task(task_id)
    if task is None:
        raise NotFound(f"task {task_id} does not exist", task=task_id)
    return task


def transitions_for(account: Account, task: TaskRecord, user_id: str | None) -> list[Transition]:
    """The workflow statuses ``user_id`` may move the open task to now (none for a closed
    task, a task without workflow, or the system)."""
    if task.workflow is None or task.closed or user_id is None:
        return []
    if not permissions.can(account, user_id, "work_with_tasks") and (
        permissions.person(account, user_id).role != "client"
    ):
        return []
    targets: list[str] = []
    for tr in task.workflow.get("transitions", []):
        sources = tr["from"] if isinstance(tr["from"], list) else [tr["from"]]
        if task.status in sources and tr["to"] not in targets:
            targets.append(str(tr["to"]))
    out = []
    for target in targets:

        def check(comment: str | None, to: str = target) -> bool:
            try:
                check_transition(
                    task.workflow or {},
                    current=task.status,
                    target=to,
                    user_id=user_id,
                    assignee=task.assignee,
                    comment=comment,
                    users_of=account.members_for(user_id),
                )
            except Refused:
                return False
            return True

        if check("-"):
            out.append(Transition(target, comment_required=not check(None)))
    return out


def task_view(account: Account, task_id: str, *, by: str | None) -> TaskView:
    """The task for those who may act on it (assignee, executors, supervisors, admins,
    owners), with the transitions ``by`` may make."""
    task = task_by_id(account, task_id)
    account.check_actor(task, by, "see")
    return TaskView(task, transitions_for(account, task, by))


def _after(account: Account, task_id: str, by: str | None) -> TaskView:
    """The task after ``by`` acted on it (they did: no second check, they may have given
    it away)."""
    task = task_by_id(account, task_id)
    return TaskView(task, transitions_for(account, task, by))


def claim(account: Account, task_id: str, *, by: str) -> TaskView:
    account.claim(task_by_id(account, task_id), by=by)
    return _after(account, task_id, by)


def unclaim(account: Account, task_id: str, *, by: str) -> TaskView:
    account.unclaim(task_by_id(account, task_id), by=by)
    return _after(account, task_id, by)


def answer(
    account: Account, task_id: str, option: str | None, fields: dict[str, Any], *, by: str
) -> TaskView:
    account.answer(task_by_id(account, task_id), option=option, fields=fields, by=by)
    return _after(account, task_id, by)


def change_status(
    account: Account, task_id: str, to: str, comment: str | None, *, by: str
) -> TaskView:
    account.change_status(task_by_id(account, task_id), to, by=by, comment=comment)
    return _after(account, task_id, by)


def add_task(
    account: Account,
    process: str,
    *,
    object_id: str | None,
    title: str,
    text: str,
    assignee: str | None,
    priority: str | None,
    by: str,
) -> TaskView:
    """Put a task of the process by hand (see :meth:`Account.add_task`); the task."""
    made = account.add_task(
        process,
        object_id=object_id,
        title=title,
        text=text,
        assignee=assignee,
        priority=priority,
        by=by,
    )
    return _after(account, made.id, by)


def comments(account: Account, task_id: str, *, by: str | None) -> list[dict[str, Any]]:
    """The task's comments in order (for those who may act on it)."""
    return list(task_view(account, task_id, by=by).task.comments)


def add_comment(account: Account, task_id: str, text: str, *, by: str) -> dict[str, Any]:
    """Comment on the task; the comment as kept."""
    account.comment(task_by_id(account, task_id), text, by=by)
    return dict(task_by_id(account, task_id).comments[-1])


def attach(
    account: Account,
    task_id: str,
    filename: str,
    content: bytes,
    *,
    content_type: str | None,
    by: str,
) -> dict[str, Any]:
    """Attach an uploaded file (limits: ``account.attachment_limits``); its metadata."""
    task = task_by_id(account, task_id)
    return account.attach(task, filename, content, by=by, content_type=content_type)


def history(account: Account, task_id: str, *, by: str | None) -> list[dict[str, Any]]:
    return account.task_history(task_id, by=by)


def variables(account: Account, task_id: str, *, by: str | None) -> dict[str, dict[str, Any]]:
    return account.task_variables(task_by_id(account, task_id), by=by)


def set_variables(
    account: Account, task_id: str, values: dict[str, Any], *, by: str
) -> dict[str, dict[str, Any]]:
    """Fill process variables from the task; the variables after."""
    account.set_task_variables(task_by_id(account, task_id), values, by=by)
    return account.task_variables(task_by_id(account, task_id), by=None)


def attachment(
    account: Account, task_id: str, attachment_id: str, *, by: str | None
) -> tuple[dict[str, Any], bytes]:
    """A task's file: its metadata (name, content type, size) and its bytes."""
    content = account.attachment_content(task_id, attachment_id, by=by)
    task = task_by_id(account, task_id)
    meta = next(m for m in task.attachments if m["id"] == attachment_id)
    return meta, content


# ---- forms and hooks -----------------------------------------------------------------------


def _staff(account: Account, by: str | None, what: str) -> None:
    if by is None:
        return
    who = permissions.person(account, by)
    if who.role == "client":
        raise Forbidden(f"{by} (client) may not {what}", action="staff")


@dataclass(frozen=True, slots=True)
class FormInfo:
    key: str
    title: str
    type: str | None
    mode: str
    url: str | None
    """The public page (None for a form opened only through signed links)."""


def forms_list(account: Account, public_url: str, *, by: str | None) -> list[FormInfo]:
    """The account's forms, sorted by key (staff)."""
    _staff(account, by, "list the forms")
    base = public_url.rstrip("/")
    return [
        FormInfo(
            key=key,
            title=spec.title or key,
            type=spec.type,
            mode=spec.mode,
            url=f"{base}/forms/{key}" if spec.mode == "create" else None,
        )
        for key, spec in sorted(account.store.forms.items())
    ]


def form_spec(account: Account, key: str, *, by: str | None) -> dict[str, Any]:
    """The form's spec as JSON (staff)."""
    _staff(account, by, f"read form {key}")
    spec = account.store.forms.get(key)
    if spec is None:
        raise NotFound(f"form {key!r} does not exist", form=key)
    return spec.model_dump(mode="json")


def submit_as_staff(
    account: Account, key: str, data: Mapping[str, str], *, address: str, by: str
) -> forms.FormResult:
    """Submit form ``key`` as an integration would, with a staff token: the visitor rules
    of :func:`flowlane.services.forms.submit_form` apply (honeypot, rate limit per address).
    Refused: :class:`Invalid` with the errors per input, :class:`TooManyRequests` over the
    rate limit. Runs its own units of work (a refused submission still counts toward the
    limit): call it outside ``Account.attempt``."""
    spec: list[Any] = []

    def check() -> None:
        _staff(account, by, f"submit form {key}")
        found = account.store.forms.get(key)
        if found is None:
            raise NotFound(f"form {key!r} does not exist", form=key)
        if found.mode == "update":
            raise Refused(f"form {key!r} is submitted only through a signed link", form=key)
        spec[:] = [found]

    account.attempt(check)
    result = forms.submit_form(account, key, data, address=address)
    if result.rate_limited:
        per = int(duration_of(spec[0].rate_limit.per).total_seconds())
        raise TooManyRequests(result.message, retry_after=per, form=key)
    if not result.ok:
        errors = {name or "form": text for name, text in result.errors.items()}
        where = ", ".join(sorted(errors))
        raise Invalid(f"form {key}: {where}: {result.message}", errors=errors)
    return result


@dataclass(frozen=True, slots=True)
class HookInfo:
    key: str
    processes: list[str]
    url: str


def hooks(account: Account, public_url: str, *, by: str | None) -> list[HookInfo]:
    """Every ``webhook:<key>`` a deployed process launches on, with its signed URL (admins
    and owners: anyone with the URL can fire the hook)."""
    permissions.require(account, by, "read_messages", "list the inbound webhooks")
    found: dict[str, list[str]] = {}
    for pkey in account.store.process_keys():
        d = account.store.definition(pkey)
        launch = d.spec.launch if d is not None else None
        event = launch.event if launch is not None else None
        if event and event.startswith(WEBHOOK_PREFIX):
            found.setdefault(event[len(WEBHOOK_PREFIX) :], []).append(pkey)
    secret = account.links.secret
    return [
        HookInfo(key, sorted(procs), inbound.hook_url(public_url, secret, key))
        for key, procs in sorted(found.items())
    ]


# ---- the outbox ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxPage:
    items: list[DeliveryRecord]
    total: int


def outbox_page(
    account: Account,
    *,
    status: str | None,
    page: int,
    size: int,
    by: str | None,
    channel: str | None = None,
) -> OutboxPage:
    """A page of the outbox (newest first) and how many messages match (admins, owners)."""
    permissions.require(account, by, "read_messages", "read the outbox")
    items = messages.outbox(account, status=status, channel=channel, page=page, size=size)
    return OutboxPage(items, messages.outbox_total(account, status=status, channel=channel))


def outbox_message(account: Account, message_id: str, *, by: str | None) -> messages.OutboxMessage:
    """One message of the outbox with its body and delivery state (admins, owners)."""
    permissions.require(account, by, "read_messages", "read the outbox")
    return messages.outbox_message(account, message_id)


def require_messages(account: Account, by: str | None, what: str) -> None:
    """Admins and owners read the outbox and the mail sink."""
    permissions.require(account, by, "read_messages", what)


@dataclass(frozen=True, slots=True)
class SinkPage:
    items: list[SinkMail]
    total: int


def sink_page(account: Account, *, page: int, size: int, by: str | None) -> SinkPage:
    """A page of the mail sink (newest first) and how many mails it holds (admins, owners)."""
    require_messages(account, by, "read the mail sink")
    items = messages.sink_mails(account, page=page, size=size)
    return SinkPage(items, messages.sink_total(account))


def sink_mail(account: Account, mail_id: int, *, by: str | None) -> messages.SinkMailView:
    """One email of the mail sink, parsed (admins, owners)."""
    require_messages(account, by, "read the mail sink")
    return messages.sink_mail(account, mail_id)
