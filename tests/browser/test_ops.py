"""The operations pages in a real browser: an owner retries an incident after its cause was
fixed and sees it gone, reads the instance's trace, opens an email of the mail sink with its
HTML shown in a sandboxed frame, and marks the in-app note read (the bell empties)."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect
from tests.browser.conftest import Live, login
from tests.web.test_ui_ops import FRAGILE, GREET

from flowlane.services import processes


def _setup(live: Live) -> None:
    acc = live.account()

    def work() -> None:
        processes.deploy(acc, FRAGILE, by=None)
        processes.deploy(acc, GREET, by=None)
        processes.start(acc, "fragile", "client", {"note": "from the browser"}, by=None)
        processes.start(acc, "greet", "client", {}, by=None)

    acc.attempt(work)


def test_retry_an_incident_read_the_trace_and_a_mail_of_the_sink(
    page: Page, live_server: Callable[..., Live]
) -> None:
    live = live_server("homework", setup=_setup)
    live.work()  # the welcome email goes into the mail sink
    (incident,) = live.store.incidents(open_only=True)
    iid = incident.instance_id
    login(page, live, "owner")
    expect(page.locator("#bell .bell-badge")).to_have_text("1")  # the in-app note

    page.goto(f"{live.url}/incidents")
    row = page.locator(f"#incident-{iid}")
    expect(row).to_contain_text("is not an email address")
    expect(row.locator("a[href='/objects/user/client']")).to_be_visible()

    # the cause: "kira client@school.example" is no email; renaming the client fixes it
    acc = live.account()
    acc.attempt(lambda: acc.update_object("client", {"name": "Kira"}))
    row.get_by_role("button", name="Retry").click()
    expect(page.locator(f"#incident-{iid}")).to_contain_text(
        "The retry went through: the instance has ended."
    )
    page.reload()
    expect(page.locator(".empty")).to_contain_text("No open incidents")

    page.goto(f"{live.url}/instances/{iid}")
    expect(page.locator("h1")).to_contain_text("ended")
    timeline = page.locator("ol.timeline")
    expect(timeline.locator("li.event-incident")).to_have_count(1)
    expect(timeline.locator("li.event-instance_started")).to_contain_text("instance_started")
    expect(timeline).to_contain_text("instance_ended")
    expect(page.locator("a[href='/processes/fragile']").first).to_be_visible()

    page.goto(f"{live.url}/outbox")
    page.select_option("#channel", "email")  # applies at once (ops.js)
    expect(page).to_have_url(f"{live.url}/outbox?status=&channel=email")
    expect(page.locator("table.outbox tbody tr")).to_have_count(1)
    page.click("a:has-text('Mail sink')")
    page.click("a:has-text('Welcome, Kira Client')")
    expect(page.locator("h1")).to_have_text("Welcome, Kira Client")
    expect(page.locator("pre.mail-text")).to_contain_text("your course starts on Monday")
    frame = page.frame_locator("iframe.mail-html")
    expect(frame.locator("strong")).to_have_text("Kira Client")
    expect(page.locator("iframe.mail-html")).to_have_attribute("sandbox", "")
    expect(page.locator("main strong", has_text="Kira Client")).to_have_count(0)

    # the in-app note: marked read, the bell in the header counts nothing any more
    page.click("#bell")
    expect(page.locator("li.notification.is-unread")).to_contain_text("Kira Client was greeted")
    page.get_by_role("button", name="Mark read").click()
    expect(page.locator("li.notification.is-read")).to_have_count(1)
    expect(page.locator("#bell .bell-badge")).to_have_count(0)
