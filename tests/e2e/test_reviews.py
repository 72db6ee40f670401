"""The review collection recipe (SCENARIOS.md S4, ``recipes/reviews``) end to end: contracts
made through the HTTP API of a live server, the daily check run by the worker, the manager's
answer through the API, the client's email received by a real SMTP server, its signed link
opened and submitted over HTTP as a browser does, the notifications by email and the
quality-control task read back through the API. A used, tampered or expired link shows only
"Oops, something went wrong" and changes nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.live import Live, text_of
from tests.smtp_sink import SmtpSink

from flowlane.services.links import OOPS

FILTERS = Path(__file__).resolve().parents[2] / "recipes" / "reviews" / "filters"
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def _link(live: Live, mail: Message) -> str:
    found = re.search(re.escape(live.url) + r"(/l/[A-Za-z0-9_.=-]+)", text_of(mail))
    assert found is not None, text_of(mail)
    return found.group(1)


def _ok(response: httpx.Response, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


def _setup(live: Live, api: httpx.Client) -> None:
    """The director (the owner, in group directors) and the department headed by the admin."""
    _ok(api.patch(f"/users/{live.users['owner']}", json={"groups": ["directors"]}))
    department = {"name": "Website development", "head": live.users["admin"]}
    body = {"type": "department", "id": "dev", "data": {**department, "form": "review-development"}}
    _ok(api.post("/objects", json=body), 201)


def _contract(live: Live, api: httpx.Client, cid: str, number: str, emails: list[str]) -> None:
    data = {
        "number": number,
        "customer": "Acme",
        "status": "in_work",
        "billing": "subscription",
        "service": "site_support",
        "department": "dev",
        "manager": live.users["manager"],
        "signed": (live.now() - 40 * DAY).date().isoformat(),
        "client_emails": emails,
    }
    _ok(api.post("/objects", json={"type": "contract", "id": cid, "data": data}), 201)


def _review_of(api: httpx.Client, contract: str) -> dict[str, Any]:
    page = _ok(
        api.get("/objects", params={"type": "review", "where": f"object.contract == '{contract}'"})
    )
    [review] = page["items"]
    assert isinstance(review, dict)
    return review


def _fields(api: httpx.Client, object_id: str) -> dict[str, Any]:
    card = _ok(api.get(f"/objects/{object_id}"))
    fields = card["object"]["fields"]
    assert isinstance(fields, dict)
    return fields


def _status(api: httpx.Client, review_id: str) -> str:
    return str(_fields(api, review_id)["status"])


def _choose_email_task(api: httpx.Client, review_id: str) -> dict[str, Any]:
    inbox = _ok(api.get("/inbox"))["items"]
    [task] = [t for t in inbox if t["block"] == "choose_email" and t["object_id"] == review_id]
    assert isinstance(task, dict)
    return task


def _submit(client: httpx.Client, path: str, values: dict[str, str]) -> httpx.Response:
    """Open the form and post it as a browser does: its hidden inputs and the typed values."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    return client.post(path, data={**dict(HIDDEN.findall(page.text)), **values})


@pytest.fixture
def live(live_server: Callable[..., Live], monkeypatch: pytest.MonkeyPatch) -> Live:
    server = live_server("reviews")
    monkeypatch.setenv("FLOWLANE_PUBLIC_URL", server.url)  # what the worker makes links with
    return server


def test_a_negative_review_from_the_emailed_link_notifies_and_opens_quality_control(
    live: Live, smtp: SmtpSink
) -> None:
    with live.api("owner") as owner:
        _setup(live, owner)
        _contract(live, owner, "c1", "C-1", ["boss@acme.example", "office@acme.example"])
        assert _ok(owner.get("/objects", params={"type": "review"}))["total"] == 0

    # the daily check finds the contract (signed 40 days ago): a review and the manager's task
    live.advance(DAY + HOUR)
    live.work()
    with live.api("owner") as owner:
        review = _review_of(owner, "c1")
        rid = review["id"]
        assert review["fields"]["status"] == "request_sent"
        contract = _fields(owner, "c1")
        # today in the account's zone, when the check ran (up to the hour advanced ago)
        days = {(live.now() - h).astimezone(live.store.tz).date() for h in (timedelta(), HOUR)}
        assert contract["last_review"] in {d.isoformat() for d in days}
    with live.api("manager") as manager:
        task = _choose_email_task(manager, rid)
        shown = _ok(manager.get(f"/tasks/{task['id']}"))
        assert "1. boss@acme.example" in str(shown) and "2. office@acme.example" in str(shown)
        _ok(
            manager.post(
                f"/tasks/{task['id']}/answer", json={"option": "send", "fields": {"number": 2}}
            )
        )
    live.work()

    # the client's email: service, contract number, the signed link
    assert smtp.wait_for(1, timeout=10)
    [mail] = smtp.messages
    assert mail["To"] == "office@acme.example"
    assert "C-1" in str(mail["Subject"])
    body = text_of(mail)
    assert "site support" in body and "C-1" in body
    path = _link(live, mail)
    with live.api("owner") as owner:
        assert _status(owner, rid) == "link_sent"

    with httpx.Client(base_url=live.url, timeout=30) as browser:
        page = browser.get(path)
        assert page.status_code == 200, page.text
        assert "Your review: Website development" in page.text
        assert 'name="rating"' in page.text
        with live.api("owner") as owner:
            assert _status(owner, rid) == "link_opened"

        sent = _submit(browser, path, {"rating": "1", "text": "Nobody answered for a week"})
        assert sent.status_code == 200, sent.text
        assert "Thank you for your review!" in sent.text
        with live.api("owner") as owner:
            fields = _fields(owner, rid)
            assert (fields["status"], fields["rating"]) == ("received", 1)

        # the same link again, and a tampered one: only "Oops", nothing changes
        for again in (browser.get(path), browser.post(path, data={"rating": "5"})):
            assert again.status_code == 404
            assert OOPS in again.text and "used" not in again.text
        payload, _, signature = path.removeprefix("/l/").partition(".")
        tampered = f"/l/{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
        response = browser.get(tampered)
        assert response.status_code == 404 and OOPS in response.text
    with live.api("owner") as owner:
        fields = _fields(owner, rid)
        assert (fields["status"], fields["rating"]) == ("received", 1)

    # the manager, the department head and the director are told; quality control for the head
    live.work()
    assert smtp.wait_for(4, timeout=10)
    told = sorted(str(m["To"]) for m in smtp.messages[1:])
    assert told == sorted(f"{live.users[r]}@example.com" for r in ("manager", "admin", "owner"))
    assert all("C-1: 1 of 5" in str(m["Subject"]) for m in smtp.messages[1:])
    assert "Nobody answered for a week" in text_of(smtp.messages[1])
    with live.api("owner") as owner:
        tasks = _ok(owner.get("/tasks", params={"process": "review-received", "open": True}))
        [qc] = tasks["items"]
        assert (qc["block"], qc["object_id"], qc["assignee"]) == (
            "quality_control",
            rid,
            live.users["admin"],
        )
        negative = yaml.safe_load((FILTERS / "negative.yaml").read_text())
        found = _ok(owner.post("/objects/search", json={"type": "review", "filter": negative}))
        assert [r["id"] for r in found["items"]] == [rid]


def test_a_positive_review_only_notifies_and_an_expired_link_changes_nothing(
    live: Live, smtp: SmtpSink
) -> None:
    with live.api("owner") as owner:
        _setup(live, owner)
        _contract(live, owner, "c2", "C-2", [])
        _contract(live, owner, "c3", "C-3", ["team@beta.example"])
    live.advance(DAY + HOUR)
    live.work()
    with live.api("owner") as owner:
        r2, r3 = _review_of(owner, "c2")["id"], _review_of(owner, "c3")["id"]
    with live.api("manager") as manager:
        # no known email for C-2: the manager types one; C-3 takes the first known one
        new = {"option": "send", "fields": {"new_email": "new@gamma.example"}}
        _ok(manager.post(f"/tasks/{_choose_email_task(manager, r2)['id']}/answer", json=new))
        _ok(
            manager.post(
                f"/tasks/{_choose_email_task(manager, r3)['id']}/answer", json={"option": "send"}
            )
        )
    live.work()
    assert smtp.wait_for(2, timeout=10)
    mails = {str(m["To"]): m for m in smtp.messages}
    assert sorted(mails) == ["new@gamma.example", "team@beta.example"]

    with httpx.Client(base_url=live.url, timeout=30) as browser:
        sent = _submit(browser, _link(live, mails["new@gamma.example"]), {"rating": "5"})
        assert sent.status_code == 200, sent.text
    live.work()
    assert smtp.wait_for(5, timeout=10)
    assert all("C-2: 5 of 5" in str(m["Subject"]) for m in smtp.messages[2:])
    with live.api("owner") as owner:
        assert _status(owner, r2) == "received"
        tasks = _ok(owner.get("/tasks", params={"process": "review-received"}))
        assert tasks["total"] == 0  # no quality-control task for a 5
        waiting = yaml.safe_load((FILTERS / "waiting-for-client.yaml").read_text())
        found = _ok(owner.post("/objects/search", json={"type": "review", "filter": waiting}))
        assert [r["id"] for r in found["items"]] == [r3]

    # 31 days later C-3's link has expired: "Oops", and the review stays as it was
    live.advance(31 * DAY)
    with httpx.Client(base_url=live.url, timeout=30) as browser:
        expired = browser.get(_link(live, mails["team@beta.example"]))
        assert expired.status_code == 404
        assert OOPS in expired.text
    with live.api("owner") as owner:
        assert _status(owner, r3) == "link_sent"
