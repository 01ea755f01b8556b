"""Keys from the dashboard: made there, used with the openai SDK, seen in the request log
and the charts, limited, and revoked — each change felt by the next call within seconds."""

from __future__ import annotations

import re
import time

import httpx
import openai
from playwright.sync_api import Locator, Page, expect

from tests.browser.admin_page import (
    AS_MASTER,
    KEY_CHANGE_SECONDS,
    ask,
    create_key,
    dialog,
    eventually,
    go_to,
    key_id,
    key_row,
    make_key,
    search_keys,
    unique,
)
from tests.browser.conftest import PATIENCE_MS

#: Seconds for a call's usage record to reach the store and its roll-ups (batched writes).
RECORDED_SECONDS = PATIENCE_MS / 1000


def test_a_key_made_in_the_dashboard_answers_the_openai_sdk_and_shows_in_the_log_and_charts(
    admin: Page, admin_gateway_url: str
) -> None:
    name = unique("sdk")
    key = create_key(admin, name, **{"Models (globs, comma separated; empty: all)": "openai/*"})
    search_keys(admin, name)
    expect(key_row(admin, name)).to_contain_text("active")
    expect(key_row(admin, name).locator(".key-models")).to_have_text("openai/*")

    assert ask(admin_gateway_url, key, "hello dashboard") == "hello dashboard"

    ident = key_id(admin_gateway_url, name)
    row = first_logged_request(admin, ident, "the call in the request log")
    expect(row).to_contain_text(name)
    expect(row).to_contain_text("echo")
    expect(row).to_contain_text("200")
    row.click()
    expect(dialog(admin).locator(".record")).to_contain_text(ident)
    dialog(admin).get_by_role("button", name="Close").click()

    go_to(admin, "Usage")
    admin.get_by_label("Key", exact=True).fill(ident)

    def charted() -> bool | None:
        admin.get_by_role("button", name="Apply").click()
        expect(admin.locator(".usage-view")).not_to_have_attribute("aria-busy", "true")
        points = admin.locator(".chart-grid").first.get_attribute("data-points")
        return True if points and int(points) > 0 else None

    eventually(charted, RECORDED_SECONDS, "the call in the usage charts")
    requests_tile = admin.locator(".tile").filter(has_text="Requests")
    expect(requests_tile.locator(".tile-value")).to_have_text("1")
    expect(admin.locator("figure.chart canvas").first).to_be_visible()
    expect(admin.locator(".top-keys tbody")).to_contain_text(name)


def test_a_call_refused_before_routing_is_logged_with_the_model_it_asked_for(
    admin: Page, admin_gateway_url: str
) -> None:
    name = unique("refused")
    key = create_key(admin, name, **{"Models (globs, comma separated; empty: all)": "openai/*"})
    refused = httpx.post(
        f"{admin_gateway_url}/v1/chat/completions",
        json={"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert refused.status_code == 403
    ident = key_id(admin_gateway_url, name)
    row = first_logged_request(admin, ident, "the refusal in the request log")
    expect(row).to_contain_text("mock/echo")  # not "—": the name the caller asked for
    expect(row).to_contain_text("403")

    go_to(admin, "Usage")
    admin.get_by_label("Key", exact=True).fill(ident)

    def tallied() -> bool | None:
        admin.get_by_role("button", name="Apply").click()
        expect(admin.locator(".usage-view")).not_to_have_attribute("aria-busy", "true")
        return True if admin.locator(".top-models tbody tr").count() else None

    eventually(tallied, RECORDED_SECONDS, "the refusal in the top models")
    expect(admin.locator(".top-models tbody")).to_contain_text("(refused before routing)")


def test_a_lower_rpm_set_in_the_dashboard_refuses_the_next_calls(
    admin: Page, admin_gateway_url: str
) -> None:
    name = unique("rpm")
    key = create_key(admin, name)
    ask(admin_gateway_url, key)

    search_keys(admin, name)
    key_row(admin, name).get_by_role("button", name=f"Edit {name}").click()
    dialog(admin).get_by_label("Requests per minute").fill("1")
    dialog(admin).get_by_role("button", name="Save").click()
    expect(key_row(admin, name)).to_contain_text("1 rpm")

    def refused() -> openai.RateLimitError | None:
        try:
            ask(admin_gateway_url, key)
        except openai.RateLimitError as error:
            return error
        return None

    error = eventually(refused, KEY_CHANGE_SECONDS + 5, "a call refused by the new rpm")
    assert error.status_code == 429


def test_an_rpm_of_0_set_in_the_dashboard_is_kept_and_refuses_every_call(
    admin: Page, admin_gateway_url: str
) -> None:
    name = unique("rpm0")
    key = create_key(admin, name)
    ask(admin_gateway_url, key)

    search_keys(admin, name)
    key_row(admin, name).get_by_role("button", name=f"Edit {name}").click()
    dialog(admin).get_by_label("Requests per minute").fill("0")
    dialog(admin).get_by_role("button", name="Save").click()
    expect(key_row(admin, name)).to_contain_text("0 rpm")

    def refused() -> openai.RateLimitError | None:
        try:
            ask(admin_gateway_url, key)
        except openai.RateLimitError as error:
            return error
        return None

    error = eventually(refused, KEY_CHANGE_SECONDS + 5, "a call refused by an rpm of 0")
    assert "limit 0" in str(error)


def test_a_key_revoked_in_the_dashboard_is_refused_within_5_seconds(
    admin: Page, admin_gateway_url: str
) -> None:
    name = unique("revoke")
    key = create_key(admin, name)
    ask(admin_gateway_url, key)

    search_keys(admin, name)
    key_row(admin, name).get_by_role("button", name=f"Revoke {name}").click()
    confirm = dialog(admin)
    expect(confirm).to_contain_text(name)
    confirm.get_by_role("button", name="Revoke").click()
    admin.get_by_label("Status").select_option("all")
    expect(key_row(admin, name)).to_contain_text("revoked")

    def refused() -> openai.AuthenticationError | None:
        try:
            ask(admin_gateway_url, key)
        except openai.AuthenticationError as error:
            return error
        return None

    eventually(refused, KEY_CHANGE_SECONDS, "the revoked key refused")


def test_the_keys_table_sorts_by_a_column_both_ways(admin: Page) -> None:
    stem = unique("sort")
    for suffix in ("b", "a", "c"):
        create_key(admin, f"{stem}-{suffix}")
    search_keys(admin, stem)
    names = admin.locator(".keys-view tbody .key-name")
    expect(names).to_have_text([f"{stem}-c", f"{stem}-a", f"{stem}-b"])  # newest first

    header = admin.locator(".keys-view th").filter(has_text="Name")
    header.get_by_role("button").click()  # names: A to Z first
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(names).to_have_text([f"{stem}-a", f"{stem}-b", f"{stem}-c"])
    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(names).to_have_text([f"{stem}-c", f"{stem}-b", f"{stem}-a"])


def test_the_request_log_pages_back_and_forth_by_the_servers_cursor(
    admin: Page, admin_gateway_url: str
) -> None:
    name = unique("pages")
    key = create_key(admin, name)
    with openai.OpenAI(base_url=f"{admin_gateway_url}/v1", api_key=key, max_retries=0) as sdk:
        for turn in range(26):
            sdk.chat.completions.create(
                model="openai/echo", messages=[{"role": "user", "content": f"call {turn}"}]
            )

    go_to(admin, "Requests")
    log = admin.locator(".requests-view")
    log.get_by_label("Key", exact=True).fill(key_id(admin_gateway_url, name))
    log.get_by_label("Rows").select_option("25")
    older = log.get_by_role("button", name="Older")

    def full_page() -> bool | None:
        log.get_by_role("button", name="Apply").click()
        expect(log).not_to_have_attribute("aria-busy", "true")
        return True if older.is_enabled() else None

    eventually(full_page, RECORDED_SECONDS, "26 calls in the request log")
    rows = log.locator("tbody tr.openable")
    expect(rows).to_have_count(25)
    newest = rows.first.get_attribute("aria-label")  # names the record's request id
    assert newest

    older.click()
    expect(rows).to_have_count(1)
    expect(log.locator(".pager")).to_contain_text("Page 2")
    expect(older).to_be_disabled()

    log.get_by_role("button", name="Newer").click()
    expect(rows).to_have_count(25)
    expect(rows.first).to_have_attribute("aria-label", newest)


def test_budgets_read_right_in_the_keys_table_and_the_burn_down_charts(
    admin: Page, admin_gateway_url: str
) -> None:
    team = unique("nobudget")
    made = httpx.post(
        f"{admin_gateway_url}/admin/api/teams", json={"name": team}, headers=AS_MASTER
    )
    assert made.status_code == 201, made.text
    name = unique("budgets")
    key = create_key(
        admin, name, **{"Budget (USD)": "5", "Budget (tokens)": "1000", "Owner team": team}
    )
    search_keys(admin, name)
    expect(key_row(admin, name)).to_contain_text("$5.00 and 1,000 tokens / month")
    ask(admin_gateway_url, key)
    # Under a dollar: cents as for a team's budget ("$0.50", not "$0.5000").
    half = unique("half")
    create_key(admin, half, **{"Budget (USD)": "0.5"})
    search_keys(admin, half)
    expect(key_row(admin, half)).to_contain_text("$0.50 / month")

    go_to(admin, "Usage")
    figure = admin.locator(f'figure.chart[data-chart^="Team {team}:"]')

    def charted() -> bool | None:
        admin.get_by_role("button", name="Apply").click()
        expect(admin.locator(".usage-view")).not_to_have_attribute("aria-busy", "true")
        return (
            True
            if figure.count() and "no budget" in (figure.get_attribute("data-chart") or "")
            else None
        )

    eventually(charted, RECORDED_SECONDS, "the team's spend in the budget charts")
    # A team without a budget is not "over" it, and its chart spans its month, not years.
    expect(figure).not_to_have_class("chart over-budget")
    start, end = (
        int(figure.get_attribute("data-from") or 0),
        int(figure.get_attribute("data-to") or 0),
    )
    assert 28 * 86_400 <= end - start <= 31 * 86_400
    key_figure = admin.locator(f'figure.chart[data-chart^="Key {name}:"]')
    expect(key_figure).to_have_attribute("data-chart", re.compile(r"of \$5\.00 \(month\)"))


def test_a_usage_range_refused_leaves_no_old_figures_beside_it(admin: Page) -> None:
    go_to(admin, "Usage")
    view = admin.locator(".usage-view")
    expect(view.locator(".tile").first).to_be_visible()
    view.get_by_label("From", exact=True).fill("2026-12-10")
    view.get_by_label("To", exact=True).fill("2026-12-06")
    view.get_by_role("button", name="Apply").click()
    expect(view).to_contain_text("from: must be earlier than to")
    expect(view.locator(".tile")).to_have_count(0)
    expect(view.locator(".totals")).to_contain_text("Not loaded")


def test_an_expired_key_can_still_be_renamed(admin: Page, admin_gateway_url: str) -> None:
    name = unique("expiring")
    made = httpx.post(
        f"{admin_gateway_url}/admin/api/keys",
        json={"name": name, "expires_at": time.time() + 2},
        headers=AS_MASTER,
    )
    assert made.status_code == 201, made.text
    go_to(admin, "Keys")
    admin.get_by_label("Search", exact=True).fill(name)

    def expired() -> bool | None:
        admin.get_by_label("Status").select_option("active")
        admin.get_by_label("Status").select_option("expired")  # asks the gateway again
        expect(admin.locator(".keys-view")).not_to_have_attribute("aria-busy", "true")
        return True if key_row(admin, name).count() else None

    eventually(expired, 30, "the key expired")
    key_row(admin, name).get_by_role("button", name=f"Edit {name}").click()
    dialog(admin).get_by_label("Name", exact=True).fill(name + "-renamed")
    dialog(admin).get_by_role("button", name="Save").click()
    expect(admin.locator("dialog[open]")).to_have_count(0)
    search_keys(admin, name + "-renamed")
    expect(key_row(admin, name + "-renamed")).to_contain_text("expired")


def test_a_budget_under_a_cent_is_kept_and_set_in_the_key_dialog(
    admin: Page, admin_gateway_url: str
) -> None:
    name = unique("cents")
    make_key(admin_gateway_url, name, budget_usd=0.005)  # as the API or the CLI may set it
    go_to(admin, "Keys")
    search_keys(admin, name)
    expect(key_row(admin, name)).to_contain_text("$0.0050 / month")
    key_row(admin, name).get_by_role("button", name=f"Edit {name}").click()
    expect(dialog(admin).get_by_label("Budget (USD)")).to_have_value("0.005")
    dialog(admin).get_by_label("Name", exact=True).fill(f"{name}-renamed")
    dialog(admin).get_by_role("button", name="Save").click()
    expect(admin.locator("dialog[open]")).to_have_count(0)
    search_keys(admin, f"{name}-renamed")
    expect(key_row(admin, name)).to_contain_text("$0.0050 / month")

    key_row(admin, name).get_by_role("button", name=f"Edit {name}-renamed").click()
    dialog(admin).get_by_label("Budget (USD)").fill("0.0001")
    dialog(admin).get_by_role("button", name="Save").click()
    expect(admin.locator("dialog[open]")).to_have_count(0)
    expect(key_row(admin, name)).to_contain_text("$0.00010 / month")


def first_logged_request(admin: Page, ident: str, what: str) -> Locator:
    """The newest row of the request log for key ``ident``, once its record is stored."""
    go_to(admin, "Requests")
    admin.locator(".requests-view").get_by_label("Key", exact=True).fill(ident)

    def logged() -> bool | None:
        admin.get_by_role("button", name="Apply").click()
        expect(admin.locator(".requests-view")).not_to_have_attribute("aria-busy", "true")
        return True if admin.locator(".requests-view tbody tr.openable").count() else None

    eventually(logged, RECORDED_SECONDS, what)
    return admin.locator(".requests-view tbody tr.openable").first
