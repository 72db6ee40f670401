"""S3 end to end (recipe ``order-processing``): a new order created through the HTTP API of a
live server waits a minute for payment, a sales manager takes it through the API, there is
no phone, the client gets the request for a phone at the real SMTP server; five days later
the control call; then the client pays and the process ends positive."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from tests.live import Live
from tests.smtp_sink import SmtpSink


def _sales(live: Live) -> None:
    """The seeded manager sells: the orders' tasks are for group ``sales``."""
    acc = live.account()
    acc.attempt(lambda: acc.update_object(live.users["manager"], {"groups": ["sales"]}))


def _open_tasks(api: httpx.Client, order: str) -> list[dict[str, Any]]:
    found = api.get("/tasks", params={"process": "new-order", "object_id": order, "open": True})
    assert found.status_code == 200, found.text
    items: list[dict[str, Any]] = found.json()["items"]
    return items


def test_an_order_without_a_phone_through_the_api_and_smtp(
    live_server: Callable[..., Live], smtp: SmtpSink
) -> None:
    live = live_server("order-processing", setup=_sales)
    manager = live.users["manager"]
    with live.api("owner") as owner, live.api("manager") as api:
        made = owner.post(
            "/objects",
            json={
                "type": "order",
                "id": "o-1",
                "data": {
                    "number": "A-1",
                    "status": "new",
                    "client": live.users["client"],
                    "amount": 100,
                },
            },
        )
        assert made.status_code == 201, made.text
        live.work()
        assert _open_tasks(owner, "o-1") == []  # a minute to pay first
        live.advance(timedelta(minutes=1, seconds=5))
        live.work()
        [take] = _open_tasks(owner, "o-1")
        assert take["block"] == "take" and take["title"] == "Take order A-1?"
        inbox = api.get("/inbox")
        assert inbox.status_code == 200 and take["id"] in [t["id"] for t in inbox.json()["items"]]

        taken = api.post(f"/tasks/{take['id']}/answer", json={"option": "yes"})
        assert taken.status_code == 200, taken.text
        order = owner.get("/objects/o-1").json()["object"]
        assert (
            order["fields"]["status"] == "not_confirmed" and order["fields"]["manager"] == manager
        )
        [ask] = _open_tasks(owner, "o-1")
        assert ask["block"] == "ask_phone" and ask["assignee"] == manager
        sent = api.post(f"/tasks/{ask['id']}/answer", json={"option": "send"})
        assert sent.status_code == 200, sent.text
        live.work()
        assert smtp.wait_for(1, timeout=10)
        [mail] = smtp.messages
        assert mail["To"] == "client@example.com"
        assert "A-1: what phone number can we call you on" in str(mail["Subject"])

        # five days without a phone: delayed; three days later the control call
        live.advance(timedelta(days=5))
        live.work()
        assert owner.get("/objects/o-1").json()["object"]["fields"]["status"] == "delayed"
        live.advance(timedelta(days=3))
        live.work()
        [control] = _open_tasks(owner, "o-1")
        assert control["block"] == "control_call" and control["assignee"] == manager

        # the client pays: the whole process ends positive, the control call is withdrawn
        paid = owner.patch("/objects/o-1", json={"set": {"status": "paid"}})
        assert paid.status_code == 200, paid.text
        live.work()
        assert _open_tasks(owner, "o-1") == []
        found = owner.get("/instances", params={"process": "new-order", "object": "o-1"})
        assert found.status_code == 200, found.text
        [instance] = found.json()["items"]
        assert (instance["status"], instance["outcome"], instance["result"]) == (
            "ended",
            "positive",
            "paid",
        )
    assert len(smtp.messages) == 1
