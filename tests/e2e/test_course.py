"""The online course (recipes/course, SCENARIOS.md S1) end to end: a live server's HTTP API,
its inbound hook, and a worker that sends through a real SMTP server.

* S1.1: a purchase posted to the hook ``course-purchase`` -> the owner answers *yes* through
  the API -> the welcome email reaches the SMTP server with the login and a password that
  logs in.
* S1.2: the owner starts the webinar through the API with its launch variables; one day
  before it the reminders go out (not a minute earlier), one hour after its start the
  homework task and email go to the user of ``with-homework`` only; the client moves the
  status through the API (a skipped step refused), the owner sends it back with a comment,
  is emailed the client's comment, and completes it.
* S1.3: a broadcast to a group emails its users.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from email.message import Message

import httpx
import pytest
from tests.live import Live, text_of
from tests.smtp_sink import SmtpSink

from flowlane.services.inbound import hook_token
from flowlane.services.signing import account_secret


def mails_to(smtp: SmtpSink, address: str) -> list[Message]:
    return [m for m in smtp.messages if m["To"] == address]


def open_task(api: httpx.Client, process: str, block: str) -> dict[str, object]:
    got = api.get("/tasks", params={"process": process, "block": block, "open": True})
    assert got.status_code == 200, got.text
    (task,) = got.json()["items"]
    assert isinstance(task, dict)
    return task


def test_a_purchase_by_webhook_confirmed_by_the_owner_welcomes_with_a_working_password(
    live_server: Callable[..., Live], smtp: SmtpSink
) -> None:
    live = live_server("course")
    token = hook_token(account_secret(live.store), "course-purchase")
    purchase = {"name": "Nina Novak", "email": "nina@example.com", "ticket": "with-homework"}
    posted = httpx.post(f"{live.url}/hooks/course-purchase?token={token}", json=purchase)
    assert posted.status_code == 200, posted.text
    assert len(posted.json()["started"]) == 1

    with live.api("owner") as api:
        check = open_task(api, "welcome", "check")
        assert check["assignee"] == live.users["owner"]
        answered = api.post(f"/tasks/{check['id']}/answer", json={"option": "yes"})
        assert answered.status_code == 200, answered.text
    live.work()
    assert smtp.wait_for(1, timeout=10)
    (mail,) = mails_to(smtp, "nina@example.com")
    assert mail["Subject"] == "Welcome to Python from scratch"
    text = text_of(mail)
    assert "Login: nina@example.com" in text
    found = re.search(r"Password: (\S+)", text)
    assert found is not None, text
    with httpx.Client(base_url=f"{live.url}/api/v1") as web:
        wrong = web.post("/auth/login", json={"email": "nina@example.com", "password": "x" * 12})
        assert wrong.status_code in (401, 403), wrong.text
        login = web.post(
            "/auth/login", json={"email": "nina@example.com", "password": found.group(1)}
        )
        assert login.status_code == 200, login.text
        user = login.json()["user"]
    assert (user["name"], user["role"], user["groups"]) == (
        "Nina Novak",
        "client",
        ["with-homework"],
    )


def _groups(live: Live) -> None:
    """The seeded client joins ``with-homework``; Wanda (watch-only) is added."""
    acc = live.account()

    def change() -> None:
        acc.update_object(live.users["client"], {"groups": ["with-homework"]})
        acc.create_object(
            "user",
            {"name": "Wanda Watcher", "email": "wanda@example.com", "groups": ["watch-only"]},
            object_id="wanda",
        )

    acc.attempt(change)


def test_a_webinar_reminds_everyone_and_gives_homework_that_the_owner_completes(
    live_server: Callable[..., Live], smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = live_server("course", setup=_groups)
    # the worker makes the task links from FLOWLANE_PUBLIC_URL, as `flowlane worker` does
    monkeypatch.setenv("FLOWLANE_PUBLIC_URL", live.url)
    client_mail = "client@example.com"
    webinar_at = (live.now() + timedelta(days=3)).replace(second=0, microsecond=0)
    launch = {
        "webinar_at": webinar_at.isoformat(),
        "topic": "Loops",
        "link": "https://meet.example/loops",
        "homework": "Write a loop that counts to ten.",
    }
    with live.api("client") as api:
        refused = api.post("/processes/webinar/start", json={"vars": launch})
        assert refused.status_code == 403, refused.text
    with live.api("owner") as api:
        started = api.post("/processes/webinar/start", json={"vars": launch})
        assert started.status_code == 201, started.text

    # one day before, to the minute
    live.advance(webinar_at - timedelta(days=1, minutes=1) - live.now())
    live.work()
    assert smtp.messages == []
    live.advance(timedelta(minutes=2))
    live.work()
    assert smtp.wait_for(2, timeout=10)
    assert sorted(m["To"] for m in smtp.messages) == [client_mail, "wanda@example.com"]
    (reminder,) = mails_to(smtp, "wanda@example.com")
    assert reminder["Subject"] == "Tomorrow: webinar Loops"
    text = text_of(reminder)
    assert "https://meet.example/loops" in text
    assert webinar_at.astimezone(live.store.tz).strftime("%d.%m.%Y at %H:%M") in text

    # one hour after the start: homework for the user of with-homework only
    live.advance(webinar_at + timedelta(minutes=59) - live.now())
    live.work()
    assert len(smtp.messages) == 2
    live.advance(timedelta(minutes=2))
    live.work()
    assert smtp.wait_for(3, timeout=10)
    (homework_mail,) = [m for m in smtp.messages if m["Subject"] == "Homework: Loops"]
    assert homework_mail["To"] == client_mail
    assert str(homework_mail["Reply-To"]).startswith("reply+")
    text = text_of(homework_mail)
    assert "Write a loop that counts to ten." in text
    link = re.search(rf"{re.escape(live.url)}/tasks/(\S+)", text)
    assert link is not None, text
    task_id = link.group(1)
    with live.api("owner") as api:
        task = open_task(api, "webinar-homework", "homework")
    assert (task["id"], task["assignee"], task["status"]) == (
        task_id,
        live.users["client"],
        "new",
    )
    assert mails_to(smtp, "wanda@example.com") == [reminder]

    status = f"/tasks/{task_id}/status"
    with live.api("client") as client:
        skipped = client.post(status, json={"to": "done"})
        assert skipped.status_code == 409, skipped.text
        assert "no transition from 'new' to 'done'" in skipped.json()["detail"]
        for to in ("in_progress", "done"):
            moved = client.post(status, json={"to": to})
            assert moved.status_code == 200, moved.text
            assert moved.json()["status"] == to
        not_hers = client.post(status, json={"to": "completed"})
        assert not_hers.status_code == 403, not_hers.text
        assert "allowed: role:owner" in not_hers.json()["detail"]
    with live.api("owner") as owner:  # S1.2 step 6: what awaits the owner's review
        review = owner.get("/tasks", params={"process": "webinar-homework", "status": "done"})
        assert review.status_code == 200, review.text
        assert [t["id"] for t in review.json()["items"]] == [task_id]
    with live.api("admin") as admin:
        refused = admin.post(status, json={"to": "completed"})
        assert refused.status_code == 403, refused.text
        assert "allowed: role:owner" in refused.json()["detail"]
    with live.api("owner") as owner:
        bare = owner.post(status, json={"to": "in_progress"})
        assert bare.status_code == 409, bare.text
        assert "a comment is required" in bare.json()["detail"]
        back = owner.post(status, json={"to": "in_progress", "comment": "Count to ten, not nine."})
        assert back.status_code == 200, back.text
    with live.api("client") as client:
        said = client.post(f"/tasks/{task_id}/comments", json={"text": "Fixed, see line 3."})
        assert said.status_code == 201, said.text
        assert client.post(status, json={"to": "done"}).status_code == 200
    live.work()
    assert smtp.wait_for(5, timeout=10)
    (note,) = mails_to(smtp, "owner@example.com")
    assert note["Subject"] == "New comment on task: Do homework: Loops"
    assert "Fixed, see line 3." in text_of(note)
    assert any(m["Subject"].startswith("New comment") for m in mails_to(smtp, client_mail))
    with live.api("owner") as owner:
        done = owner.post(status, json={"to": "completed"})
        assert done.status_code == 200, done.text
        assert done.json()["closed"] is True


def test_a_broadcast_emails_every_user_of_the_group(
    live_server: Callable[..., Live], smtp: SmtpSink
) -> None:
    live = live_server("course", setup=_groups)
    with live.api("owner") as api:
        sent = api.post(
            "/processes/broadcast/start",
            json={
                "vars": {
                    "group": "watch-only",
                    "subject": "The webinar moved to Friday",
                    "text": "The webinar on loops moves to Friday, 19:00.",
                }
            },
        )
        assert sent.status_code == 201, sent.text
        unknown = api.post(
            "/processes/broadcast/start",
            json={"vars": {"group": "vip", "subject": "x", "text": "y"}},
        )
        assert unknown.status_code == 409, unknown.text
        assert "field 'group': 'vip' is not one of" in unknown.json()["detail"]
    live.work()
    assert smtp.wait_for(1, timeout=10)
    (mail,) = smtp.messages
    assert (mail["To"], mail["Subject"]) == ("wanda@example.com", "The webinar moved to Friday")
    assert "moves to Friday, 19:00." in text_of(mail)
