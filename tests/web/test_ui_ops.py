"""The operations pages over TestClient: incidents with retry and cancel, the instance page
with its trace, the outbox and a message, the mail sink with a mail's HTML in a sandboxed
frame, the in-app feed with the bell; refusals for a client and an employee without rights.

Incidents are made for real: a process whose operation makes the user's email from their
name fails while the name has a space in it ("kira client@school.example" is no email);
fixing the cause is renaming the user."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from fastapi.testclient import TestClient
from tests.api.conftest import API
from tests.web.ui_helpers import login

from flowlane.services.account import Account
from flowlane.store.records import SinkMail
from flowlane.web.ui.ops import Pager

Headers = Callable[[str], dict[str, str]]
HX = {"HX-Request": "true"}

FRAGILE = """\
key: fragile
name: Fragile share
object: user
variables:
  note: {type: string}
  api_key: {type: string}
blocks:
  start: {type: start, next: calc}
  calc: {type: operation, set: {email: "=lower(object.name) + '@school.example'"}, next: done}
  done: {type: end, outcome: positive, result: computed}
"""

GREET = """\
key: greet
name: Greet a client
object: user
blocks:
  start: {type: start, next: mail}
  mail:
    type: message
    channel: email
    to: client
    subject: "Welcome, {{ object.name }}"
    body: "Hello **{{ object.name }}**, your course starts on Monday."
    next: note
  note:
    type: message
    channel: inapp
    to: "user:owner"
    subject: "{{ object.name }} was greeted"
    body: "The welcome email went to {{ object.email }}."
    next: review
  review:
    type: task
    title: "Call {{ object.name }}"
    assign: "user:manager"
    wait: true
    next: done
  done: {type: end, outcome: positive}
"""


def _deploy(client: TestClient, headers: Headers, text: str) -> None:
    r = client.post(
        f"{API}/processes", content=text, headers={**headers("owner"), "Content-Type": "text/yaml"}
    )
    assert r.status_code == 201, r.text


def _start(client: TestClient, headers: Headers, process: str, **vars_: Any) -> str:
    r = client.post(
        f"{API}/processes/{process}/start",
        json={"object": "client", "vars": vars_},
        headers=headers("owner"),
    )
    assert r.status_code == 201, r.text
    iid: str = r.json()["instance_id"]
    return iid


def _incident(client: TestClient, headers: Headers) -> str:
    _deploy(client, headers, FRAGILE)
    return _start(client, headers, "fragile", note="first try", api_key="sk-secret")


def _fix_the_cause(account: Callable[[], Account]) -> None:
    acc = account()
    acc.attempt(lambda: acc.update_object("client", {"name": "Kira"}))


def _row(page: str, instance_id: str) -> str:
    found = re.search(rf'<tr id="incident-{instance_id}".*?</tr>', page, re.S)
    assert found is not None, page
    return found.group(0)


def test_incident_list_retry_fails_again_then_succeeds(
    client: TestClient, headers: Headers, account: Callable[[], Account], store: Any
) -> None:
    iid = _incident(client, headers)
    csrf = login(client, "owner")
    page = client.get("/incidents")
    assert page.status_code == 200, page.text
    row = _row(page.text, iid)
    assert '<a href="/processes/fragile">fragile</a>' in row
    assert "<code>calc</code>" in row
    assert "is not an email address" in row
    assert '<a href="/objects/user/client">client</a>' in row
    assert f'hx-post="/incidents/{iid}/retry"' in row and "hx-confirm=" in row
    assert "1 open incident" in page.text
    # the filter by process
    other = client.get("/incidents", params={"process": "homework"})
    # (ids as rows: a bare "i1" may occur in the page's random CSRF token)
    assert f'id="incident-{iid}"' not in other.text and "No open incidents" in other.text
    assert f'id="incident-{iid}"' in client.get("/incidents", params={"process": "fragile"}).text

    # retry while the cause is still there: a new incident in the row
    first_at = store.incidents(open_only=True)[0].at
    again = client.post(f"/incidents/{iid}/retry", headers={**HX, "X-CSRF-Token": csrf})
    assert again.status_code == 200, again.text
    assert again.text.lstrip().startswith(f'<tr id="incident-{iid}"')
    assert 'data-status="incident"' in again.text and "<code>calc</code>" in again.text
    assert [i.resolved for i in store.incidents()] == [True, False]
    assert store.incidents(open_only=True)[0].at >= first_at

    # fix the cause, retry: the row says it went through; the list is empty afterwards
    _fix_the_cause(account)
    done = client.post(f"/incidents/{iid}/retry", headers={**HX, "X-CSRF-Token": csrf})
    assert done.status_code == 200, done.text
    assert 'data-status="ended"' in done.text
    assert "The retry went through: the instance has ended." in done.text
    assert store.get_instance(iid).status == "ended"
    assert f'id="incident-{iid}"' not in client.get("/incidents").text

    # retry of an instance without an incident: the service refuses, in #flash form
    refused = client.post(f"/incidents/{iid}/retry", headers={**HX, "X-CSRF-Token": csrf})
    assert refused.status_code == 409
    assert '<div class="flash error" role="alert">' in refused.text
    assert "has no incident" in refused.text
    # without the CSRF token nothing happens
    assert client.post(f"/incidents/{iid}/retry", headers=HX).status_code == 403


def test_cancel_from_the_incident_list_and_plain_form_fallback(
    client: TestClient, headers: Headers, store: Any
) -> None:
    iid = _incident(client, headers)
    csrf = login(client, "admin")
    res = client.post(f"/incidents/{iid}/cancel", headers={**HX, "X-CSRF-Token": csrf})
    assert res.status_code == 200, res.text
    assert 'data-status="cancelled"' in res.text and "The instance was cancelled." in res.text
    assert store.get_instance(iid).status == "cancelled"
    assert store.incidents(open_only=True) == []
    # a plain form post (no htmx) goes back to the list
    again = client.post(
        f"/incidents/{iid}/cancel", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert again.status_code == 409  # cancelled already: the error page says why
    assert "only a running one is cancelled" in again.text


def test_incident_refusals_for_client_and_employee(client: TestClient, headers: Headers) -> None:
    iid = _incident(client, headers)
    login(client, "client")
    assert client.get("/incidents").status_code == 403
    assert client.get(f"/instances/{iid}").status_code == 403
    client.cookies.clear()
    csrf = login(client, "employee-plain")
    page = client.get("/incidents")
    assert page.status_code == 200  # employees see processes and incidents
    row = _row(page.text, iid)
    assert "hx-post" not in row and "Only admins and owners retry or cancel." in row
    refused = client.post(f"/incidents/{iid}/retry", headers={**HX, "X-CSRF-Token": csrf})
    assert refused.status_code == 403 and 'class="flash error"' in refused.text
    refused = client.post(f"/incidents/{iid}/cancel", headers={**HX, "X-CSRF-Token": csrf})
    assert refused.status_code == 403
    instance = client.get(f"/instances/{iid}")
    assert instance.status_code == 200 and "hx-post" not in instance.text


def test_instance_page_with_trace_tasks_and_actions(
    client: TestClient, headers: Headers, account: Callable[[], Account], store: Any
) -> None:
    iid = _incident(client, headers)
    csrf = login(client, "owner")
    page = client.get(f"/instances/{iid}")
    assert page.status_code == 200, page.text
    text = page.text
    assert '<a href="/processes/fragile">fragile</a>' in text
    assert '<a href="/objects/user/client">client</a>' in text
    assert "Stopped by an incident" in text and "<code>calc</code>" in text
    assert 'data-status="incident"' in text
    assert "first try" in text and "sk-secret" not in text and "***" in text
    assert '<code>calc</code> — <span class="error-message">stopped by the incident' in text
    assert f'hx-post="/instances/{iid}/retry"' in text
    assert f'hx-post="/instances/{iid}/cancel"' in text
    trace = text[text.index('<ol class="timeline"') :]
    assert trace.index("instance_started") < trace.index("incident")
    assert '<li class="event-incident">' in trace and "<time datetime=" in trace
    # retry from the page (htmx): the page reloads with the new state
    _fix_the_cause(account)
    res = client.post(f"/instances/{iid}/retry", headers={**HX, "X-CSRF-Token": csrf})
    assert res.status_code == 204 and res.headers["HX-Redirect"] == f"/instances/{iid}"
    text = client.get(f"/instances/{iid}").text
    assert 'data-status="ended"' in text and 'data-status="positive"' in text
    assert "<code>computed</code>" in text and "hx-post" not in text
    assert "instance_ended" in text
    # a running instance: where it waits, its open task, the cancel button
    _deploy(client, headers, GREET)
    running = _start(client, headers, "greet")
    text = client.get(f"/instances/{running}").text
    found = re.search(r'<a href="/tasks/([^"]+)">Call Kira</a>', text)  # renamed above
    assert found is not None, text
    assert store.get_task(found.group(1)).instance_id == running
    assert "<code>review</code> — waits for a task" in text
    assert f'hx-post="/instances/{running}/retry"' not in text
    # plain form cancel: redirect back to the page, now cancelled
    res = client.post(
        f"/instances/{running}/cancel", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert res.status_code == 303 and res.headers["location"] == f"/instances/{running}"
    assert 'data-status="cancelled"' in client.get(f"/instances/{running}").text
    assert client.get("/instances/nope").status_code == 404


def test_outbox_list_filters_and_message_detail(client: TestClient, headers: Headers) -> None:
    _deploy(client, headers, GREET)
    _start(client, headers, "greet")
    login(client, "admin")
    page = client.get("/outbox")
    assert page.status_code == 200, page.text
    assert "Welcome, Kira Client" in page.text and "Kira Client was greeted" in page.text
    assert "2 messages" in page.text
    email_only = client.get("/outbox", params={"channel": "email"})
    assert "Welcome, Kira Client" in email_only.text
    assert "was greeted" not in email_only.text and "1 message" in email_only.text
    queued = client.get("/outbox", params={"status": "queued"})
    assert "Welcome, Kira Client" in queued.text and "was greeted" not in queued.text
    assert "No messages." in client.get("/outbox", params={"status": "bounced"}).text
    bad = client.get("/outbox", params={"channel": "pigeon"})
    assert bad.status_code == 409 and "channel must be one of" in bad.text
    found = re.search(r'<a href="/outbox/([^"]+)">Welcome, Kira Client</a>', page.text)
    assert found is not None
    detail = client.get(f"/outbox/{found.group(1)}")
    assert detail.status_code == 200, detail.text
    assert "Hello **Kira Client**, your course starts on Monday." in detail.text
    assert "client@example.com" in detail.text and 'data-status="queued"' in detail.text
    assert client.get("/outbox/nope").status_code == 404
    # managers, employees and clients are refused
    for role in ("manager", "employee-plain", "client"):
        client.cookies.clear()
        login(client, role)
        assert client.get("/outbox").status_code == 403, role
        assert client.get(f"/outbox/{found.group(1)}").status_code == 403, role
        assert client.get("/outbox/sink").status_code == 403, role


def _mime() -> str:
    msg = EmailMessage()
    msg["From"] = "flow@example.com"
    msg["To"] = "client@example.com"
    msg["Subject"] = "Your ticket"
    msg.set_content("Hello, Kira: plain text")
    msg.add_alternative(
        '<p class="x">Hello, <b>Kira</b> &amp; co</p><script>alert("x")</script>', subtype="html"
    )
    return msg.as_string()


def test_mail_sink_list_and_mail_with_html_in_a_sandboxed_frame(
    client: TestClient, account: Callable[[], Account]
) -> None:
    acc = account()
    stored = datetime(2024, 5, 1, 9, tzinfo=UTC)
    mail = SinkMail("m1", "<m1@example.com>", "client@example.com", "Your ticket", _mime(), stored)
    acc.attempt(lambda: acc.store.add_sink_mail(mail))
    login(client, "owner")
    page = client.get("/outbox/sink")
    assert page.status_code == 200, page.text
    found = re.search(r'<a href="/outbox/sink/(\d+)">Your ticket</a>', page.text)
    assert found is not None, page.text
    view = client.get(f"/outbox/sink/{found.group(1)}")
    assert view.status_code == 200, view.text
    text = view.text
    assert "flow@example.com" in text and "&lt;m1@example.com&gt;" in text
    assert "Hello, Kira: plain text" in text
    frame = re.search(r'<iframe[^>]*srcdoc="([^"]*)"[^>]*>', text)
    assert frame is not None, text
    assert 'sandbox=""' in frame.group(0)
    assert "&lt;b&gt;Kira&lt;/b&gt;" in frame.group(1) and "&#34;x&#34;" in frame.group(1)
    assert "<b>Kira</b>" in html.unescape(frame.group(1))
    # the email's HTML is nowhere in the page itself
    outside = text.replace(frame.group(0), "")
    assert "<b>Kira</b>" not in outside and "<script>alert" not in outside
    assert client.get("/outbox/sink/999").status_code == 404
    assert "The mail sink is empty." not in page.text


def test_notifications_feed_bell_and_mark_read(client: TestClient, headers: Headers) -> None:
    _deploy(client, headers, GREET)
    _start(client, headers, "greet")
    _start(client, headers, "greet")
    csrf = login(client, "owner")
    home = client.get("/account").text
    assert 'hx-get="/notifications/count"' in home and 'hx-trigger="load, every 60s"' in home
    bell = client.get("/notifications/count", headers=HX)
    assert bell.status_code == 200 and '<span class="bell-badge"' in bell.text
    assert ">2</span>" in bell.text
    feed = client.get("/notifications")
    assert feed.status_code == 200
    assert feed.text.count("Kira Client was greeted") == 2 and "2 unread" in feed.text
    assert '<a href="/objects/user/client">Open the object</a>' in feed.text
    ids = re.findall(r'hx-post="/notifications/([^"/]+)/read', feed.text)
    assert len(ids) == 2
    one = client.post(f"/notifications/{ids[0]}/read?page=1", headers={**HX, "X-CSRF-Token": csrf})
    assert one.status_code == 200, one.text
    assert "1 unread" in one.text and 'hx-swap-oob="true"' in one.text
    assert one.text.count("is-read") == 1 and one.text.count("is-unread") == 1
    assert ">1</span>" in client.get("/notifications/count").text
    unread = client.get("/notifications", params={"unread": "1"})
    assert unread.text.count("Kira Client was greeted") == 1
    every = client.post("/notifications/read", headers={**HX, "X-CSRF-Token": csrf})
    assert every.status_code == 200 and "0 unread" in every.text
    assert "bell-badge" not in client.get("/notifications/count").text
    assert "Nothing unread." in client.get("/notifications", params={"unread": "1"}).text
    missing = client.post("/notifications/nope/read", headers={**HX, "X-CSRF-Token": csrf})
    assert missing.status_code == 404 and 'class="flash error"' in missing.text
    # another person's feed is their own: the manager has the task, not these messages
    client.cookies.clear()
    login(client, "client")
    assert "No notifications yet." in client.get("/notifications").text
    assert "bell-badge" not in client.get("/notifications/count").text


def test_russian_pages(client: TestClient, headers: Headers) -> None:
    iid = _incident(client, headers)
    login(client, "owner")
    client.cookies.set("flowlane_lang", "ru")
    page = client.get("/incidents").text
    assert "Повторить" in page and "1 открытый инцидент" in page
    assert "Ход выполнения" in client.get(f"/instances/{iid}").text
    assert "Исходящие" in client.get("/outbox").text
    assert "Уведомления" in client.get("/notifications").text


def test_pager_links_keep_the_filters() -> None:
    pager = Pager(2, 50, 120, "/outbox", {"status": "sent", "channel": ""})
    assert (pager.pages, pager.offset) == (3, 50)
    assert pager.url(3) == "/outbox?status=sent&page=3"
    assert pager.url(1) == "/outbox?status=sent"
    assert Pager(1, 50, 0, "/incidents", {}).pages == 1
