"""A call to a model with no price reads "unpriced" on the dashboard, never a free $0.00."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.browser.admin_page import AS_MASTER, eventually, go_to, unique
from tests.browser.conftest import PATIENCE_MS


def test_an_unpriced_call_reads_unpriced_in_the_request_log_and_the_usage_view(
    admin: Page, admin_gateway_url: str
) -> None:
    model = unique("no-price")  # an openai/ model the config gives no price
    answered = httpx.post(
        f"{admin_gateway_url}/v1/chat/completions",
        json={"model": f"openai/{model}", "messages": [{"role": "user", "content": "hi"}]},
        headers=AS_MASTER,
        timeout=30,
    )
    assert answered.status_code == 200, answered.text

    go_to(admin, "Requests")
    log = admin.locator(".requests-view")
    log.get_by_label("Model", exact=True).fill(model)
    rows = log.locator("tbody tr.openable")

    def logged() -> bool | None:
        log.get_by_role("button", name="Apply").click()
        expect(log).not_to_have_attribute("aria-busy", "true")
        return True if rows.count() else None

    eventually(logged, PATIENCE_MS / 1000, "the unpriced call in the request log")
    expect(rows.first).to_contain_text("unpriced")
    expect(rows.first).not_to_contain_text("$0.00")

    go_to(admin, "Usage")
    usage = admin.locator(".usage-view")
    usage.get_by_label("Model", exact=True).fill(model)

    def tallied() -> bool | None:
        usage.get_by_role("button", name="Apply").click()
        expect(usage).not_to_have_attribute("aria-busy", "true")
        return True if admin.locator(".top-models tbody tr").count() else None

    eventually(tallied, PATIENCE_MS / 1000, "the unpriced call in the usage view")
    cost = usage.locator(".tile").filter(has_text="Cost").locator(".tile-value")
    expect(cost).to_have_text("unpriced")
    expect(admin.locator(".top-models tbody tr").first).to_contain_text("unpriced")
