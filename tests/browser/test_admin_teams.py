"""Teams, users and live health on the dashboard."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.browser.admin_page import MASTER_KEY, create_key, go_to, unique


def test_a_team_gets_a_budget_a_member_and_shows_its_keys(admin: Page) -> None:
    email = f"{unique('ada')}@example.com"
    go_to(admin, "Users")
    users = admin.locator(".users-view")
    users.get_by_label("Email", exact=True).fill(email)
    users.get_by_label("Password", exact=True).fill("a long enough password 123")
    users.get_by_role("button", name="Create user").click()
    expect(users.locator("tbody tr").filter(has_text=email)).to_be_visible()

    team = unique("team")
    go_to(admin, "Teams")
    admin.get_by_label("Team name").fill(team)
    admin.get_by_label("Budget (USD)").fill("12.5")
    admin.get_by_role("button", name="Create team").click()
    row = admin.locator(".teams-view tbody tr").filter(has_text=team)
    expect(row).to_contain_text("$12.50 / month")

    panel = admin.locator(".teams-view .panel")
    expect(panel.get_by_role("heading", name=f"Team {team}")).to_be_visible()
    panel.get_by_label("Add a member by email").fill(email)
    panel.get_by_role("button", name="Add member").click()
    expect(panel.get_by_role("list", name=f"Members of {team}")).to_contain_text(email)

    panel.get_by_label("Budget (USD, empty: none)").fill("20")
    panel.get_by_role("button", name="Save budget").click()
    expect(row).to_contain_text("$20.00 / month")

    key = unique("team-key")
    create_key(admin, key, **{"Owner team": team})
    go_to(admin, "Teams")
    admin.locator(".teams-view tbody tr").filter(has_text=team).click()
    expect(panel.locator("table").last).to_contain_text(key)

    panel.get_by_role("button", name=f"Remove {email}").click()
    admin.locator("dialog[open]").get_by_role("button", name="Remove").click()
    expect(panel).to_contain_text("No members yet.")


def test_a_team_budget_under_a_cent_is_set_in_the_dashboard(admin: Page) -> None:
    team = unique("cents")
    go_to(admin, "Teams")
    admin.get_by_label("Team name").fill(team)
    admin.get_by_label("Budget (USD)").fill("0.0001")
    admin.get_by_role("button", name="Create team").click()
    row = admin.locator(".teams-view tbody tr").filter(has_text=team)
    expect(row).to_contain_text("$0.00010 / month")

    panel = admin.locator(".teams-view .panel")
    expect(panel.get_by_role("heading", name=f"Team {team}")).to_be_visible()
    panel.get_by_label("Budget (USD, empty: none)").fill("0.005")
    panel.get_by_role("button", name="Save budget").click()
    expect(row).to_contain_text("$0.0050 / month")


def test_health_shows_each_deployment_and_refreshes_itself(admin: Page) -> None:
    go_to(admin, "Health")
    alias = admin.locator(".health-alias[data-alias='slow']")
    expect(alias.locator("tbody tr")).to_have_count(1)
    expect(alias.locator("tbody tr")).to_contain_text("healthy")

    updated = admin.locator(".health-view .view-head [role=status]")
    expect(updated).to_have_text(re.compile(r"^Updated "))
    first = updated.inner_text()
    expect(updated).not_to_have_text(first, timeout=12_000)  # polled every 5 s


def test_health_says_why_a_deployment_rests(admin: Page, admin_gateway_url: str) -> None:
    # Its failures start over when the rest begins: "cooling, 0 failures" said nothing.
    for _ in range(3):  # the default cooldown: 3 failures; the alias retries none
        answer = httpx.post(
            f"{admin_gateway_url}/v1/chat/completions",
            json={"model": "broken", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {MASTER_KEY}"},
            timeout=30,
        )
        assert answer.status_code in (502, 503)
    go_to(admin, "Health")
    row = admin.locator(".health-alias[data-alias='broken'] tbody tr")
    expect(row).to_contain_text("cooling")
    expect(row).to_contain_text("3 failures")
