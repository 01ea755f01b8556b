"""Signing in to /admin: a server-side session, the master key kept out of the browser's
storage, sign-out, and the admin API closed to every other key."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.admin_page import AS_MASTER, MASTER_KEY, open_admin, sign_out, unique

# Each path under /admin/api with a method that reads or changes something there.
ADMIN_CALLS = [
    ("GET", "/admin/api/session"),
    ("GET", "/admin/api/keys"),
    ("POST", "/admin/api/keys"),
    ("GET", "/admin/api/keys/some-id"),
    ("PATCH", "/admin/api/keys/some-id"),
    ("DELETE", "/admin/api/keys/some-id"),
    ("GET", "/admin/api/teams"),
    ("POST", "/admin/api/teams"),
    ("PATCH", "/admin/api/teams/some-team"),
    ("DELETE", "/admin/api/teams/some-team"),
    ("POST", "/admin/api/teams/some-team/members"),
    ("GET", "/admin/api/users"),
    ("POST", "/admin/api/users"),
    ("GET", "/admin/api/usage"),
    ("GET", "/admin/api/usage/series"),
    ("GET", "/admin/api/usage/totals"),
    ("GET", "/admin/api/usage/top"),
    ("GET", "/admin/api/usage/budgets"),
    ("GET", "/admin/api/requests"),
    ("GET", "/admin/api/requests/some-id"),
]


def test_the_admin_page_is_public_and_served_under_the_strict_csp(
    admin_gateway_url: str,
) -> None:
    page = httpx.get(f"{admin_gateway_url}/admin")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe" not in csp
    assert "<script" in page.text and "/static/admin-" in page.text


def test_a_wrong_master_key_is_refused_in_place(admin_context: BrowserContext) -> None:
    page = admin_context.new_page()
    open_admin(page)
    page.get_by_label("Master key", exact=True).fill("mk-not-the-master-key-at-all")
    page.get_by_role("button", name="Sign in").click()

    expect(page.locator("#sign-in-error")).to_be_visible()
    expect(page.locator("#admin-app")).to_be_hidden()


def test_signing_in_keeps_the_master_key_out_of_the_browser_and_signing_out_ends_it(
    admin: Page, admin_gateway_url: str
) -> None:
    stored = admin.evaluate(
        "() => JSON.stringify([document.cookie, {...localStorage}, {...sessionStorage}])"
    )
    assert MASTER_KEY not in stored
    assert "mw_admin" not in stored  # the session cookie is HttpOnly
    cookie = next(c for c in admin.context.cookies() if c["name"] == "mw_admin")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/admin"

    admin.reload()  # the session outlives a reload: the cookie, not the page, holds it
    expect(admin.locator("body")).to_have_attribute("data-signed-in", "true")

    sign_out(admin)
    admin.reload()
    expect(admin.get_by_role("button", name="Sign in")).to_be_visible()
    after = httpx.get(f"{admin_gateway_url}/admin/api/keys", cookies={"mw_admin": cookie["value"]})
    assert after.status_code == 401


def test_a_call_that_changes_something_without_the_csrf_token_is_refused(
    admin: Page,
) -> None:
    # The page's own fetch, with its cookie, but without the X-CSRF-Token header.
    status = admin.evaluate(
        """async () => (await fetch('/admin/api/keys', {method: 'POST',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({name: 'no-csrf'})})).status"""
    )
    assert status == 403


@pytest.fixture(scope="module")
def virtual_key(admin_gateway_url: str) -> str:
    """A working key that is not the master key."""
    created = httpx.post(
        f"{admin_gateway_url}/admin/api/keys", json={"name": unique("not-admin")}, headers=AS_MASTER
    )
    created.raise_for_status()
    return str(created.json()["key"])


def test_a_virtual_key_cannot_sign_in(admin_context: BrowserContext, virtual_key: str) -> None:
    page = admin_context.new_page()
    open_admin(page)
    page.get_by_label("Master key", exact=True).fill(virtual_key)
    page.get_by_role("button", name="Sign in").click()

    expect(page.locator("#sign-in-error")).to_be_visible()
    expect(page.locator("#admin-app")).to_be_hidden()


@pytest.mark.parametrize(("method", "path"), ADMIN_CALLS)
def test_a_virtual_key_is_refused_everywhere_under_the_admin_api(
    admin_gateway_url: str, virtual_key: str, method: str, path: str
) -> None:
    virtual = {"authorization": f"Bearer {virtual_key}"}
    body: dict[str, object] | None = {} if method in ("POST", "PATCH") else None

    answer = httpx.request(method, f"{admin_gateway_url}{path}", headers=virtual, json=body)

    assert answer.status_code in (401, 403), answer.text


def test_an_admin_user_signs_in_with_email_and_password(
    admin_gateway_url: str, admin_context: BrowserContext
) -> None:
    email = f"{unique('admin')}@example.com"
    password = "correct horse battery staple"
    made = httpx.post(
        f"{admin_gateway_url}/admin/api/users",
        json={"email": email, "password": password, "is_admin": True},
        headers=AS_MASTER,
    )
    made.raise_for_status()
    page = admin_context.new_page()
    open_admin(page)
    page.get_by_label("With email and password").check()
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()

    expect(page.locator("body")).to_have_attribute("data-signed-in", "true")
    expect(page.locator("#who")).to_have_text(email)
    stored = page.evaluate("() => JSON.stringify([{...localStorage}, {...sessionStorage}])")
    assert password not in stored


def test_a_user_who_is_not_an_admin_cannot_sign_in(
    admin_gateway_url: str, admin_context: BrowserContext
) -> None:
    email = f"{unique('member')}@example.com"
    password = "correct horse battery staple"
    made = httpx.post(
        f"{admin_gateway_url}/admin/api/users",
        json={"email": email, "password": password, "is_admin": False},
        headers=AS_MASTER,
    )
    made.raise_for_status()
    page = admin_context.new_page()
    open_admin(page)
    page.get_by_label("With email and password").check()
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()

    expect(page.locator("#sign-in-error")).to_be_visible()
    expect(page.locator("#admin-app")).to_be_hidden()


def test_without_a_master_key_the_page_says_the_admin_is_off_and_offers_no_sign_in(
    page: Page, gateway_url: str
) -> None:
    # The chat's gateway runs open: nobody can sign in, so no form that cannot work.
    session = httpx.get(f"{gateway_url}/admin/api/session")
    assert session.status_code == 403 and "no master key" in session.json()["error"]["message"]
    page.goto("/admin")
    expect(page.locator("body")).to_have_attribute("data-admin-off", "true")
    expect(page.locator("#boot")).to_contain_text("the admin API is off")
    expect(page.locator("#sign-in")).to_be_hidden()
