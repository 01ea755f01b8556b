"""Long names on the dashboard: a key named with 200 characters, the most a name holds,
keeps every column of every table in sight, on a desktop and on a phone — no sideways
scrolling of the page, nor of a table inside it."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Locator, Page, Route, ViewportSize, expect

from modelway.store.names import MAX_NAME
from tests.browser.admin_page import (
    ask,
    eventually,
    go_to,
    key_row,
    make_key,
    search_keys,
    sign_in,
    unique,
)
from tests.browser.conftest import PATIENCE_MS

PHONE: ViewportSize = {"width": 390, "height": 844}
#: Seconds for a call's usage record to reach the store (batched writes).
RECORDED_SECONDS = PATIENCE_MS / 1000


def long_name() -> tuple[str, str]:
    """A unique name of 200 characters, most of them one word no line can break at, and
    the unique start to search it by."""
    stem = unique("long")
    return f"{stem} {'x' * (MAX_NAME - len(stem) - 1)}", stem


def sideways(page: Page) -> int:
    """How far the page scrolls sideways (0: not at all)."""
    return int(page.evaluate("() => document.documentElement.scrollWidth - innerWidth"))


def in_sight(cell: Locator) -> None:
    """``cell`` wholly in the viewport once the page is scrolled down to it — only down: a
    cell pushed off to the right, of the page or of its table, is not brought back."""
    cell.evaluate("cell => window.scrollBy(0, cell.getBoundingClientRect().top - innerHeight / 2)")
    expect(cell).to_be_in_viewport(ratio=1)


def logged_row(page: Page, stem: str) -> Locator:
    """The request log's row of the key named from ``stem``, once its call is stored."""
    go_to(page, "Requests")
    log = page.locator(".requests-view")
    filters = log.locator(".filter-box")
    if filters.get_attribute("open") is None:  # folded on a phone
        filters.locator("summary").click()
    row = log.locator("tbody tr.openable").filter(has_text=stem)

    def logged() -> bool | None:
        log.get_by_role("button", name="Apply").click()
        expect(log).not_to_have_attribute("aria-busy", "true")
        return True if row.count() else None

    eventually(logged, RECORDED_SECONDS, "the call in the request log")
    return row.first


def lines_of(cell: Locator) -> int:
    """How many lines the text of ``cell`` takes."""
    return int(
        cell.evaluate(
            """cell => {
                const text = document.createRange();
                text.selectNodeContents(cell);
                return new Set([...text.getClientRects()].map((box) => Math.round(box.top))).size;
            }"""
        )
    )


def test_a_200_character_name_leaves_every_column_of_the_keys_table_in_sight(
    admin: Page, admin_gateway_url: str
) -> None:
    name, stem = long_name()
    # Two long words in one row, and the widest budget the table shows.
    owner = f"{'y' * 60}@example.com"
    make_key(admin_gateway_url, name, owner_user=owner, budget_usd=5, budget_tokens=5_000_000)
    make_key(admin_gateway_url, f"{stem}-short", owner_user="dana@example.com")
    go_to(admin, "Keys")
    search_keys(admin, stem)
    row = key_row(admin, name)
    expect(row.locator(".key-name")).to_have_text(name)
    expect(row.get_by_role("button", name=f"Revoke {name}")).to_be_in_viewport(ratio=1)
    expect(row.locator('td[data-label="Created"]')).to_be_in_viewport(ratio=1)
    assert sideways(admin) <= 0
    # Only a word wider than its column is broken: an ordinary email stays whole.
    short = key_row(admin, f"{stem}-short")
    assert lines_of(short.locator('td[data-label="Owner"]')) == 1


def test_a_200_character_name_leaves_every_column_of_the_request_log_in_sight(
    admin: Page, admin_gateway_url: str
) -> None:
    name, stem = long_name()
    ask(admin_gateway_url, make_key(admin_gateway_url, name)["key"])
    row = logged_row(admin, stem)
    expect(row).to_contain_text(name)
    for column in ("Status", "Latency"):
        expect(row.locator(f'td[data-label="{column}"]')).to_be_in_viewport(ratio=1)
    # The key filter, which may hold that name, stays a filter's width.
    picker = admin.locator(".requests-view").get_by_label("Key", exact=True)
    assert (picker.bounding_box() or {"width": 0})["width"] < 500
    assert sideways(admin) <= 0


def test_on_a_phone_a_200_character_name_fits_every_view(
    browser: Browser, admin_gateway_url: str
) -> None:
    name, stem = long_name()
    ask(admin_gateway_url, make_key(admin_gateway_url, name)["key"])
    context = browser.new_context(base_url=admin_gateway_url, viewport=PHONE)
    try:
        page = context.new_page()
        # The top keys of the range are whichever spent most: this one, here.
        top = {"group": "0" * 32, "name": name, "requests": 1, "tokens": 12, "cost_usd": 1.5}
        page.route(
            re.compile(r"/admin/api/usage/top\?by=key"),
            lambda route: _answer(route, {"by": "key", "rows": [top]}),
        )
        sign_in(page)
        go_to(page, "Usage")
        cells = page.locator(".top-keys tbody td")
        expect(cells.first).to_have_text(name)
        in_sight(cells.filter(has_text="$1.50"))
        assert sideways(page) <= 0

        row = logged_row(page, stem)
        in_sight(row.locator('td[data-label="Latency"]'))
        assert sideways(page) <= 0

        go_to(page, "Keys")
        search_keys(page, stem)
        in_sight(key_row(page, stem).get_by_role("button", name=f"Revoke {name}"))
        assert sideways(page) <= 0
    finally:
        context.close()


def _answer(route: Route, body: object) -> None:
    route.fulfill(json=body)
