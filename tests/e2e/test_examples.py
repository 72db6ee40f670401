"""The ready-made examples (SCENARIOS.md S6, ``recipes/examples``) end to end: objects made
and changed through the HTTP API of a live server, the worker run at virtual times, the
emails received by a real SMTP server and the discounts, tasks and instances read back
through the API. One test per process: the birthday discount, the reminder before a purchase
expires, the staff notification of a large order and the assignment reminders ending in a
curator's task."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.message import Message
from typing import Any

import httpx
import pytest
from tests.live import Live, text_of
from tests.smtp_sink import SmtpSink

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def _ok(response: httpx.Response, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


def _mails(smtp: SmtpSink, n: int) -> list[Message]:
    """Exactly ``n`` emails received so far (waiting for them to arrive)."""
    assert smtp.wait_for(n, timeout=10), [m["Subject"] for m in smtp.messages]
    time_for_more = smtp.wait_for(n + 1, timeout=0.3)
    assert not time_for_more, [m["Subject"] for m in smtp.messages]
    return smtp.messages


def _instance(api: httpx.Client, process: str, object_id: str) -> dict[str, Any]:
    page = _ok(api.get("/instances", params={"process": process, "object": object_id}))
    [found] = page["items"]
    assert isinstance(found, dict)
    return found


def _task(api: httpx.Client, process: str, block: str, object_id: str) -> dict[str, Any]:
    page = _ok(
        api.get("/tasks", params={"process": process, "block": block, "object_id": object_id})
    )
    [found] = page["items"]
    assert isinstance(found, dict)
    return found


@pytest.fixture
def live(live_server: Callable[..., Live]) -> Live:
    return live_server("examples")


def test_a_client_gets_a_birthday_discount_code_by_email_once(live: Live, smtp: SmtpSink) -> None:
    client = live.users["client"]
    # the hourly checks of the next day cover the calendar day of now + 12 h (born in a
    # leap year, so that 29 February works too)
    day = (live.now() + 12 * HOUR).astimezone(live.store.tz).date()
    birthday = day.replace(year=1992)
    with live.api("owner") as owner:
        _ok(owner.patch(f"/users/{client}", json={"birthday": birthday.isoformat()}))
        _ok(owner.patch(f"/users/{live.users['manager']}", json={"birthday": birthday.isoformat()}))
    live.advance(DAY)
    live.work()

    [mail] = _mails(smtp, 1)  # the client's only: staff get no birthday discount
    with live.api("owner") as owner:
        [discount] = _ok(owner.get("/objects", params={"type": "discount"}))["items"]
        fields = discount["fields"]
        assert fields["client"] == client
        assert fields["percent"] == 15 and fields["reason"] == "birthday"
        assert fields["code"].startswith("BDAY") and fields["code"].endswith("-CLIENT")
        given = _instance(owner, "birthday-discount", client)
        assert (given["status"], given["result"]) == ("ended", "discount_created")
    assert mail["To"] == f"{client}@example.com"
    assert f"15 % off with code {fields['code']}" in str(mail["Subject"])
    body = text_of(mail)
    assert fields["code"] in body and "happy birthday" in body
    assert fields["valid_until"] in body

    # the rest of the day and the next days: nothing more
    live.advance(2 * DAY)
    live.work()
    _mails(smtp, 1)
    with live.api("owner") as owner:
        assert _ok(owner.get("/objects", params={"type": "discount"}))["total"] == 1


def test_a_purchase_is_reminded_three_days_before_its_end_unless_renewed(
    live: Live, smtp: SmtpSink
) -> None:
    client = live.users["client"]
    ends = live.now() + 5 * DAY
    with live.api("owner") as owner:
        for pid, number in (("p1", "P-1"), ("p2", "P-2")):
            data = {
                "number": number,
                "status": "active",
                "offer": "Yoga course",
                "client": client,
                "expires": ends.isoformat(),
            }
            _ok(owner.post("/objects", json={"type": "purchase", "id": pid, "data": data}), 201)
    live.work()
    live.advance(DAY)
    with live.api("owner") as owner:  # P-2 renewed for a month before its reminder
        renewed = (ends + 30 * DAY).isoformat()
        _ok(owner.patch("/objects/p2", json={"set": {"expires": renewed}}))
    live.advance(DAY + HOUR)  # two days before the end is passed: P-1's reminder
    live.work()

    [reminder] = _mails(smtp, 1)
    assert reminder["To"] == f"{client}@example.com"
    assert str(reminder["Subject"]) == "Your access to Yoga course ends in 3 days"
    assert "P-1" in text_of(reminder)

    live.advance(3 * DAY)
    live.work()
    [_, ended] = _mails(smtp, 2)
    assert str(ended["Subject"]) == "Your access to Yoga course has ended"
    assert "P-1" in text_of(ended)
    with live.api("owner") as owner:
        p1 = _instance(owner, "purchase-expiry-reminder", "p1")
        assert (p1["status"], p1["outcome"], p1["result"]) == ("ended", "negative", "expired")
        p2 = _instance(owner, "purchase-expiry-reminder", "p2")
        assert p2["status"] == "running"
        assert [t["block"] for t in p2["tokens"]] == ["until_reminder"]


def test_a_large_order_is_announced_to_the_sales_heads_with_a_call_task(
    live: Live, smtp: SmtpSink
) -> None:
    heads = [live.users["owner"], live.users["admin"]]
    manager, client = live.users["manager"], live.users["client"]
    with live.api("owner") as owner:
        for head in heads:
            _ok(owner.patch(f"/users/{head}", json={"groups": ["sales-heads"]}))
        small = {"number": "A-1", "amount": 49999, "client": client, "manager": manager}
        _ok(owner.post("/objects", json={"type": "order", "id": "small", "data": small}), 201)
        big = {"number": "A-2", "amount": 75000, "client": client, "manager": manager}
        _ok(owner.post("/objects", json={"type": "order", "id": "big", "data": big}), 201)
    live.work()

    announced = _mails(smtp, 2)
    assert sorted(str(m["To"]) for m in announced) == sorted(f"{h}@example.com" for h in heads)
    for mail in announced:
        assert str(mail["Subject"]) == "Large order A-2: 75000"
        assert "Kira Client" in text_of(mail) and "Mila Manager" in text_of(mail)
    with live.api("manager") as mila:
        [task] = [t for t in _ok(mila.get("/inbox"))["items"] if t["object_id"] == "big"]
        assert task["block"] == "call_by_manager" and task["assignee"] == manager
        assert task["title"] == "Call Kira Client about large order A-2"

    live.advance(DAY)
    with live.api("manager") as mila:
        _ok(mila.patch("/objects/big", json={"set": {"status": "paid", "paid_amount": 75000}}))
        _ok(mila.post(f"/tasks/{task['id']}/status", json={"to": "done"}))
    live.work()
    paid = _mails(smtp, 4)[2:]
    assert sorted(str(m["To"]) for m in paid) == sorted(f"{h}@example.com" for h in heads)
    assert {str(m["Subject"]) for m in paid} == {"Large order A-2 is paid"}
    with live.api("owner") as owner:
        alert = _instance(owner, "large-order-alert", "big")
        assert (alert["status"], alert["result"]) == ("ended", "paid")
        assert _ok(owner.get("/instances", params={"process": "large-order-alert"}))["total"] == 1
        closed = _task(owner, "large-order-alert", "call_by_manager", "big")
        assert closed["status"] == "done" and closed["closed"]


def test_a_student_is_reminded_twice_then_the_curator_gets_a_task(
    live: Live, smtp: SmtpSink
) -> None:
    student, curator = live.users["client"], live.users["employee"]
    data = {"student": student, "lesson": "Lesson 3: Breathing", "curator": curator}
    with live.api("owner") as owner:
        _ok(
            owner.post("/objects", json={"type": "lesson_progress", "id": "lp1", "data": data}), 201
        )
    live.work()
    live.advance(3 * DAY + HOUR)
    live.work()
    [first] = _mails(smtp, 1)
    assert first["To"] == f"{student}@example.com"
    assert str(first["Subject"]) == "Reminder: the assignment of Lesson 3: Breathing"

    live.advance(4 * DAY)
    live.work()
    [_, last] = _mails(smtp, 2)
    assert str(last["Subject"]) == "Last reminder: the assignment of Lesson 3: Breathing"
    assert "Egor Employee" in text_of(last)  # the curator named in the last reminder

    live.advance(3 * DAY)
    live.work()
    with live.api("employee") as egor:
        [task] = [t for t in _ok(egor.get("/inbox"))["items"] if t["object_id"] == "lp1"]
        assert task["block"] == "curator_talks" and task["assignee"] == curator
    # the student hands in: the process ends and the curator's task is closed
    with live.api("owner") as owner:
        _ok(owner.patch("/objects/lp1", json={"set": {"assignment_done": True}}))
    live.work()
    _mails(smtp, 2)
    with live.api("owner") as owner:
        done = _instance(owner, "assignment-reminder", "lp1")
        assert (done["status"], done["outcome"], done["result"]) == ("ended", "positive", "done")
        closed = _task(owner, "assignment-reminder", "curator_talks", "lp1")
        assert closed["closed"] and closed["status"] != "done"
    with live.api("employee") as egor:
        assert not [t for t in _ok(egor.get("/inbox"))["items"] if t["object_id"] == "lp1"]
