"""S5 end to end (recipes/events): an event made through the HTTP API passes the readiness
guard; two people register through the public form page over HTTP (GET with the event id,
POST like a browser); the confirmations and the reminders 3 days and 1 day before reach the
real SMTP server at the right virtual times, with the event type's text; one guest is marked
attended; closing the event sends the materials to the attendee only."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from email.message import Message

import httpx
from tests.live import Live, text_of
from tests.smtp_sink import SmtpSink

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def _register(live: Live, event_id: str, name: str, email: str) -> None:
    """Open the form page with the event id and post it back as a browser would."""
    with httpx.Client(base_url=live.url, timeout=30) as web:
        page = web.get("/forms/registration", params={"event": event_id})
        assert page.status_code == 200, page.text
        assert "I agree to the processing of my personal data" in page.text
        hidden = dict(HIDDEN.findall(page.text))
        assert hidden["event"] == event_id
        data = {**hidden, "name": name, "email": email}
        refused = web.post("/forms/registration", data=data)  # no consent: refused
        assert refused.status_code == 422
        assert "Please give your consent" in refused.text
        sent = web.post("/forms/registration", data={**data, "consent": "yes"})
        assert sent.status_code == 200, sent.text
        assert "You are registered" in sent.text


def _delivered(smtp: SmtpSink, count: int) -> list[Message]:
    assert smtp.wait_for(count, timeout=10), [m["Subject"] for m in smtp.messages]
    mails = smtp.messages
    assert len(mails) == count, [m["Subject"] for m in mails]
    return mails


def _stage(api: httpx.Client, object_id: str) -> str:
    got = api.get(f"/objects/{object_id}")
    assert got.status_code == 200, got.text
    return str(got.json()["object"]["stage"])


def _registration_of(api: httpx.Client, email: str) -> str:
    found = api.get("/objects", params={"type": "registration", "size": 50})
    assert found.status_code == 200, found.text
    (oid,) = [o["id"] for o in found.json()["items"] if o["fields"].get("email") == email]
    return str(oid)


def test_an_event_from_registration_to_materials_over_http(
    live_server: Callable[..., Live], smtp: SmtpSink
) -> None:
    live = live_server("events")
    manager = live.users["manager"]
    start = (live.now() + timedelta(days=10)).replace(microsecond=0)
    with live.api("manager") as api:
        made = api.post(
            "/objects",
            json={
                "type": "event",
                "id": "meetup",
                "data": {
                    "title": "Spring meetup",
                    "kind": "hybrid",
                    "start": start.isoformat(),
                    "address": "Nevsky pr. 1",
                    "online_link": "https://meet.example/spring",
                    "seats": 1,
                    "responsible": manager,
                },
            },
        )
        assert made.status_code == 201, made.text
        assert made.json()["stage"] == "preparation"  # intake
        moved = api.post("/objects/meetup/stage", json={"to": "registration"})
        assert moved.status_code == 200, moved.text  # the readiness guard lets it through
        assert moved.json() == {"moved": True, "stage": "registration"}

    _register(live, "meetup", "Ann Guest", "ann@guests.example")
    _register(live, "meetup", "Ben Guest", "ben@guests.example")
    live.work()
    # two confirmations, and the responsible told once that the one seat is exceeded
    mails = _delivered(smtp, 3)
    by_to = {(m["To"], m["Subject"]) for m in mails}
    assert by_to == {
        ("ann@guests.example", "You are registered: Spring meetup"),
        ("ben@guests.example", "You are registered: Spring meetup"),
        (f"{manager}@example.com", "Spring meetup: more registrations than seats"),
    }
    confirmation = next(m for m in mails if m["To"] == "ann@guests.example")
    text = text_of(confirmation)
    assert "Hello Ann Guest" in text
    assert "Nevsky pr. 1" in text and "https://meet.example/spring" in text  # hybrid: both
    with live.api("manager") as api:
        event = api.get("/objects/meetup").json()["object"]["fields"]
        assert event["registrations"] == 2

    # nothing more until 3 days before the start
    live.advance(timedelta(days=6, hours=23))
    live.work()
    assert not smtp.wait_for(4, timeout=0.5)
    live.advance(timedelta(hours=1, minutes=1))
    live.work()
    reminders = _delivered(smtp, 5)[3:]
    assert {(m["To"], m["Subject"]) for m in reminders} == {
        ("ann@guests.example", "In 3 days: Spring meetup"),
        ("ben@guests.example", "In 3 days: Spring meetup"),
    }
    assert "https://meet.example/spring" in text_of(reminders[0])

    live.advance(timedelta(days=2))
    live.work()
    tomorrow = _delivered(smtp, 7)[5:]
    assert {(m["To"], m["Subject"]) for m in tomorrow} == {
        ("ann@guests.example", "Tomorrow: Spring meetup"),
        ("ben@guests.example", "Tomorrow: Spring meetup"),
    }

    # the event takes place: Ann checks in, Ben does not come
    live.advance(timedelta(days=1, hours=2))
    with live.api("manager") as api:
        ann = _registration_of(api, "ann@guests.example")
        ben = _registration_of(api, "ben@guests.example")
        assert (_stage(api, ann), _stage(api, ben)) == ("waiting", "waiting")
        checked_in = api.post(f"/objects/{ann}/stage", json={"to": "attended"})
        assert checked_in.status_code == 200, checked_in.text
        closed = api.post("/objects/meetup/stage", json={"to": "materials"})
        assert closed.status_code == 200, closed.text
        assert (_stage(api, ann), _stage(api, ben)) == ("waiting_materials", "no_show")
    live.work()
    (ask,) = _delivered(smtp, 8)[7:]
    assert ask["To"] == f"{manager}@example.com"
    assert ask["Subject"] == "Spring meetup is closed: enter the materials link"

    with live.api("manager") as api:
        link = api.patch(
            "/objects/meetup", json={"set": {"materials_link": "https://files.example/spring"}}
        )
        assert link.status_code == 200, link.text
        assert (_stage(api, ann), _stage(api, ben)) == ("processed", "no_show")
        assert _stage(api, "meetup") == "feedback"
    live.work()
    (materials,) = _delivered(smtp, 9)[8:]
    assert materials["To"] == "ann@guests.example"
    assert materials["Subject"] == "Materials of Spring meetup"
    assert "https://files.example/spring" in text_of(materials)
    # Ben got nothing after the reminders
    assert [m["Subject"] for m in smtp.messages if m["To"] == "ben@guests.example"] == [
        "You are registered: Spring meetup",
        "In 3 days: Spring meetup",
        "Tomorrow: Spring meetup",
    ]
