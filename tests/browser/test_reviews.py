"""S4 in a real browser (recipe ``reviews``): the manager picks the client's email on the
task page; the worker sends the request (into the mail sink); the client opens the signed
link from that email in chromium, rates and submits; the review is received, and the link
does not open a second time."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, Page, expect
from tests.browser.conftest import Live, login

from flowlane.services.messages import sink_mail, sink_mails


def _contract_due(live: Live) -> None:
    """A department headed by the admin and a subscription contract due for a review."""
    acc = live.account()

    def make() -> None:
        acc.create_object(
            "department",
            {
                "name": "Website development",
                "head": live.users["admin"],
                "form": "review-development",
            },
            object_id="dev",
        )
        acc.create_object(
            "contract",
            {
                "number": "C-7",
                "customer": "Acme",
                "status": "in_work",
                "billing": "subscription",
                "service": "site_support",
                "department": "dev",
                "manager": live.users["manager"],
                "signed": (live.now() - timedelta(days=40)).date().isoformat(),
                "client_emails": ["boss@acme.example", "office@acme.example"],
            },
            object_id="c7",
        )

    acc.attempt(make)


def test_a_client_leaves_a_review_through_the_emailed_link(
    live_server: Callable[..., Live],
    page: Page,
    browser: Browser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live = live_server("reviews", setup=_contract_due)
    monkeypatch.setenv("FLOWLANE_PUBLIC_URL", live.url)  # what the worker makes links with
    live.advance(timedelta(days=1, hours=1))
    live.work()  # the daily check: a review and the manager's question

    login(page, live, "manager")
    page.goto(f"{live.url}/inbox")
    page.locator("main table a", has_text="Where should the review request").first.click()
    expect(page.locator("#task .task-text")).to_contain_text("2. office@acme.example")
    page.locator('[id="in-f.number"]').fill("2")
    page.locator("#task button.option", has_text="send").click()
    expect(page.locator("#task .answer-option")).to_have_text("send")
    live.work()  # the email to the client, kept by the mail sink

    acc = live.account()
    [stored] = sink_mails(acc)
    mail = sink_mail(acc, stored.id)
    assert mail.to == "office@acme.example"
    found = re.search(re.escape(live.url) + r"/l/[A-Za-z0-9_.=-]+", mail.text)
    assert found is not None, mail.text
    link = found.group(0)

    client = browser.new_context(locale="en-US")
    try:
        visitor = client.new_page()
        visitor.goto(link)
        expect(visitor.locator("h1")).to_have_text("Your review: Website development")
        visitor.fill("#f-rating", "5")
        visitor.fill("#f-text", "Fast and friendly.")
        visitor.locator("button[type=submit]").click()
        expect(visitor.locator("body")).to_contain_text("Thank you for your review!")
        [rid] = live.store.objects_of_type("review")
        with live.store.transaction():
            review = live.store.get_object(rid)
        assert review is not None
        assert (review.data["status"], review.data["rating"]) == ("received", 5)
        visitor.goto(link)  # single use
        expect(visitor.locator("body")).to_contain_text("Oops, something went wrong")
    finally:
        client.close()
