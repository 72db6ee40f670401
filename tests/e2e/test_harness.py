"""The end-to-end harness itself: a live server answers its API with the seeded users'
tokens, a change through the API launches a process, and the worker hands its email to the
real SMTP server."""

from __future__ import annotations

from collections.abc import Callable

from tests.live import Live
from tests.smtp_sink import SmtpSink


def test_an_order_put_in_work_through_the_api_emails_its_manager(
    live_server: Callable[..., Live], smtp: SmtpSink
) -> None:
    live = live_server("launches")
    with live.api("owner") as api:
        me = api.get("/me")
        assert me.status_code == 200, me.text
        assert me.json()["id"] == live.users["owner"]
        made = api.post(
            "/objects",
            json={
                "type": "order",
                "id": "o-77",
                "data": {"number": "A-77", "status": "new", "manager": live.users["manager"]},
            },
        )
        assert made.status_code == 201, made.text
        moved = api.patch("/objects/o-77", json={"set": {"status": "in_work"}})
        assert moved.status_code == 200, moved.text
    live.work()
    assert smtp.wait_for(1, timeout=10)
    [mail] = smtp.messages
    assert mail["To"] == "manager@example.com"
    assert mail["Subject"] == "Order A-77 is in work"
