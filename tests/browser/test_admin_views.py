"""Every dashboard view loads under the strict CSP, by mouse or keyboard, on a phone too."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, expect

from tests.browser.admin_page import go_to, sign_in

VIEWS = ["Usage", "Keys", "Teams", "Users", "Requests", "Health"]


def test_every_view_loads_without_a_console_error_or_csp_violation(admin: Page) -> None:
    problems: list[str] = []
    admin.on("console", lambda message: _note(problems, message))
    admin.on("pageerror", lambda error: problems.append(str(error)))
    for view in VIEWS:
        go_to(admin, view)
        expect(admin.locator(".view-status.failed")).to_have_count(0)
        expect(admin.locator("nav a[aria-current=page]")).to_have_text(view)
    assert problems == []


def test_the_views_are_reached_by_keyboard(admin: Page) -> None:
    link = admin.get_by_role("link", name="Requests")
    link.focus()
    admin.keyboard.press("Enter")
    expect(admin.locator("body")).to_have_attribute("data-view", "requests")
    admin.keyboard.press("Tab")  # on to the next view's link
    expect(admin.locator(":focus")).to_have_attribute("data-view", "health")


@pytest.mark.parametrize("view", ["Usage", "Keys"])
def test_a_view_fits_a_phone_screen(browser: Browser, admin_gateway_url: str, view: str) -> None:
    phone: ViewportSize = {"width": 390, "height": 844}
    context = browser.new_context(base_url=admin_gateway_url, viewport=phone)
    try:
        page = context.new_page()
        sign_in(page)
        go_to(page, view)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0
        # Every view's link in sight, not scrolled off the edge of a row.
        links = page.get_by_role("navigation", name="Dashboard").get_by_role("link")
        assert links.count() >= 6
        for link in links.all():
            expect(link).to_be_in_viewport(ratio=1)
    finally:
        context.close()


def _note(problems: list[str], message: ConsoleMessage) -> None:
    if message.type == "error":
        problems.append(message.text)
