"""Whatever a key's or team's name or metadata holds, the dashboard shows it as text."""

from __future__ import annotations

import json

from playwright.sync_api import Page, expect

from tests.browser.admin_page import XSS, create_key, dialog, go_to, key_row, search_keys


def assert_inert(page: Page) -> None:
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("img[src='x']").count() == 0


def test_script_in_a_key_name_and_metadata_stays_text(admin: Page) -> None:
    metadata = json.dumps({"note": XSS})
    create_key(admin, XSS, **{"Metadata (JSON object)": metadata})

    search_keys(admin, XSS)
    expect(key_row(admin, XSS).first.locator(".key-name")).to_have_text(XSS)
    key_row(admin, XSS).first.get_by_role("button", name=f"Edit {XSS}").click()
    expect(dialog(admin).get_by_label("Metadata (JSON object)")).to_have_value(
        json.dumps({"note": XSS}, indent=1)
    )
    dialog(admin).get_by_role("button", name="Cancel").click()
    go_to(admin, "Usage")
    go_to(admin, "Requests")
    assert_inert(admin)


def test_script_in_a_team_name_stays_text(admin: Page) -> None:
    go_to(admin, "Teams")
    admin.get_by_label("Team name").fill(XSS)
    admin.get_by_role("button", name="Create team").click()

    row = admin.locator(".teams-view tbody tr").filter(has_text=XSS).first
    expect(row.locator(".team-name")).to_have_text(XSS)
    row.click()
    expect(admin.locator("#team-detail-title")).to_have_text(f"Team {XSS}")
    create_key(admin, "owned-by-xss-team", **{"Owner team": XSS})
    go_to(admin, "Usage")
    team = admin.get_by_label("Team", exact=True)
    team.fill("onerror")  # the filter suggests it
    suggested = admin.locator(f"datalist#{team.get_attribute('list')} option[value='{XSS}']")
    expect(suggested).to_have_count(1)
    assert_inert(admin)
