"""Objects in a real browser: the kanban of events (a drag the readiness guard refuses snaps
back with its reason; an allowed drag sticks after a reload), and the condition builder with
a mass start and its progress."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Locator, Page, expect
from tests.browser.conftest import Live, htmx_settled, login


def drag(page: Page, card: Locator, column: Locator) -> None:
    """Drag ``card`` into ``column`` with real pointer moves (SortableJS follows them)."""
    start = card.bounding_box()
    end = column.bounding_box()
    assert start is not None and end is not None
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(start["x"] + start["width"] / 2 + 10, start["y"] + start["height"] / 2 + 5)
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 20, steps=15)
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 24, steps=3)
    page.mouse.up()


def _events(live: Live) -> None:
    acc = live.account()

    def make() -> None:
        acc.create_object(
            "event",
            {"title": "Spring meetup", "kind": "offline", "address": "Nevsky pr. 1"},
            object_id="e-off",
        )
        acc.create_object("event", {"title": "Webinar", "kind": "online"}, object_id="e-on")

    acc.attempt(make)


def test_kanban_refused_move_snaps_back_and_allowed_move_sticks(
    page: Page, live_server: Callable[..., Live]
) -> None:
    live = live_server("events", setup=_events)
    login(page, live, "owner")
    page.goto(f"{live.url}/kanban/event")
    preparation = page.locator("#cards-preparation")
    registration = page.locator("#cards-registration")
    expect(preparation.locator('.card[data-id="e-on"]')).to_be_visible()
    expect(preparation.locator('.card[data-id="e-off"]')).to_be_visible()

    # the online event has no link: the readiness guard sends it back
    drag(page, preparation.locator('.card[data-id="e-on"]'), registration)
    message = page.locator(".board-message.flash.error")
    expect(message).to_contain_text("the event is online and has no online link")
    expect(page.locator('#cards-preparation .card[data-id="e-on"]')).to_be_visible()
    expect(page.locator('#cards-registration .card[data-id="e-on"]')).to_have_count(0)
    expect(page.locator('section[data-stage="preparation"] .count')).to_have_text("2")

    # the offline event with an address moves, and stays moved after a reload (the board was
    # drawn again: SortableJS and htmx take to it when it settles)
    htmx_settled(page)
    drag(
        page,
        page.locator('#cards-preparation .card[data-id="e-off"]'),
        page.locator("#cards-registration"),
    )
    expect(page.locator(".board-message.flash.ok")).to_contain_text("e-off moved to registration")
    expect(page.locator('#cards-registration .card[data-id="e-off"]')).to_be_visible()
    page.reload()
    expect(page.locator('#cards-registration .card[data-id="e-off"]')).to_be_visible()
    expect(page.locator('#cards-preparation .card[data-id="e-on"]')).to_be_visible()
    expect(page.locator('section[data-stage="registration"] .count')).to_have_text("1")


def test_condition_builder_and_mass_start_with_progress(
    page: Page, live_server: Callable[..., Live]
) -> None:
    live = live_server("homework")
    login(page, live, "manager")
    page.goto(f"{live.url}/objects/user")
    expect(page.locator("#object-count")).to_have_text("6 objects")

    # role is not owner: one condition row, fitted to the enum field
    page.click("button.add-condition")
    htmx_settled(page)
    row = page.locator(".cond-row").first
    row.locator('select[name="f"]').select_option("role")
    htmx_settled(page)
    expect(row.locator('select[name="v"] option[value="owner"]')).to_be_attached()
    row.locator('select[name="op"]').select_option("ne")
    htmx_settled(page)
    row.locator('select[name="v"]').select_option("owner")
    page.click("#filter-form button[type=submit]")
    expect(page.locator("#object-count")).to_have_text("5 objects")
    expect(page.locator('#results tr[data-id="owner"]')).to_have_count(0)
    expect(page).to_have_url(re.compile(r"[?&]f=role&op=ne&v=owner"))

    # start homework-review for the five of them
    page.once("dialog", lambda dialog: dialog.accept())
    page.select_option("#mass-process", "homework-review")
    page.click("#mass-start button[type=submit]")
    expect(page.locator("#mass-progress .progress-text")).to_have_text("5 of 5 started")
    expect(page.locator("#mass-progress .flash.ok")).to_contain_text(
        "the process was started for 5 objects"
    )
    expect(page.locator('#mass-progress [role="progressbar"]')).to_have_attribute(
        "aria-valuenow", "5"
    )
    started = {s.object_id for s in live.store.instances_of("homework-review")}
    assert started == {"admin", "manager", "employee", "employee-plain", "client"}
