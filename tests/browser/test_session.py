"""Logging in and out in a real browser; the language switch; htmx and the CSRF header."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect
from tests.browser.conftest import Live, login


def test_login_account_language_and_logout(page: Page, live_server: Callable[..., Live]) -> None:
    live = live_server("homework")
    page.goto(f"{live.url}/account")
    expect(page).to_have_url(f"{live.url}/login?next=%2Faccount")
    page.fill("#email", "owner@example.com")
    page.fill("#password", "wrong password")
    page.click("button[type=submit]")
    expect(page.locator(".flash.error")).to_contain_text("Wrong email or password")
    login(page, live, "owner")
    page.goto(f"{live.url}/account")
    expect(page.locator("h1")).to_have_text("My account")
    page.click("a.lang[hreflang=ru]")
    expect(page.locator("h1")).to_have_text("Мой аккаунт")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    page.click("button:has-text('Выйти')")
    expect(page).to_have_url(f"{live.url}/login")
