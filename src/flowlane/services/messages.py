"""Messages for the UI and the API: the outbox with its delivery state, and the mail sink.

:func:`outbox` lists what processes sent (newest first) with how its delivery went;
:func:`sink_mails` / :func:`sink_mail` read the emails a worker in mail sink mode
(``FLOWLANE_MAIL=sink``) stored instead of sending them.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from flowlane.core.errors import NotFound, Refused
from flowlane.services.account import Account
from flowlane.store.records import DeliveryRecord, SinkMail

__all__ = [
    "CHANNELS",
    "DELIVERY_STATUSES",
    "MAX_PAGE_SIZE",
    "OutboxMessage",
    "SinkMailView",
    "outbox",
    "outbox_message",
    "outbox_total",
    "sink_mail",
    "sink_mails",
    "sink_total",
]

DELIVERY_STATUSES = ("queued", "sent", "failed", "bounced")
"""``queued``: not handed over yet (retries under way); ``sent``; ``failed``: refused for good
or out of retries; ``bounced``: a bounce came back after it was sent."""

CHANNELS = ("email", "inapp", "webhook")
"""The channels a message block sends on."""

MAX_PAGE_SIZE = 200


def _page(page: int, size: int) -> tuple[int, int]:
    if page < 1:
        raise Refused(f"page must be 1 or more, not {page}", parameter="page")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise Refused(f"size must be between 1 and {MAX_PAGE_SIZE}, not {size}", parameter="size")
    return (page - 1) * size, size


def _status(status: str | None) -> None:
    if status is not None and status not in DELIVERY_STATUSES:
        raise Refused(
            f"status must be one of {', '.join(DELIVERY_STATUSES)}, not {status!r}",
            parameter="status",
        )


def _channel(channel: str | None) -> None:
    if channel is not None and channel not in CHANNELS:
        raise Refused(
            f"channel must be one of {', '.join(CHANNELS)}, not {channel!r}",
            parameter="channel",
        )


def outbox(
    account: Account,
    *,
    status: str | None = None,
    page: int = 1,
    size: int = 50,
    channel: str | None = None,
) -> list[DeliveryRecord]:
    """Messages processes sent, newest first, with ``status``, ``attempts``, ``last_error``
    and ``sent_at``; only those with ``status`` (one of :data:`DELIVERY_STATUSES`) and of
    ``channel`` (one of :data:`CHANNELS`) if given."""
    _status(status)
    _channel(channel)
    offset, limit = _page(page, size)
    return account.store.deliveries(status=status, channel=channel, offset=offset, limit=limit)


def outbox_total(account: Account, *, status: str | None = None, channel: str | None = None) -> int:
    """How many messages :func:`outbox` lists over all its pages."""
    _status(status)
    _channel(channel)
    return account.store.count_deliveries(status, channel)


@dataclass(frozen=True)
class OutboxMessage:
    """One message of the outbox: its delivery state and what was sent (``body``: the text
    as rendered; ``task_id``: the task a reply comments on; ``read_at``: read in the app)."""

    delivery: DeliveryRecord
    body: str
    task_id: str | None
    read_at: datetime | None


def outbox_message(account: Account, message_id: str) -> OutboxMessage:
    """The outbox message ``message_id`` with its body and delivery state."""
    found = account.store.deliveries(ids=[message_id], limit=1)
    message = account.store.outbox_message(message_id)
    if not found or message is None:
        raise NotFound(f"no message {message_id!r} in the outbox", message_id=message_id)
    return OutboxMessage(found[0], message.body, message.task_id, message.read_at)


def sink_mails(account: Account, *, page: int = 1, size: int = 50) -> list[SinkMail]:
    """The emails the mail sink stored, newest first (``raw`` is the whole MIME text)."""
    offset, limit = _page(page, size)
    return account.store.sink_mails(offset=offset, limit=limit)


def sink_total(account: Account) -> int:
    """How many emails the mail sink holds."""
    return account.store.count_sink_mails()


@dataclass(frozen=True)
class SinkMailView:
    """One stored email, parsed for reading: ``html`` is None for a plain-text email."""

    id: int
    outbox_id: str
    message_id: str
    stored_at: datetime
    from_: str
    to: str
    subject: str
    text: str
    html: str | None


def _part(msg: EmailMessage, subtype: str) -> str | None:
    part = msg.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return None
    return str(part.get_content())


def sink_mail(account: Account, mail_id: int) -> SinkMailView:
    """The stored email ``mail_id``, parsed: from, to, subject, text and HTML bodies."""
    mail = account.store.sink_mail(mail_id)
    if mail is None:
        raise NotFound(f"no stored email {mail_id}", mail=mail_id)
    msg = email.message_from_string(mail.raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return SinkMailView(
        id=mail.id,
        outbox_id=mail.outbox_id,
        message_id=mail.message_id,
        stored_at=mail.stored_at,
        from_=str(msg["From"] or ""),
        to=str(msg["To"] or ""),
        subject=str(msg["Subject"] or ""),
        text=_part(msg, "plain") or "",
        html=_part(msg, "html"),
    )
