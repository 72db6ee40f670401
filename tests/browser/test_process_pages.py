"""Process administration in a real browser: the owner finds a process in the list, asks for
the forecast, stops and activates it, opens Statistics (a Chart.js chart) and hands the open
tasks to a manager, and the statistics table changes without a page reload; a task put by
hand on the Tasks tab appears in its table."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect
from tests.browser.conftest import Live, htmx_settled, login


def _two_review_tasks(live: Live) -> None:
    """Two unassigned review tasks (the clients have no personal manager)."""
    acc = live.account()

    def make() -> None:
        acc.create_object("user", {"name": "Second Client"}, object_id="second")
        acc.start("homework-review", live.users["client"], {}, by=None)
        acc.start("homework-review", "second", {}, by=None)

    acc.attempt(make)


def test_owner_stops_activates_and_reassigns_tasks(
    page: Page, live_server: Callable[..., Live]
) -> None:
    live = live_server("homework", setup=_two_review_tasks)
    login(page, live, "owner")
    page.goto(f"{live.url}/processes")
    page.fill("#search", "review")
    page.click("button:has-text('Find')")
    rows = page.locator("#processes tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td.num")).to_have_text("2")  # running instances
    rows.first.locator("a", has_text="Homework review by the personal manager").click()
    expect(page.locator("h1")).to_contain_text("Homework review by the personal manager")
    expect(page.locator("nav.tabs a[aria-current=page]")).to_have_text("General")

    page.click("#forecast")
    expect(page.locator("#forecast-result")).to_contain_text("would start the process now")

    page.click("#stop")
    expect(page.locator("#lifecycle-result")).to_have_text("The process is stopped.")
    expect(page.locator("#process-status .badge")).to_have_text("stopped")
    htmx_settled(page)  # #activate came with the swap: htmx wires it when it settles
    page.click("#activate")
    expect(page.locator("#lifecycle-result")).to_have_text("The process is active.")
    expect(page.locator("#process-status .badge")).to_have_text("active")
    expect(page.locator("#running-warning")).to_be_visible()

    page.click("nav.tabs >> text=Statistics")
    expect(page).to_have_url(f"{live.url}/processes/homework-review/statistics")
    page.select_option("#f-group", "assignee")
    page.click("#stats-filters button[type=submit]")
    canvas = page.locator("canvas#stats-chart")
    expect(canvas).to_be_visible()
    expect(canvas).to_have_attribute("data-drawn", "2")  # Chart.js drew the two tasks
    table = page.locator("#stats-table tbody")
    expect(table).to_contain_text("nobody")

    page.select_option("#r-to", label="Mila Manager")
    page.click("#reassign-form button[type=submit]")
    expect(page.locator("#reassign-done")).to_have_text("2 tasks reassigned")
    expect(table).to_contain_text("Mila Manager")
    expect(table).not_to_contain_text("nobody")
    expect(page.locator("canvas#stats-chart")).to_have_attribute("data-drawn", "2")

    page.click("nav.tabs >> text=Tasks")
    expect(page.locator("#tasks tbody tr")).to_have_count(2)
    expect(page.locator("#tasks tbody")).to_contain_text("Mila Manager")

    # a task put by hand appears in the table without a reload
    page.click("#add-task summary")
    page.fill("#t-title", "Check the second homework again")
    page.fill("#t-object", "second")
    page.click("#add-task-form button[type=submit]")
    expect(page.locator("#task-added")).to_contain_text("Check the second homework again")
    expect(page.locator("#tasks tbody tr")).to_have_count(3)
    expect(page.locator("#tasks tbody")).to_contain_text("Check the second homework again")
