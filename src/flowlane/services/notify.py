"""In-app notifications for staff: read a person's feed, count the unread, mark them read.

A person's feed holds the messages of channel ``inapp`` sent to them (message blocks with
``channel: inapp``) and the system notifications addressed to them (e.g. of a new comment on
their task). A notification is one outbox row: it is emailed to the person's address and
shown in the app from the same row, which carries the in-app read state (``read_at``), so
scenario ``notifications`` expectations count it once.

A person reads only their own feed; those who may ``read_messages`` (admins and owners,
:mod:`flowlane.services.permissions`) may read (and mark) anyone's; others are refused with
:class:`~flowlane.core.errors.Forbidden`. ``by=None`` is the system itself (no check), as
elsewhere in the services.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from flowlane.core.errors import NotFound, ValidationError
from flowlane.services import permissions
from flowlane.services.account import Account
from flowlane.store.records import MessageRecord

__all__ = ["MAX_PAGE_SIZE", "InappPage", "inapp_for", "mark_read", "unread_count"]

MAX_PAGE_SIZE = 200


@dataclass(frozen=True, slots=True)
class InappPage:
    """One page of a feed, newest first; ``total`` counts every page, ``unread`` the feed's
    unread messages (whatever the filter)."""

    items: list[MessageRecord]
    total: int
    page: int
    size: int
    unread: int


def _check_reader(account: Account, user_id: str, by: str | None, what: str) -> None:
    rec = account.store.get_object(user_id)
    if rec is None or rec.type != "user":
        raise NotFound(f"user {user_id!r} does not exist")
    if by is None or by == user_id:
        return
    permissions.require(account, by, "read_messages", f"{what} the in-app messages of {user_id}")


def inapp_for(
    account: Account,
    user_id: str,
    *,
    unread_only: bool = False,
    page: int = 1,
    size: int = 50,
    by: str | None,
) -> InappPage:
    """Page ``page`` (from 1) of ``user_id``'s feed, ``size`` messages a page."""
    if page < 1:
        raise ValidationError(f"page must be 1 or more, got {page}", parameter="page")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValidationError(
            f"size must be between 1 and {MAX_PAGE_SIZE}, got {size}", parameter="size"
        )
    _check_reader(account, user_id, by, "read")
    items, total = account.store.inapp_messages(
        user_id, unread_only=unread_only, offset=(page - 1) * size, limit=size
    )
    unread = total if unread_only else account.store.inapp_unread(user_id)
    return InappPage(items, total, page, size, unread)


def unread_count(account: Account, user_id: str, *, by: str | None) -> int:
    """How many of ``user_id``'s feed are unread (the badge)."""
    _check_reader(account, user_id, by, "read")
    return account.store.inapp_unread(user_id)


def mark_read(
    account: Account,
    user_id: str,
    ids: Collection[str] | Literal["all"],
    *,
    by: str | None,
) -> list[str]:
    """Mark messages of ``user_id``'s feed read (``"all"``: every unread one); the ids that
    were unread, sorted. An id not in the feed is refused and nothing is marked."""
    _check_reader(account, user_id, by, "mark")
    if isinstance(ids, str) and ids != "all":
        raise ValidationError(f"ids must be a list of message ids or 'all', got {ids!r}")
    wanted = None if isinstance(ids, str) else sorted(set(ids))
    if wanted is not None and not wanted:
        raise ValidationError("mark_read needs message ids or 'all'", parameter="ids")
    marked: list[str] = []

    def run() -> None:
        if wanted is not None:
            found, _ = account.store.inapp_messages(user_id, ids=wanted)
            missing = sorted(set(wanted) - {m.id for m in found})
            if missing:
                raise NotFound(f"user {user_id} has no in-app message {', '.join(missing)}")
        marked[:] = account.store.mark_inapp_read(user_id, wanted, account.now)

    account.attempt(run)
    return marked
