"""What the tests do on the admin dashboard (``/admin``), named for what an operator does."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import openai
from playwright.sync_api import Locator, Page, expect

MASTER_KEY = "mk-browser-admin-master-key-0123456789"
AS_MASTER = {"authorization": f"Bearer {MASTER_KEY}"}
#: A payload that runs script if it is ever put into the page as HTML.
XSS = "<img src=x onerror=window.__xss=1>"
#: A key as the gateway issues it.
PLAINTEXT_KEY = re.compile(r"^mw-\S{16,}$")
#: Seconds the gateway promises for a key change (revocation, a new limit) to take effect.
KEY_CHANGE_SECONDS = 5.0

T = TypeVar("T")


def unique(name: str) -> str:
    """A name no other test uses (they share one gateway)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def open_admin(page: Page, view: str = "") -> None:
    page.goto(f"/admin#/{view}" if view else "/admin")
    expect(page.locator("#boot")).to_be_hidden()


def sign_in(page: Page, master_key: str = MASTER_KEY) -> None:
    """Sign in with the master key and wait for the dashboard."""
    open_admin(page)
    page.get_by_label("Master key", exact=True).fill(master_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("body")).to_have_attribute("data-signed-in", "true")


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def go_to(page: Page, view: str) -> None:
    """Open a view from the navigation and wait until it has loaded."""
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name=view).click()
    expect(page.locator(".view")).not_to_have_attribute("aria-busy", "true")


def dialog(page: Page) -> Locator:
    return page.locator("dialog[open]")


def create_key(page: Page, name: str, **fields: str) -> str:
    """Create a key in the Keys view (fields by their label); the plaintext it shows once."""
    go_to(page, "Keys")
    page.locator("#create-key").click()
    form = dialog(page)
    form.get_by_label("Name", exact=True).fill(name)
    for label, value in fields.items():
        form.get_by_label(label, exact=True).fill(value)
    form.get_by_role("button", name="Create key").click()
    shown = page.locator("#new-key-value")
    expect(shown).to_have_text(PLAINTEXT_KEY)
    key = shown.inner_text().strip()
    expect(form.get_by_role("button", name="Copy the new key")).to_be_visible()
    page.keyboard.press("Escape")  # a stray key press does not lose the key shown once
    expect(shown).to_be_visible()
    form.get_by_role("button", name="Done").click()
    expect(page.locator("dialog[open]")).to_have_count(0)
    return key


def make_key(gateway_url: str, name: str, **settings: object) -> dict[str, Any]:
    """A key made through the admin API, as a script or the CLI makes one: its view and
    ``key``, the plaintext."""
    made = httpx.post(
        f"{gateway_url}/admin/api/keys", json={"name": name, **settings}, headers=AS_MASTER
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


def key_row(page: Page, name: str) -> Locator:
    return page.locator(".keys-view tbody tr").filter(has_text=name)


def search_keys(page: Page, text: str) -> None:
    page.get_by_label("Search", exact=True).fill(text)
    expect(key_row(page, text).first).to_be_visible()


def key_id(gateway_url: str, name: str) -> str:
    """A key's id, by its (unique) name, from the admin API as the CLI would ask."""
    answer = httpx.get(
        f"{gateway_url}/admin/api/keys",
        params={"q": name, "status": "all"},
        headers=AS_MASTER,
    )
    answer.raise_for_status()
    (found,) = [key for key in answer.json()["keys"] if key["name"] == name]
    return str(found["id"])


def ask(gateway_url: str, key: str, text: str = "hello") -> str:
    """One chat completion through the gateway with the official openai SDK."""
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0) as sdk:
        answer = sdk.chat.completions.create(
            model="openai/echo", messages=[{"role": "user", "content": text}]
        )
    return answer.choices[0].message.content or ""


def eventually(check: Callable[[], T | None], seconds: float, what: str) -> T:
    """Calls ``check`` until it returns something other than None, for ``seconds`` at most."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {what}")
        time.sleep(0.1)
