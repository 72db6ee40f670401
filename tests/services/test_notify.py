"""In-app notifications: the store's feed and read state (a contract on every store) and the
services over it (services/notify.py): who may read whose feed, paging, marking read.

The feed of a person holds the ``inapp`` messages sent to them and the system notifications
addressed to them (one row each: a comment notification is emailed and shown in the app from
the same row, so scenario ``notifications`` counts stay what they were).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from flowlane.core.errors import Forbidden, NotFound, Refused, ValidationError
from flowlane.model.definition import Definition
from flowlane.model.recipe import Recipe, load_recipe, parse_process
from flowlane.model.yamlio import parse_text
from flowlane.runtime.simulate import Database, build_account
from flowlane.services import notify
from flowlane.services.account import Account
from flowlane.store.base import Store
from flowlane.store.memory import MemoryStore
from flowlane.store.records import MessageRecord
from flowlane.store.sql import open_store

TZ = ZoneInfo("Europe/Moscow")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)
RECIPES = Path(__file__).resolve().parents[2] / "recipes"


class Boom(Exception):
    """Raised inside a transaction to make it roll back."""


# ---- the store contract -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def order_recipe() -> Recipe:
    return load_recipe(RECIPES / "order-processing")


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, order_recipe: Recipe, tmp_path: Path) -> Iterator[Store]:
    assert order_recipe.schema is not None
    schema = copy.deepcopy(order_recipe.schema)
    opened: Store
    if request.param == "memory":
        opened = MemoryStore(schema, tz=TZ)
    elif request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path}/x.db", schema, tz=TZ, reset=True)
    else:
        opened = open_store(request.getfixturevalue("pg_database"), schema, tz=TZ, reset=True)
    try:
        yield opened
    finally:
        opened.close()


def _msg(mid: str, channel: str, recipient: str | None, minutes: int = 0) -> MessageRecord:
    return MessageRecord(
        id=mid,
        instance_id="i1",
        process="p",
        block="b",
        channel=channel,
        to=recipient or "x@example.org",
        recipient=recipient,
        subject=f"subject {mid}",
        body=f"body {mid}",
        created_at=T0 + timedelta(minutes=minutes),
    )


def _fill(store: Store) -> None:
    with store.transaction():
        store.add_message(_msg("m1", "inapp", "kate"))
        store.add_message(_msg("m2", "email", "kate"))  # an email: not in the app
        store.add_notification(_msg("n1", "email", "kate"))  # a notification: in the app
        store.add_message(_msg("m3", "inapp", "sam"))
        store.add_notification(_msg("n2", "email", "sam"))
        store.add_message(_msg("m4", "inapp", "kate"))  # same time as m1: newer by order
        store.add_message(_msg("m5", "webhook", None))


def _ids(found: tuple[list[MessageRecord], int]) -> tuple[list[str], int]:
    return [m.id for m in found[0]], found[1]


def test_feed_holds_inapp_messages_and_notifications_newest_first(store: Store) -> None:
    _fill(store)
    assert _ids(store.inapp_messages("kate")) == (["m4", "n1", "m1"], 3)
    assert _ids(store.inapp_messages("sam")) == (["n2", "m3"], 2)
    assert _ids(store.inapp_messages("nobody")) == ([], 0)
    assert _ids(store.inapp_messages("kate", offset=1, limit=1)) == (["n1"], 3)
    assert _ids(store.inapp_messages("kate", offset=3, limit=5)) == ([], 3)
    assert _ids(store.inapp_messages("kate", ids=["m1", "m3", "m2", "zz"])) == (["m1"], 1)
    [_, n1, m1] = store.inapp_messages("kate")[0]
    assert (n1.channel, n1.subject, n1.body, n1.read_at) == ("email", "subject n1", "body n1", None)
    assert m1.created_at == T0 and m1.status == "sent"
    assert store.inapp_unread("kate") == 3


def test_marking_read_sets_read_at_once_and_only_in_the_feed(store: Store) -> None:
    _fill(store)
    at = T0 + timedelta(hours=1)
    with store.transaction():
        assert store.mark_inapp_read("kate", ["m1", "m2", "m3", "zz"], at) == ["m1"]
    assert store.inapp_unread("kate") == 2
    assert store.inapp_unread("sam") == 2  # m3 is sam's: left alone
    assert _ids(store.inapp_messages("kate", unread_only=True)) == (["m4", "n1"], 2)
    [read] = store.inapp_messages("kate", ids=["m1"])[0]
    assert read.read_at == at
    later = at + timedelta(hours=1)
    with store.transaction():
        assert store.mark_inapp_read("kate", ["m1"], later) == []  # read already
        assert store.mark_inapp_read("kate", None, later) == ["m4", "n1"]
    assert store.inapp_unread("kate") == 0
    assert store.inapp_messages("kate", ids=["m1"])[0][0].read_at == at
    assert store.inapp_messages("kate", ids=["n1"])[0][0].read_at == later
    # the notification is still the one notification it was, now read
    assert [m.id for m in store.notifications()] == ["n1", "n2"]


def test_a_rolled_back_mark_leaves_everything_unread(store: Store) -> None:
    _fill(store)
    with pytest.raises(Boom), store.transaction():
        assert store.mark_inapp_read("kate", None, T0) == ["m1", "m4", "n1"]
        raise Boom
    assert store.inapp_unread("kate") == 3
    assert all(m.read_at is None for m in store.inapp_messages("kate")[0])


# ---- the services -----------------------------------------------------------------------------

PROCESS = """
key: review
name: Review an order
object: order
task:
  supervisors: ["user:sam"]
blocks:
  start: {type: start, next: hello}
  hello:
    type: message
    channel: inapp
    to: ["user:kate", "user:sam"]
    subject: "Order {{ object.number }} to check"
    body: "Please check it today"
    next: check
  check:
    type: question
    title: "Check order {{ object.number }}"
    assign: "user:kate"
    options: {ok: done}
  done: {type: end, outcome: positive}
"""


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def account(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Account]:
    """The review process started on order o1: an in-app message to kate and sam, then a task
    for kate (sam supervises); olga is the owner, ivan a manager with no part in it, and
    anna a client."""
    db = None
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'notify.db'}")
    elif request.param == "postgresql":
        db = Database(request.getfixturevalue("pg_database"))
    acc = build_account(load_recipe(RECIPES / "launches"), T0, TZ, None, db)
    try:

        def fixtures() -> None:
            for uid, role in [
                ("kate", "manager"),
                ("sam", "manager"),
                ("olga", "owner"),
                ("ivan", "manager"),
                ("anna", "client"),
            ]:
                acc.create_object(
                    "user",
                    {"name": uid.title(), "email": f"{uid}@shop.example", "role": role},
                    object_id=uid,
                )
            acc.create_object("order", {"number": "A-1", "status": "new"}, object_id="o1")
            spec, problems = parse_process(parse_text(PROCESS, source="p.yaml"), source="p.yaml")
            assert spec is not None, problems
            acc.deploy(Definition.build(spec, source="p.yaml"))
            acc.start("review", "o1", by="olga")

        acc.attempt(fixtures)
        yield acc
    finally:
        acc.store.close()


def _do(account: Account, action: Callable[[], object]) -> None:
    def run() -> None:
        action()

    account.attempt(run)


def _comment(account: Account, text: str, by: str) -> None:
    task = account.open_task("check", "o1", process="review")
    _do(account, lambda: account.comment(task, text, by=by))


def test_a_comment_reaches_the_feed_as_its_one_notification(account: Account) -> None:
    before = len(account.store.notifications())
    _comment(account, "looks fine", by="sam")
    notes = account.store.notifications()[before:]
    assert [(n.recipient, n.channel) for n in notes] == [("kate", "email")]  # one row, emailed
    page = notify.inapp_for(account, "kate", by="kate")
    assert [(m.channel, m.subject) for m in page.items] == [
        ("email", "New comment on task: Check order A-1"),
        ("inapp", "Order A-1 to check"),
    ]
    assert (page.total, page.unread, page.page, page.size) == (2, 2, 1, 50)
    assert notify.unread_count(account, "kate", by="kate") == 2
    assert notify.unread_count(account, "sam", by="sam") == 1  # the in-app message only


def test_marking_read_by_id_and_all(account: Account) -> None:
    _comment(account, "looks fine", by="sam")
    [comment, hello] = notify.inapp_for(account, "kate", by="kate").items
    assert notify.mark_read(account, "kate", [hello.id], by="kate") == [hello.id]
    assert notify.unread_count(account, "kate", by="kate") == 1
    unread = notify.inapp_for(account, "kate", unread_only=True, by="kate")
    assert [m.id for m in unread.items] == [comment.id] and unread.unread == 1
    assert notify.mark_read(account, "kate", "all", by="kate") == [comment.id]
    assert notify.mark_read(account, "kate", "all", by="kate") == []
    feed = notify.inapp_for(account, "kate", by="kate")
    assert feed.unread == 0 and all(m.read_at == T0 for m in feed.items)


def test_paging(account: Account) -> None:
    for n in range(3):
        _comment(account, f"note {n}", by="sam")
    first = notify.inapp_for(account, "kate", page=1, size=2, by="kate")
    second = notify.inapp_for(account, "kate", page=2, size=2, by="kate")
    third = notify.inapp_for(account, "kate", page=3, size=2, by="kate")
    assert (first.total, len(first.items), len(second.items), third.items) == (4, 2, 2, [])
    assert [m.body for m in first.items + second.items] == [
        "note 2",
        "note 1",
        "note 0",
        "Please check it today",
    ]
    with pytest.raises(ValidationError, match="page must be 1 or more"):
        notify.inapp_for(account, "kate", page=0, by="kate")
    with pytest.raises(ValidationError, match="size must be between 1 and 200"):
        notify.inapp_for(account, "kate", size=500, by="kate")


def test_only_the_person_or_an_admin_reads_and_marks_a_feed(account: Account) -> None:
    assert len(notify.inapp_for(account, "kate", by="olga").items) == 1  # the owner may
    for by in ("ivan", "sam", "anna"):
        with pytest.raises(Forbidden, match=f"{by} .* may not read the in-app messages of kate"):
            notify.inapp_for(account, "kate", by=by)
        with pytest.raises(Forbidden, match="may not read"):
            notify.unread_count(account, "kate", by=by)
        with pytest.raises(Forbidden, match="may not mark"):
            notify.mark_read(account, "kate", "all", by=by)
    with pytest.raises(Refused, match="'nobody' does not exist"):
        notify.inapp_for(account, "kate", by="nobody")
    with pytest.raises(NotFound, match="user 'ghost' does not exist"):
        notify.unread_count(account, "ghost", by="olga")
    assert notify.unread_count(account, "kate", by="kate") == 1  # nothing was marked
    assert notify.mark_read(account, "kate", "all", by="olga") != []
    assert notify.unread_count(account, "kate", by="kate") == 0


def test_a_bad_id_marks_nothing(account: Account) -> None:
    _comment(account, "looks fine", by="sam")
    [comment, hello] = notify.inapp_for(account, "kate", by="kate").items
    sams = notify.inapp_for(account, "sam", by="sam").items[0].id
    with pytest.raises(NotFound, match=f"kate has no in-app message {sams}"):
        notify.mark_read(account, "kate", [hello.id, sams], by="kate")
    with pytest.raises(NotFound, match="no in-app message nope"):
        notify.mark_read(account, "kate", [comment.id, "nope"], by="kate")
    with pytest.raises(ValidationError, match="needs message ids"):
        notify.mark_read(account, "kate", [], by="kate")
    with pytest.raises(ValidationError, match="ids must be a list"):
        notify.mark_read(account, "kate", "some", by="kate")
    assert notify.unread_count(account, "kate", by="kate") == 2
    assert notify.mark_read(account, "kate", [hello.id, hello.id], by="kate") == [hello.id]
