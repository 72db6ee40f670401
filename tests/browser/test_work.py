"""The work pages in a real browser: S3 order processing up to the call task, and S1.2's
homework done by a client while the owner reviews it (two browser contexts at once)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from playwright.sync_api import Browser, Page, expect
from tests.browser.conftest import Live, htmx_settled, login


def _open_task(page: Page, live: Live, title: str) -> None:
    """From the inbox, open the task whose title contains ``title``."""
    page.goto(f"{live.url}/inbox")
    link = page.locator("#inbox a.task-link", has_text=title)
    expect(link).to_be_visible()
    link.click()
    expect(page.locator("#task h1")).to_contain_text(title)


def test_order_through_the_ui_up_to_the_call_task(
    page: Page, live_server: Callable[..., Live]
) -> None:
    live = live_server("order-processing")
    acc = live.account()

    def setup() -> None:
        acc.update_object(live.users["manager"], {"groups": ["sales"]})
        acc.create_object(
            "order",
            {"number": "A-7", "status": "new", "client": live.users["client"], "amount": 100},
            object_id="o7",
        )

    acc.attempt(setup)
    live.work()
    # the client has a minute to pay; then a sales manager is asked to take the order
    live.advance(timedelta(minutes=1, seconds=5))
    live.work()

    login(page, live, "manager")
    expect(page).to_have_url(f"{live.url}/inbox")
    row = page.locator("#inbox tr", has_text="Take order A-7?")
    expect(row).to_be_visible()
    expect(row.locator("td.assignee")).to_contain_text("nobody")
    expect(row.locator("[data-priority=normal]")).to_be_visible()
    # take the task from the row (htmx: only the row changes), then open it
    row.locator("button.claim").click()
    expect(row.locator("td.assignee")).to_contain_text("Mila Manager")
    _open_task(page, live, "Take order A-7?")
    task = page.locator("#task")
    expect(task).to_contain_text("Kira Client ordered A-7 for 100")
    expect(task.locator("dd.process")).to_have_text("New order processing")
    expect(task.locator("dd.object a")).to_have_attribute("href", "/objects/order/o7")
    task.locator("button.option", has_text="yes").click()
    expect(page.locator("#task")).to_have_attribute("data-status", "answered")
    expect(page.locator("#flash")).to_contain_text("Answer saved.")
    expect(page.locator(".answer-option")).to_have_text("yes")

    # no phone in the client's profile: the manager decides whether to ask for one by email
    live.work()
    _open_task(page, live, "Ask the client for a phone")
    expect(page.locator("#task .task-text")).to_contain_text("phone")
    page.locator("#task button.option", has_text="send").click()
    expect(page.locator("#task")).to_have_attribute("data-status", "answered")
    live.work()

    # the client gives a phone: the control call comes at once, with its script
    acc = live.account()
    acc.attempt(lambda: acc.update_object(live.users["client"], {"phone": "+79160000000"}))
    live.work()
    _open_task(page, live, "Control call: order A-7")
    text = page.locator("#task .task-text")
    expect(text).to_contain_text("Call Kira Client (+79160000000)")
    expect(text).to_contain_text("ask whether order A-7 will be paid")
    options = page.locator("#task button.option")
    expect(options).to_have_text(
        ["reached", "not reached", "duplicate", "wrong number", "no phone"]
    )
    expect(page.locator("#task dd.assignee")).to_have_text("Mila Manager")


def _status(page: Page) -> str:
    return str(page.locator("#task").get_attribute("data-status"))


def test_client_does_homework_while_the_owner_reviews_it(
    browser: Browser, live_server: Callable[..., Live]
) -> None:
    live = live_server("homework")
    acc = live.account()
    client_id = live.users["client"]
    acc.attempt(
        lambda: acc.start(
            "homework",
            client_id,
            {"topic": "Funnels", "homework": "Draw your funnel"},
            by=live.users["owner"],
        )
    )
    contexts = [browser.new_context(viewport={"width": 1300, "height": 900}) for _ in range(2)]
    try:
        for c in contexts:
            c.set_default_timeout(15_000)
        kira, olga = (c.new_page() for c in contexts)

        # the client: the cabinet, the homework, new -> in progress -> done with a comment
        login(kira, live, "client")
        expect(kira).to_have_url(f"{live.url}/cabinet")
        kira.locator("#cabinet-open a.task-link", has_text="Homework: Funnels").click()
        expect(kira.locator("#task .task-text")).to_have_text("Draw your funnel")
        expect(kira.locator("#task")).to_have_attribute("data-status", "new")
        kira.locator("button.move", has_text="in progress").click()
        expect(kira.locator("#task")).to_have_attribute("data-status", "in_progress")
        expect(kira.locator("button.move")).to_have_count(1)
        htmx_settled(kira)  # the form came with the swap: htmx wires it when it settles
        kira.fill("#status-comment", "My funnel is drawn")
        kira.locator("button.move", has_text="done").click()
        expect(kira.locator("#task")).to_have_attribute("data-status", "done")
        expect(kira.locator(".no-moves")).to_be_visible()
        expect(kira.locator("#task .comment")).to_contain_text("My funnel is drawn")

        # the owner: the homework board shows it done; sending it back needs a comment
        login(olga, live, "owner")
        olga.goto(f"{live.url}/tasks/board?process=homework")
        done_column = olga.locator("section.column[data-status=done]")
        card = done_column.locator(".card", has_text="Homework: Funnels")
        expect(card).to_be_visible()
        card.locator("a").click()
        expect(olga.locator("#task")).to_have_attribute("data-status", "done")
        expect(olga.locator("#task .comment")).to_contain_text("My funnel is drawn")
        back = olga.locator("button.move[data-to=in_progress]")
        expect(back).to_have_attribute("data-comment-required", "true")
        back.click()
        expect(olga.locator("#flash")).to_contain_text(
            "a comment is required to move the task from 'done' to 'in_progress'"
        )
        expect(olga.locator("#task")).to_have_attribute("data-status", "done")
        htmx_settled(olga)
        olga.fill("#status-comment", "Add the conversion rates")
        olga.locator("button.move[data-to=in_progress]").click()
        expect(olga.locator("#task")).to_have_attribute("data-status", "in_progress")
        expect(olga.locator(".no-moves")).to_be_visible()

        # the client sees the owner's comment and hands it in again
        kira.reload()
        expect(kira.locator("#task")).to_have_attribute("data-status", "in_progress")
        expect(kira.locator("#task .comment").last).to_contain_text("Add the conversion rates")
        expect(kira.locator("#task .comment").last).to_contain_text("Olga Owner")
        kira.locator("button.move", has_text="done").click()
        expect(kira.locator("#task")).to_have_attribute("data-status", "done")

        # the owner completes it: the process ends, as the recipe says
        olga.reload()
        olga.locator("button.move[data-to=completed]").click()
        expect(olga.locator("#task")).to_have_attribute("data-status", "completed")
        expect(olga.locator("button.move")).to_have_count(0)
        live.work()
        (ended,) = live.account().store.instances_of("homework", client_id)
        assert (ended.status, ended.outcome, ended.result) == ("ended", "positive", "completed")

        # the client's cabinet lists it as finished
        kira.goto(f"{live.url}/cabinet")
        expect(kira.locator("#cabinet-done")).to_contain_text("Homework: Funnels")
        expect(kira.locator("#cabinet-done [data-status=completed]")).to_be_visible()
        expect(kira.locator("#cabinet-open")).to_have_count(0)
    finally:
        for c in contexts:
            c.close()


def test_board_drag_changes_status_refused_moves_snap_back(
    page: Page, live_server: Callable[..., Live]
) -> None:
    live = live_server("homework")
    acc = live.account()
    client_id = live.users["client"]

    def handed_in() -> None:
        acc.start("homework", client_id, {"topic": "Ads"}, by=live.users["owner"])
        task = acc.open_task("homework", client_id)
        for to in ("in_progress", "done"):
            acc.change_status(task, to, by=client_id)

    acc.attempt(handed_in)
    login(page, live, "owner")
    page.goto(f"{live.url}/tasks/board?process=homework")
    card = page.locator(".card", has_text="Homework: Ads")
    expect(page.locator("section.column[data-status=done] .card")).to_have_count(1)

    # no transition from done back to new: the card snaps back, the reason is shown
    card.drag_to(page.locator("section.column[data-status=new] .cards"))
    expect(page.locator("#flash")).to_contain_text("no transition from 'done' to 'new'")
    expect(page.locator("section.column[data-status=done] .card")).to_have_count(1)
    expect(page.locator("section.column[data-status=new] .card")).to_have_count(0)

    # sending it back asks for the required comment (on the board drawn again: SortableJS and
    # htmx take to it when it settles)
    htmx_settled(page)
    page.once("dialog", lambda d: d.accept("Redo the funnel"))
    page.locator(".card", has_text="Homework: Ads").drag_to(
        page.locator("section.column[data-status=in_progress] .cards")
    )
    expect(page.locator("section.column[data-status=in_progress] .card")).to_have_count(1)
    expect(page.locator("#flash")).to_contain_text("Moved to: in progress")
    stored = live.account().open_task("homework", client_id)
    assert stored.status == "in_progress" and stored.comments[-1]["text"] == "Redo the funnel"
